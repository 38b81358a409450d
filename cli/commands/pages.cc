// mamori pages: what the page monitor ([[page]], docs/pages.md) keeps of each page, and
// accepting a page's current active content as its baseline.

#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "cli/commands/command.h"
#include "core/base/quote.h"
#include "core/page/discovery.h"
#include "core/page/record.h"

namespace mamori::cli {

namespace {

constexpr std::string_view kHelp = R"TXT(NAME
    mamori pages - the page monitor's baselines: list them, accept a page's change

SYNOPSIS
    mamori pages list [--json]
    mamori pages accept URL

DESCRIPTION
    The running agent fetches every [[page]] of the config through the web server, once
    per user agent the page lists, every interval seconds (and at once after the guard
    restored a file), and compares its active content with the page's baseline: script
    sources, inline scripts (by SHA-256), event handlers and javascript: URLs, iframes,
    objects and embeds, form actions, meta refreshes, <base>, stylesheets, redirects and
    links to other origins. Text, images and links within the site are not active
    content: a new post changes none of it. The first complete fetch is the baseline. An
    element the baseline lacks whose origin allow_origins does not allow is a
    page-injected event, once, until it is gone or accepted.

    With [pages] base_url set, the agent also watches the most requested HTML pages of
    the access logs ([[log]]): a path that at least min_clients distinct addresses
    requested with a GET answered 200, fetched from base_url with [pages]'s keys. The
    discovered set is kept in STATE/pages/discovered.json.

    list shows each configured page and each discovered one (marked "discovered", with
    about how many addresses asked for it): its baseline, its last check, and the
    elements of its last fetch that are neither in the baseline nor allowed (what
    page-injected reported). accept URL makes the page's last fetched active content
    its baseline, after a change you made (a new plugin, a new embed); the agent's next
    check compares against it. The last fetch is the agent's: accept fetches nothing
    itself. Records live in STATE/pages (docs/pages.md).

EXAMPLES
    mamori pages list
    mamori pages list --json
    mamori pages accept https://www.example.com/

EXIT STATUS
    list: 0 no page has new active content; 1 some page has; 3 a record could not be
    read. accept: 0 accepted; 2 URL is neither a [[page]] of the config nor a
    discovered page; 3 no fetch of it yet, or its record could not be read or written.
)TXT";

nlohmann::json element_json(const page::Element& e) {
  nlohmann::json j = {{"kind", e.kind}, {"value", e.value}, {"origin", e.origin}};
  if (!e.snippet.empty()) j["snippet"] = e.snippet;
  return j;
}

// The elements of the last fetch that are not in the baseline and not allowed.
std::vector<page::Element> unaccepted(const page::PageRecord& r, const config::PageConfig& pc) {
  std::vector<page::Element> out;
  auto allow = page::OriginAllowlist::compile(pc.allow_origins, pc.url);
  for (auto& e : page::new_elements(r.baseline, r.current))
    if (!allow || !allow->allows(e)) out.push_back(std::move(e));
  return out;
}

struct Watched {
  config::PageConfig config;
  std::optional<page::DiscoveredPage> discovered;
};

// The [[page]]s, then the discovered pages of STATE/pages/discovered.json (none when
// [pages] is off or the file is of another base_url); an unreadable file is an error.
Result<std::vector<Watched>> watched_pages(const config::Config& c) {
  std::vector<Watched> out;
  for (const auto& pc : c.pages) out.push_back({pc, std::nullopt});
  const auto& d = c.page_discovery;
  if (d.discover == 0) return out;
  auto set = MAMORI_TRY(page::load_discovered(page::discovered_path(c.state_dir)));
  if (!set || set->base_url != d.base_url) return out;
  for (const auto& p : set->pages) {
    config::PageConfig pc = d.page;
    pc.url = d.base_url + p.path;
    if (std::none_of(c.pages.begin(), c.pages.end(),
                     [&](const config::PageConfig& x) { return x.url == pc.url; }))
      out.push_back({std::move(pc), p});
  }
  return out;
}

int run_list(App& app) {
  const auto& c = app.config();
  auto pages = nlohmann::json::array();
  bool changed = false, unreadable = false;
  auto watched = watched_pages(c);
  if (!watched) return app.report(watched.error(), kExitIncomplete);
  for (const auto& [pc, discovered] : *watched) {
    nlohmann::json j = {
        {"url", pc.url}, {"interval_s", pc.interval_s}, {"user_agents", pc.user_agents}};
    if (discovered) {
      j["discovered"] = {{"clients", discovered->clients},
                         {"since", format_time_ns(discovered->since_ns)}};
      if (!app.options().json)
        std::printf("%s\n  discovered %s (about %.0f addresses asked for it)\n",
                    escape(pc.url).c_str(), format_time_ns(discovered->since_ns).c_str(),
                    discovered->clients);
    } else if (!app.options().json) {
      std::printf("%s\n", escape(pc.url).c_str());
    }
    auto record = page::load_record(page::record_path(c.state_dir, pc.url));
    if (!record) {
      unreadable = true;
      j["error"] = record.error().message();
      if (!app.options().json)
        std::printf("  record unreadable: %s\n", record.error().message().c_str());
      pages.push_back(std::move(j));
      continue;
    }
    if (!*record) {
      j["baseline"] = nullptr;
      if (!app.options().json)
        std::printf("  no baseline yet (the agent takes it at its first fetch)\n");
      pages.push_back(std::move(j));
      continue;
    }
    const page::PageRecord& r = **record;
    const auto fresh = unaccepted(r, pc);
    changed = changed || !fresh.empty();
    j["baseline"] = {{"elements", r.baseline.elements.size()},
                     {"taken", format_time_ns(r.baseline_ns)},
                     {"by", r.baseline_by},
                     {"truncated", r.baseline.truncated}};
    j["checked"] = format_time_ns(r.current_ns);
    if (!r.error.empty()) j["error"] = r.error;
    auto news = nlohmann::json::array();
    for (const auto& e : fresh) news.push_back(element_json(e));
    j["new"] = std::move(news);
    if (!app.options().json) {
      std::printf("  baseline: %zu active elements (%s, %s)\n  last fetch: %s, %s\n",
                  r.baseline.elements.size(), r.baseline_by.c_str(),
                  format_time_ns(r.baseline_ns).c_str(), format_time_ns(r.current_ns).c_str(),
                  fresh.empty() ? "as the baseline" : fmt::format("{} new", fresh.size()).c_str());
      if (!r.error.empty()) std::printf("  last check failed: %s\n", escape(r.error).c_str());
      for (const auto& e : fresh)
        std::printf("  new %s (%s): %s\n", e.kind.c_str(), escape(e.origin).c_str(),
                    escape(e.snippet.empty() ? e.value : e.snippet).c_str());
    }
    pages.push_back(std::move(j));
  }
  if (app.options().json)
    print_json({{"pages", std::move(pages)}});
  else if (watched->empty())
    std::printf("no [[page]] in %s%s\n", escape(c.source).c_str(),
                c.page_discovery.discover ? ", none discovered yet" : "");
  return unreadable ? kExitIncomplete : changed ? kExitChanges : kExitOk;
}

int run_accept(App& app, const std::string& url) {
  const auto& c = app.config();
  auto watched = watched_pages(c);
  if (!watched) return app.report(watched.error(), kExitIncomplete);
  if (std::none_of(watched->begin(), watched->end(),
                   [&](const Watched& w) { return w.config.url == url; }))
    return usage_error("pages", quote(url) +
                                    " is neither the url of a [[page]] in the config nor a "
                                    "discovered page");
  auto lock = page::lock_records(c.state_dir);
  if (!lock) return app.report(lock.error(), kExitIncomplete);
  const std::string path = page::record_path(c.state_dir, url);
  auto record = page::load_record(path);
  if (!record) return app.report(record.error(), kExitIncomplete);
  if (!*record)
    return app.report(Error{"accept", url, 0,
                            "not fetched yet: the agent takes the baseline at its "
                            "first fetch"},
                      kExitIncomplete);
  page::PageRecord& r = **record;
  const auto added = page::new_elements(r.baseline, r.current);
  const auto gone = page::new_elements(r.current, r.baseline);
  r.baseline = r.current;
  r.baseline_ns = app.env().clock().now_ns();
  r.baseline_by = "accept";
  r.reported.clear();
  if (auto st = page::save_record(app.env(), path, r); !st)
    return app.report(st.error(), kExitIncomplete);
  if (app.options().json) {
    auto a = nlohmann::json::array(), g = nlohmann::json::array();
    for (const auto& e : added) a.push_back(element_json(e));
    for (const auto& e : gone) g.push_back(element_json(e));
    print_json({{"url", url},
                {"elements", r.baseline.elements.size()},
                {"fetched", format_time_ns(r.current_ns)},
                {"added", std::move(a)},
                {"removed", std::move(g)}});
  } else if (!app.options().quiet) {
    std::printf("accepted %s: %zu active elements as fetched at %s (%zu added, %zu removed)\n",
                escape(url).c_str(), r.baseline.elements.size(),
                format_time_ns(r.current_ns).c_str(), added.size(), gone.size());
  }
  return kExitOk;
}

Run setup(CLI::App& cmd) {
  cmd.require_subcommand(0, 1);
  auto* l = cmd.add_subcommand("list", "list the pages and what is new on them");
  auto url = std::make_shared<std::string>();
  auto* a = cmd.add_subcommand("accept", "make a page's last fetched active content its baseline");
  a->add_option("URL", *url, "the url of a [[page]]")->required();
  return [l, a, url](App& app) {
    if (l->parsed()) return run_list(app);
    if (a->parsed()) return run_accept(app, *url);
    return usage_error("pages", "say list or accept URL");
  };
}

}  // namespace

Command pages_command() {
  return {"pages",
          "pages list|accept URL",
          "the page monitor: injections that never touch a file",
          kHelp,
          true,
          setup};
}

}  // namespace mamori::cli
