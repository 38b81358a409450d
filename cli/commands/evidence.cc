// mamori evidence: the tampered copies the agent kept (core/evidence) and who made them:
// list them, show one, diff one against its baseline, export one's bytes.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>

#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include "cli/commands/command.h"
#include "cli/commands/commands.h"
#include "core/base/quote.h"
#include "core/evidence/evidence.h"
#include "core/evidence/item_json.h"

namespace mamori::cli {
namespace {

using evidence::EvidenceStore;
using evidence::Item;
using evidence::item_json;
using evidence::json_text;

// Larger contents are compared by hash only, as 'mamori diff' does.
constexpr uint64_t kMaxDiffBytes = 16ull << 20;

std::string or_unknown(const std::string& s) { return s.empty() ? "unknown" : escape(s); }
std::string or_unknown(int64_t n) { return n < 0 ? "unknown" : std::to_string(n); }

// YARA's verdict on the kept content, in words.
std::string scan_text(const Item& it) {
  if (!it.scan) return "not scanned";
  std::string out;
  for (const auto& r : it.scan->rules) out += (out.empty() ? "" : ", ") + escape(r);
  if (out.empty()) out = "no rule matched";
  if (it.scan->truncated) out += " (only the first bytes were scanned)";
  return out;
}

void print_item(const Item& it) {
  const auto& w = it.who;
  std::printf("id            %s\n", std::to_string(it.id).c_str());
  std::printf("time          %s\n", format_time_ns(it.time_ns).c_str());
  std::printf("event         %s\n", or_unknown(it.event_id).c_str());
  std::printf("path          %s\n", escape(absolute(it.root, it.path)).c_str());
  std::printf("reason        %s\n", escape(it.reason).c_str());
  std::printf("content       %s, sha256 %s\n", human_bytes(it.size).c_str(),
              it.sha256.hex().c_str());
  if (it.truncated) std::printf("              truncated: only a prefix was kept\n");
  std::printf("baseline      %s\n",
              it.baseline_sha256 ? ("sha256 " + it.baseline_sha256->hex()).c_str() : "unknown");
  std::printf("yara          %s\n", scan_text(it).c_str());
  std::printf("mode          %04o  owner %u:%u  mtime %s\n", it.mode & 07777, it.uid, it.gid,
              format_time_ns(it.mtime_ns).c_str());
  std::printf("process       %s  %s\n", or_unknown(w.pid).c_str(),
              or_unknown(w.executable).c_str());
  std::printf("command line  %s\n", or_unknown(w.command_line).c_str());
  std::printf("user          %s (uid %s)\n", or_unknown(w.user).c_str(), or_unknown(w.uid).c_str());
  std::printf("parent        %s  %s\n", or_unknown(w.ppid).c_str(),
              or_unknown(w.parent_executable).c_str());
}

std::optional<int64_t> parse_id(const std::string& s) {
  int64_t id = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), id);
  if (ec != std::errc() || end != s.data() + s.size() || id <= 0) return std::nullopt;
  return id;
}

Result<std::string> read_kept(EvidenceStore& store, int64_t id, uint64_t limit) {
  std::string out;
  MAMORI_TRY(store.read(id, [&](std::span<const uint8_t> chunk) -> Status {
    if (out.size() + chunk.size() > limit) return fail("read evidence", std::to_string(id), EFBIG);
    out.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
    return ok();
  }));
  return out;
}

int list(App& app, EvidenceStore& store, size_t limit) {
  auto items = store.list(limit);
  if (!items) return app.report(items.error(), App::code_for(items.error()));
  auto usage = store.usage();
  if (!usage) return app.report(usage.error(), App::code_for(usage.error()));
  if (app.options().json) {
    nlohmann::json j = {
        {"items", nlohmann::json::array()},
        {"usage", {{"items", usage->items}, {"stored_bytes", usage->stored_bytes}}}};
    for (const auto& it : *items) j["items"].push_back(item_json(it));
    print_json(j);
    return kExitOk;
  }
  if (!items->empty())
    std::printf("%8s  %-30s  %-10s %10s  %s\n", "ID", "TIME", "REASON", "SIZE", "PATH");
  for (const auto& it : *items)
    std::printf(
        "%8s  %-30s  %-10s %10s  %s%s%s\n", std::to_string(it.id).c_str(),
        format_time_ns(it.time_ns).c_str(), escape(it.reason).c_str(), human_bytes(it.size).c_str(),
        escape(absolute(it.root, it.path)).c_str(), it.truncated ? " (truncated)" : "",
        it.scan && !it.scan->rules.empty() ? (" [yara: " + scan_text(it) + "]").c_str() : "");
  if (!app.options().quiet)
    std::printf("%s items, %s stored\n", std::to_string(usage->items).c_str(),
                human_bytes(usage->stored_bytes).c_str());
  return kExitOk;
}

// Baseline content -> tampered content. Exit 1 when they differ, as 'mamori diff'.
int diff(App& app, EvidenceStore& store, const Item& it) {
  const std::string abs = absolute(it.root, it.path);
  nlohmann::json j = {{"id", it.id},
                      {"file", path_json(it.root, it.path)},
                      {"truncated", it.truncated},
                      {"before", {{"sha256", it.baseline_sha256 ? it.baseline_sha256->hex() : ""}}},
                      {"after", {{"sha256", it.sha256.hex()}, {"size", it.size}}}};
  auto result = [&]() -> Result<int> {
    if (it.baseline_sha256 && *it.baseline_sha256 == it.sha256) {
      j["content"] = "same";
      if (!app.options().json) std::printf("%s: content as in the baseline\n", escape(abs).c_str());
      return kExitOk;
    }
    // A truncated item keeps a prefix only: that prefix is what can be compared.
    std::string before;
    bool large = it.size > kMaxDiffBytes && !it.truncated;
    if (it.baseline_sha256 && !large) {
      auto state = MAMORI_TRY(app.open_state(baseline::StateAccess::kRead));
      auto got = state->store->read_all(*it.baseline_sha256, kMaxDiffBytes);
      if (!got && got.error().errnum == ENOENT)
        return fail("evidence diff", abs, ENOENT,
                    "the baseline content is no longer in the store (mamori gc)");
      if (!got && got.error().errnum != EFBIG) return tl::unexpected(got.error());
      if (got)
        before = std::move(*got);
      else
        large = true;
    }
    std::string after;
    if (!large) {
      auto got = read_kept(store, it.id, kMaxDiffBytes);
      if (!got && got.error().errnum != EFBIG) return tl::unexpected(got.error());
      if (got)
        after = std::move(*got);
      else
        large = true;
    }
    const std::string base_hex = it.baseline_sha256 ? it.baseline_sha256->hex() : "unknown";
    if (large || looks_binary(before) || looks_binary(after)) {
      j["content"] = large ? "large" : "binary";
      if (!app.options().json)
        std::printf("%s: %s content differs: sha256 %s -> %s\n", escape(abs).c_str(),
                    large ? "large" : "binary", base_hex.c_str(), it.sha256.hex().c_str());
      return kExitChanges;
    }
    if (it.truncated && !app.options().json)
      std::fprintf(stderr, "mamori: note: only the first %s of %s were kept; the diff shows them\n",
                   human_bytes(after.size()).c_str(), human_bytes(it.size).c_str());
    std::string text;
    const int code = MAMORI_TRY(
        unified_diff(app.env(), abs, before, after, app.options().json ? &text : nullptr));
    j["content"] = code == 0 ? "same" : "text";
    if (app.options().json) j["diff"] = json_text(text);
    return code == 0 ? kExitOk : kExitChanges;
  }();
  if (!result) return app.report(result.error(), App::code_for(result.error()));
  if (app.options().json) print_json(j);
  return *result;
}

int export_item(App& app, EvidenceStore& store, const Item& it, const std::string& output) {
  int fd = STDOUT_FILENO;
  UniqueFd file;
  if (!output.empty()) {
    // A name the administrator gave, outside any root. The copy may be malware: created
    // private, and never over an existing file or through a symlink.
    const int raw = ::openat(AT_FDCWD, output.c_str(),
                             O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (raw < 0) return app.report(Error{"create", output, errno, {}}, kExitIncomplete);
    file.reset(raw);
    fd = raw;
  }
  hash::Sha256 h;
  uint64_t bytes = 0;
  const std::string shown = output.empty() ? "stdout" : output;
  auto st = store.read(it.id, [&](std::span<const uint8_t> chunk) -> Status {
    h.update(chunk);
    bytes += chunk.size();
    return write_all(app.env(), fd, chunk, shown);
  });
  if (!st) {
    // Damaged or unwritable: leave no file that looks like a good export.
    if (!output.empty()) ::unlinkat(AT_FDCWD, output.c_str(), 0);
    return app.report(st.error(), App::code_for(st.error()));
  }
  if (it.truncated && !app.options().json)
    std::fprintf(stderr, "mamori: note: only the first %s of %s were kept\n",
                 human_bytes(bytes).c_str(), human_bytes(it.size).c_str());
  if (output.empty()) return kExitOk;
  if (app.options().json) {
    nlohmann::json j = {{"id", it.id},
                        {"output", json_text(output)},
                        {"bytes", bytes},
                        {"sha256", h.finish().hex()},
                        {"truncated", it.truncated}};
    print_json(j);
  } else if (!app.options().quiet) {
    std::printf("item %s: %s written to %s\n", std::to_string(it.id).c_str(),
                human_bytes(bytes).c_str(), escape(output).c_str());
  }
  return kExitOk;
}

}  // namespace

int run_evidence(App& app, const std::string& action, const std::vector<std::string>& args,
                 const EvidenceOptions& options) {
  const bool takes_id = action == "show" || action == "diff" || action == "export";
  if (!takes_id && action != "list")
    return app.report(
        Error{"evidence", action, 0, "unknown action: use list, show, diff or export"}, kExitUsage);
  if (takes_id ? args.size() != 1 : !args.empty())
    return app.report(
        Error{"evidence " + action, "", 0, takes_id ? "takes one item ID" : "takes no arguments"},
        kExitUsage);
  std::optional<int64_t> id;
  if (takes_id && !(id = parse_id(args[0])))
    return app.report(
        Error{"evidence " + action, args[0], 0, "is not an item ID (see 'mamori evidence list')"},
        kExitUsage);
  // Raw evidence may hold escape sequences meant for a terminal, as gzip refuses too.
  if (action == "export" && options.output.empty() && ::isatty(STDOUT_FILENO))
    return app.report(
        Error{"evidence export", "", 0, "stdout is a terminal: redirect it or give --output FILE"},
        kExitUsage);

  const std::string dir = app.config().state_dir + "/evidence";
  auto store = EvidenceStore::open(app.env(), app.config().state_dir, EvidenceStore::Access::kRead);
  if (!store) {
    if (store.error().errnum == ENOENT)
      return app.report(Error{"evidence", dir, 0, "no evidence kept yet"}, kExitUsage);
    return app.report(store.error(), App::code_for(store.error()));
  }
  if (action == "list") return list(app, **store, options.limit);

  auto item = (*store)->get(*id);
  if (!item) return app.report(item.error(), App::code_for(item.error()));
  if (!*item)
    return app.report(Error{"evidence", args[0], 0, "no such item (pruned, or never kept)"},
                      kExitUsage);
  if (action == "show") {
    if (app.options().json)
      print_json(item_json(**item));
    else
      print_item(**item);
    return kExitOk;
  }
  if (action == "diff") return diff(app, **store, **item);
  return export_item(app, **store, **item, options.output);
}

namespace {

constexpr std::string_view kHelp = R"TXT(NAME
    mamori evidence - the tampered copies kept as evidence

SYNOPSIS
    mamori evidence list [--limit N] [--json]
    mamori evidence show ID [--json]
    mamori evidence diff ID [--json]
    mamori evidence export ID [--output FILE]

DESCRIPTION
    When the agent puts a file back in 'preserve' mode, it keeps the tampered
    content (zstd-compressed, in STATE/evidence/) with when it was taken, why, the
    file's SHA-256, mode and owner, and who changed it as far as the kernel said:
    process id, executable, command line, user, parent process. A size quota keeps
    the store bounded: the oldest items are dropped first. A file larger than the
    per-item limit keeps only its first bytes ("truncated"); its SHA-256 and size
    are still those of the whole content.

    list     every item, newest first (the newest N with --limit)
    show     one item's metadata and who-data
    diff     a unified diff from the baseline content (read from the content store)
             to the tampered content; against empty content when the baseline was
             not known; SHA-256 only for binary content and contents over 16 MiB
    export   the tampered bytes exactly as kept, to stdout (refused when stdout is
             a terminal) or to FILE, which must not exist and is created mode 0600

    Every item is verified against its SHA-256 as it is read; a damaged item
    fails (exit 4) and an export of it leaves no FILE behind.

OPTIONS
    --limit N          list: only the newest N items
    -o, --output FILE  export: write to FILE instead of stdout

OUTPUT
    Text escapes paths and command lines (control bytes, invalid UTF-8). With
    --json, list prints {"items": [...], "usage": {...}} and show one item, in
    Elastic Common Schema names: @timestamp, file.path, file.hash.sha256,
    file.size, file.mode, process.pid, process.executable, process.command_line,
    process.parent.pid, process.parent.executable, user.id, user.name, and
    mamori.evidence.{id, reason, truncated}; a path that is not valid UTF-8 is
    escaped, with its exact bytes in file.path_hex. diff --json prints the two
    SHA-256 and the diff text; export --json (with --output) what was written.

EXIT STATUS
    0 done (diff: same content); 1 diff: the contents differ; 2 usage error, no
    such item, or no evidence kept yet; 3 failed; 4 an item failed verification.
)TXT";

// The actions are CLI11 subcommands, spelt as the positional ACTION they replace.
Run setup(CLI::App& cmd) {
  struct Parsed {
    std::vector<std::string> args;
    EvidenceOptions options;
  };
  auto p = std::make_shared<Parsed>();
  cmd.require_subcommand(0, 1);
  for (const char* name : {"list", "show", "diff", "export"}) {
    auto* action = cmd.add_subcommand(name);
    action->add_option("args", p->args);
    if (std::string_view(name) == "list") action->add_option("--limit", p->options.limit);
    if (std::string_view(name) == "export") action->add_option("-o,--output", p->options.output);
  }
  return [p, &cmd](App& app) {
    const auto chosen = cmd.get_subcommands();
    if (chosen.empty())
      return usage_error("evidence", "evidence takes an ACTION: list, show, diff or export");
    return run_evidence(app, chosen.front()->get_name(), p->args, p->options);
  };
}

}  // namespace

Command evidence_command() {
  return {"evidence",
          "evidence ACTION [ID]",
          "list, show, diff or export the tampered copies kept",
          kHelp,
          true,
          setup};
}

}  // namespace mamori::cli
