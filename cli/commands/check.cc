// mamori check: compare the roots with the baseline and report every difference.

#include <cstdio>
#include <unordered_map>

#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include "cli/commands/command.h"
#include "cli/commands/commands.h"
#include "cli/progress.h"
#include "core/base/quote.h"
#include "core/fs/beneath.h"
#include "core/fs/upload_policy.h"

namespace mamori::cli {
namespace {

// Verifies the catalog against its root hash, and the store's index (and with --full
// every stored object's content) before trusting either.
int verify_state(App& app, baseline::State& state, bool full) {
  auto st = state.catalog.verify();
  if (st) st = state.store->verify_index();
  if (st && full) {
    std::vector<Error> bad;
    st = state.store->verify_contents(app.executor(),
                                      [&](Error&& e) { bad.push_back(std::move(e)); });
    if (st && !bad.empty()) st = tl::unexpected(bad.front());
  }
  if (st) return kExitOk;
  Error e = st.error();
  e.detail = "mamori's own state failed verification: " + e.detail;
  return app.report(e, kExitIntegrity);
}

bool is_tree_change(const baseline::Change& c) {
  const auto& e = c.kind == baseline::ChangeKind::kAdded ? c.after : c.before;
  return c.kind != baseline::ChangeKind::kChanged && e.type == baseline::FileType::kDirectory;
}

// New entries the root's allow_new lets stay (and deny_new does not take back), as the
// agent judges them: listed as "allowed", not counted as changes in the exit status, so
// a site with uploads is "clean" until something else differs.
struct Allowed {
  fs::UploadPolicy policy;
  int root_fd = -1;
  bool matches(const baseline::Change& c) const {
    return c.kind == baseline::ChangeKind::kAdded && policy.allows(root_fd, c.path());
  }
};

Result<Allowed> allowed_for(const config::RootConfig& rc, int root_fd) {
  return Allowed{MAMORI_TRY(fs::UploadPolicy::compile(rc.allow_new, rc.deny_new)), root_fd};
}

// In text, an added or removed directory stands for everything added or removed beneath
// it: one deleted plugin is one line, not thousands. Maps each such directory to the
// number of entries it stands for. (Sorted by bytes, "css-old" falls between "css" and
// "css/a", so the children are found by their ancestors, not by position.)
// An allowed new directory is never collapsed: a script denied inside it must show.
std::unordered_map<std::string, size_t> collapse_subtrees(
    const std::vector<baseline::Change>& changes, const Allowed& allowed) {
  std::unordered_map<std::string, baseline::ChangeKind> tree;
  for (const auto& c : changes)
    if (is_tree_change(c) && !allowed.matches(c)) tree.emplace(c.path(), c.kind);
  std::unordered_map<std::string, size_t> out;
  for (const auto& c : changes) {
    // Count c under its topmost collapsed ancestor of the same kind.
    const std::string* top = nullptr;
    std::string_view p = c.path();
    while (!p.empty()) {
      p = fs::dirname(p);
      auto it = tree.find(std::string(p));
      if (it != tree.end() && it->second == c.kind) top = &it->first;
      if (it == tree.end() || it->second != c.kind) break;
    }
    if (top)
      ++out[*top];
    else if (is_tree_change(c) && !allowed.matches(c))
      out.emplace(c.path(), 0);
  }
  return out;
}

bool under_collapsed(const std::unordered_map<std::string, size_t>& beneath,
                     const baseline::Change& c) {
  if (beneath.empty()) return false;
  std::string_view p = c.path();
  while (!p.empty()) {
    p = fs::dirname(p);
    if (auto it = beneath.find(std::string(p)); it != beneath.end()) return true;
  }
  return false;
}

}  // namespace

int run_check(App& app, const std::vector<std::string>& paths, bool full) {
  auto scopes = app.targets(paths, paths.empty());
  if (!scopes) return app.report(scopes.error(), kExitUsage);

  auto state = app.open_state(baseline::StateAccess::kRead);
  if (!state)
    return app.report(state.error(),
                      state.error().errnum == ENOENT ? kExitUsage : App::code_for(state.error()));
  if (int code = verify_state(app, **state, full); code != kExitOk) return code;
  auto& catalog = (*state)->catalog;

  nlohmann::json out = {{"command", "check"},
                        {"full", full},
                        {"roots", nlohmann::json::array()},
                        {"changes", nlohmann::json::array()},
                        {"errors", nlohmann::json::array()}};
  size_t added = 0, removed = 0, changed = 0, errors = 0, entries = 0, hashed = 0, unbaselined = 0,
         allowed = 0;
  for (const auto& scope : *scopes) {
    const std::string& root_path = scope.root->config->path;
    auto root_id = baselined_root(app, catalog, root_path, unbaselined, out["errors"]);
    if (!root_id) return app.report(root_id.error(), App::code_for(root_id.error()));
    if (!*root_id) continue;
    auto root_fd = fs::open_root(root_path);
    if (!root_fd) {
      ++errors;
      warn_all(app, {root_fd.error()}, &out["errors"]);
      continue;
    }
    auto allow = allowed_for(*scope.root->config, root_fd->get());
    if (!allow) return app.report(allow.error(), kExitUsage);  // config.cc validated these
    baseline::Progress progress;
    Result<baseline::CheckReport> rep;
    {
      ProgressBar bar(progress, "check " + escape(root_path), app.show_progress());
      rep = baseline::check_root(catalog, **root_id,
                                 app.scan(*scope.root, root_fd->get(), &progress), scope.rel, full);
    }
    if (!rep) return app.report(rep.error(), App::code_for(rep.error()));
    entries += rep->entries;
    hashed += rep->hashed;
    errors += rep->errors.size();
    warn_all(app, rep->errors, &out["errors"]);
    out["roots"].push_back(
        {{"path", root_path}, {"entries", rep->entries}, {"hashed", rep->hashed}});
    const auto beneath = app.options().json ? std::unordered_map<std::string, size_t>{}
                                            : collapse_subtrees(rep->changes, *allow);
    for (const auto& c : rep->changes) {
      const bool is_allowed = allow->matches(c);
      switch (c.kind) {
        case baseline::ChangeKind::kAdded:
          ++(is_allowed ? allowed : added);
          break;
        case baseline::ChangeKind::kRemoved:
          ++removed;
          break;
        case baseline::ChangeKind::kChanged:
          ++changed;
          break;
      }
      if (app.options().json) {
        auto j = path_json(root_path, c.path());
        j["root"] = root_path;
        j["change"] = baseline::kind_name(c.kind);
        j["attributes"] = baseline::attr_names(c.attrs);
        if (c.kind != baseline::ChangeKind::kAdded) j["before"] = entry_json(c.before);
        if (c.kind != baseline::ChangeKind::kRemoved) j["after"] = entry_json(c.after);
        if (is_allowed) j["allowed"] = true;
        if (!c.hash_skipped.empty()) j["hash_skipped"] = c.hash_skipped;
        out["changes"].push_back(std::move(j));
        continue;
      }
      if (under_collapsed(beneath, c)) continue;
      std::string attrs;
      for (auto a : baseline::attr_names(c.attrs))
        attrs += (attrs.empty() ? "" : ", ") + std::string(a);
      if (auto it = beneath.find(c.path()); it != beneath.end() && it->second > 0)
        attrs = fmt::format("and {} entr{} beneath", it->second, it->second == 1 ? "y" : "ies");
      if (!c.hash_skipped.empty())
        attrs += (attrs.empty() ? "hash skipped: " : "; hash skipped: ") + c.hash_skipped;
      std::printf("%-8s %s%s\n",
                  is_allowed ? "allowed" : std::string(baseline::kind_name(c.kind)).c_str(),
                  escape(absolute(root_path, c.path())).c_str(),
                  attrs.empty() ? "" : ("  (" + attrs + ")").c_str());
    }
  }
  const size_t total = added + removed + changed;
  if (app.options().json) {
    out["summary"] = {{"added", added},     {"removed", removed}, {"changed", changed},
                      {"allowed", allowed}, {"errors", errors},   {"entries", entries},
                      {"hashed", hashed}};
    out["clean"] = total == 0 && errors == 0 && unbaselined == 0;
    print_json(out);
  } else if (!app.options().quiet) {
    std::printf("%s", total == 0 ? "clean: " : "");
    std::printf(
        "%zu change%s (%zu added, %zu removed, %zu changed%s) in %s entries; %s files "
        "re-hashed%s\n",
        total, total == 1 ? "" : "s", added, removed, changed,
        allowed ? fmt::format("; {} new allowed by allow_new", allowed).c_str() : "",
        fmt::format("{}", entries).c_str(), fmt::format("{}", hashed).c_str(),
        errors ? fmt::format("; {} could not be read", errors).c_str() : "");
  }
  if (errors) return kExitIncomplete;
  if (unbaselined) return kExitUsage;
  return total ? kExitChanges : kExitOk;
}

namespace {

constexpr std::string_view kHelp = R"TXT(NAME
    mamori check - compare the roots with the baseline

SYNOPSIS
    mamori check [--full] [--json] [--nice] [-j N] [PATH...]

DESCRIPTION
    First verifies mamori's own state: the catalog against its root hash (see
    'mamori status') and the store's index (with --full, every stored object against
    its SHA-256). Then walks the roots (or only the PATHs given) and reports every
    entry that was added, removed or changed, naming the attributes that changed:
    type, content, mode, owner, mtime, link_target, xattrs, device.

    By default a file whose inode, size, mtime and ctime all match the baseline is
    not re-read (ctime cannot be set back from user space, so any write moves it).
    --full re-hashes every file regardless.

    check never changes anything, not even its own state.

OPTIONS
    --full   re-hash every file and verify every object in the store

OUTPUT
    Text: one line per change, "added|removed|changed PATH (attributes)", then a
    summary. An added or removed directory stands for everything added or removed
    beneath it ("and N entries beneath"); --json lists every entry. With --json:
    {"changes": [{"path", "change", "attributes", "before", "after", "root"}...],
    "errors": [...], "summary": {...}, "clean": bool}. Paths that are not valid
    UTF-8 are escaped, with their exact bytes in "path_hex".

EXIT STATUS
    0 clean; 1 changes found; 2 usage error or no baseline; 3 some entries could not
    be read; 4 mamori's own state failed verification.
)TXT";

Run setup(CLI::App& cmd) {
  auto paths = std::make_shared<std::vector<std::string>>();
  auto full = std::make_shared<bool>(false);
  cmd.add_flag("--full", *full);
  cmd.add_option("paths", *paths);
  return [paths, full](App& app) { return run_check(app, *paths, *full); };
}

}  // namespace

Command check_command() {
  return {
      "check", "check [--full] [PATH...]", "report added, removed and changed entries", kHelp, true,
      setup};
}

}  // namespace mamori::cli
