// mamori status: what the baseline covers, its root hash, and the store's size.

#include <cstdio>

#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include "cli/commands/command.h"
#include "cli/commands/commands.h"
#include "core/base/quote.h"

namespace mamori::cli {

int run_status(App& app) {
  auto state = app.open_state(baseline::StateAccess::kRead);
  if (!state)
    return app.report(state.error(),
                      state.error().errnum == ENOENT ? kExitUsage : App::code_for(state.error()));
  auto& catalog = (*state)->catalog;
  auto result = [&]() -> Result<nlohmann::json> {
    const auto root_hash = MAMORI_TRY(catalog.stored_root_hash());
    const auto stats = MAMORI_TRY((*state)->store->stats());
    const auto dead = MAMORI_TRY(catalog.reclaimable());
    nlohmann::json j = {{"state_dir", app.config().state_dir},
                        {"root_hash", root_hash ? root_hash->hex() : ""},
                        {"sealed_at", format_time_ns(MAMORI_TRY(catalog.sealed_at_ns()))},
                        {"store",
                         {{"objects", stats.objects},
                          {"content_bytes", stats.content_bytes},
                          {"stored_bytes", stats.stored_bytes},
                          {"reclaimable_objects", dead.objects},
                          {"reclaimable_bytes", dead.stored_bytes}}},
                        {"roots", nlohmann::json::array()}};
    const auto rows = MAMORI_TRY(catalog.roots());
    for (const auto& r : app.roots()) {
      nlohmann::json root = {{"path", r.config->path}, {"mode", config::mode_name(r.config->mode)}};
      for (const auto& row : rows) {
        if (row.path != r.config->path) continue;
        root["entries"] = MAMORI_TRY(catalog.count(row.id));
        root["baselined_at"] = format_time_ns(row.baselined_at_ns);
      }
      j["roots"].push_back(root);
    }
    return j;
  }();
  if (!result) return app.report(result.error(), App::code_for(result.error()));
  auto& j = *result;
  // The running agent, if any: its live modes and counters.
  if (auto agent = agent_status(app); !agent)
    j["agent"] = {{"running", false}, {"error", agent.error().message()}};
  else if (!*agent)
    j["agent"] = {{"running", false}};
  else {
    j["agent"] = std::move(**agent);
    j["agent"].erase("ok");
    j["agent"]["running"] = true;
  }
  bool any = false;
  for (const auto& r : j["roots"]) any |= r.contains("entries");
  const int code = any ? kExitOk : kExitUsage;  // documented: 2 when there is no baseline yet
  if (app.options().json) {
    print_json(j);
    return code;
  }
  const uint64_t content = j["store"]["content_bytes"], stored = j["store"]["stored_bytes"];
  std::printf("state      %s\n", escape(app.config().state_dir).c_str());
  std::printf("root hash  %s\n", j["root_hash"].get<std::string>().c_str());
  std::printf("sealed     %s\n", j["sealed_at"].get<std::string>().c_str());
  std::printf("store      %s objects, %s of content in %s (%.1f%%)\n",
              fmt::format("{}", j["store"]["objects"].get<uint64_t>()).c_str(),
              human_bytes(content).c_str(), human_bytes(stored).c_str(),
              content ? 100.0 * static_cast<double>(stored) / static_cast<double>(content) : 0.0);
  if (const uint64_t n = j["store"]["reclaimable_objects"]; n > 0)
    std::printf("           %s unreferenced (%s): 'mamori gc' reclaims them\n",
                fmt::format("{}", n).c_str(),
                human_bytes(j["store"]["reclaimable_bytes"].get<uint64_t>()).c_str());
  for (const auto& r : j["roots"]) {
    std::printf("root       %s  mode=%s  ", escape(r["path"].get<std::string>()).c_str(),
                r["mode"].get<std::string>().c_str());
    if (r.contains("entries"))
      std::printf("%s entries, baselined %s\n",
                  fmt::format("{}", r["entries"].get<uint64_t>()).c_str(),
                  r["baselined_at"].get<std::string>().c_str());
    else
      std::printf("not baselined: run 'mamori init'\n");
  }
  const auto& a = j["agent"];
  if (!a["running"].get<bool>()) {
    std::printf("agent      not running%s\n",
                a.contains("error") ? (": " + a["error"].get<std::string>()).c_str() : "");
  } else {
    const auto& c = a["counters"];
    std::printf(
        "agent      running, pid %s, %s; %s changes, %s restored, %s quarantined, "
        "%s evidence, %s failures%s\n",
        fmt::format("{}", a["pid"].get<int64_t>()).c_str(), a["backend"].get<std::string>().c_str(),
        fmt::format("{}", c["changes"].get<uint64_t>()).c_str(),
        fmt::format("{}", c["restored"].get<uint64_t>()).c_str(),
        fmt::format("{}", c["quarantined"].get<uint64_t>()).c_str(),
        fmt::format("{}", c["evidence"].get<uint64_t>()).c_str(),
        fmt::format("{}", c["failures"].get<uint64_t>()).c_str(),
        a["in_storm"].get<bool>() ? "; IN A TAMPER STORM" : "");
    if (const uint64_t d = c.value("events_dropped", uint64_t{0}); d > 0)
      std::printf(
          "           %s event(s) DROPPED (%s security) while the event log could not be "
          "written: see the events-dropped events\n",
          fmt::format("{}", d).c_str(),
          fmt::format("{}", c.value("events_dropped_security", uint64_t{0})).c_str());
    for (const auto& r : a["roots"])
      std::printf("           %s guarded in %s mode%s%s\n",
                  escape(r["path"].get<std::string>()).c_str(),
                  r["mode"].get<std::string>().c_str(),
                  r["paused"].get<bool>() ? " (paused for a deploy)" : "",
                  r.value("rescanning", false)
                      ? " (rescanning: events were lost or a storm ended; changes are "
                        "still restored meanwhile)"
                      : "");
    if (const auto h = a.value("heal", nlohmann::json()); h.is_object()) {
      if (h.value("healthy", true))
        std::printf("health     healthy\n");
      else
        std::printf("health     UNHEALTHY since %s: %s ('mamori heal --clear' to return)\n",
                    h.value("since", std::string("?")).c_str(),
                    escape(h.value("reason", std::string())).c_str());
    }
    if (const auto w = a.value("logwatch", nlohmann::json()); w.is_object())
      std::printf("logwatch   %zu log(s), %s lines read, %s bans, %s ban failures\n",
                  w["logs"].size(), fmt::format("{}", w["lines"].get<uint64_t>()).c_str(),
                  fmt::format("{}", w["bans"].get<uint64_t>()).c_str(),
                  fmt::format("{}", w["ban_failures"].get<uint64_t>()).c_str());
    // Whether each log fits its format (docs/bans.md, Never blind): a log that does not
    // bans nobody, and must not look like a quiet one.
    if (const auto w = a.value("logwatch", nlohmann::json()); w.is_object())
      for (const auto& p : w.value("parsing", nlohmann::json::array())) {
        const std::string counts =
            fmt::format("{} of the last {} lines refused", p.value("unparsed", uint64_t{0}),
                        p.value("lines", uint64_t{0}));
        if (p.value("unparseable", false))
          std::printf("log        %s UNPARSEABLE: does not fit its format, %s (%s), e.g. '%s'\n",
                      quote(p.value("path", std::string())).c_str(), counts.c_str(),
                      p.value("sample_reason", std::string()).c_str(),
                      p.value("sample", std::string()).c_str());
        else
          std::printf("log        %s fits its format (%s)\n",
                      quote(p.value("path", std::string())).c_str(), counts.c_str());
      }
    if (const auto g = a.value("gate", nlohmann::json()); g.is_object()) {
      if (g.value("state", "") == "on")
        std::printf(
            "open gate  on (%s): %s directories, %s files verified until written (%s "
            "only root can change: their opens too), %s opens denied, watchdog %s%s\n",
            g.value("read_check", std::string()).c_str(),
            fmt::format("{}", g.value("directories", uint64_t{0})).c_str(),
            fmt::format("{}", g.value("reads_unasked", uint64_t{0})).c_str(),
            fmt::format("{}", g.value("opens_unasked", uint64_t{0})).c_str(),
            fmt::format("{}", g.value("denied", uint64_t{0})).c_str(),
            g.value("watchdog", false) ? "running" : "GONE",
            g.value("unchecked", uint64_t{0})
                ? fmt::format("; {} opens allowed unchecked (the gate was late)",
                              g.value("unchecked", uint64_t{0}))
                      .c_str()
                : "");
      else
        std::printf("open gate  %s%s: tampered files can be read until restored\n",
                    g.value("state", std::string()) == "unavailable" ? "UNAVAILABLE" : "off",
                    g.value("reason", std::string()).empty()
                        ? ""
                        : (" (" + escape(g.value("reason", std::string())) + ")").c_str());
    }
    if (const auto m = a.value("manager", nlohmann::json());
        m.is_object() && m.value("state", "") != "disabled") {
      const std::string error = m.value("last_error", std::string());
      std::printf("manager    %s %s: %s events sent, %s acknowledged%s\n",
                  m.value("state", std::string()).c_str(),
                  escape(m.value("url", std::string())).c_str(),
                  fmt::format("{}", m.value("events_sent", uint64_t{0})).c_str(),
                  fmt::format("{}", m.value("events_acked", uint64_t{0})).c_str(),
                  error.empty() ? "" : ("; last error: " + escape(error)).c_str());
    }
    for (const auto& s : a.value("sinks", nlohmann::json::array()))
      std::printf("sink       %s (%s): %s delivered%s\n", s["name"].get<std::string>().c_str(),
                  s["type"].get<std::string>().c_str(),
                  fmt::format("{}", s["delivered"].get<uint64_t>()).c_str(),
                  s["failing"].get<bool>()
                      ? (", FAILING: " + escape(s["last_error"].get<std::string>())).c_str()
                      : "");
  }
  if (!any) std::fprintf(stderr, "mamori: no baseline yet: run 'mamori init'\n");
  return code;
}

namespace {

constexpr std::string_view kHelp = R"TXT(NAME
    mamori status - what the baseline covers

SYNOPSIS
    mamori status [--json]

DESCRIPTION
    Prints the state directory, the catalog's root hash (a SHA-256 over every
    recorded entry of every root: keep a copy elsewhere to notice tampering with
    mamori's own state), when it was sealed, the store's size, and for each
    configured root its mode and number of entries. When an agent is running, also
    its backend, live modes and counters (changes, restored, quarantined, evidence,
    failures), asked over its control socket; "agent": {"running": false} otherwise.

EXIT STATUS
    0 printed; 2 no baseline yet or bad config; 4 the catalog cannot be read.
)TXT";

Run setup(CLI::App& cmd) {
  (void)cmd;
  return [](App& app) { return run_status(app); };
}

}  // namespace

Command status_command() {
  return {"status", "status", "roots, entries, store size and the root hash", kHelp, true, setup};
}

}  // namespace mamori::cli
