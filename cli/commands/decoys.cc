// mamori decoys: plant honeytoken files in the roots and list them (core/decoy).

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <span>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "cli/commands/command.h"
#include "cli/commands/commands.h"
#include "core/base/quote.h"
#include "core/decoy/decoy.h"
#include "core/fs/admin_files.h"
#include "core/fs/atomic_replace.h"
#include "core/fs/beneath.h"

namespace mamori::cli {
namespace {

std::string record_path(const App& app) { return app.config().state_dir + "/decoys.json"; }

Result<std::vector<decoy::Decoy>> load_record(const App& app) {
  return decoy::load_record(record_path(app));
}

std::span<const uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

Status write_state_file(App& app, const std::string& name, const std::string& text, mode_t mode) {
  const std::string& dir = app.config().state_dir;
  auto state = MAMORI_TRY(fs::open_root(dir));
  auto parent = MAMORI_TRY(fs::open_parent(state.get(), name));
  fs::InodeMeta meta;
  meta.mode = mode;
  return fs::replace_file(
      app.env(), parent.dir.get(), parent.name, meta,
      [&](int fd) { return write_all(app.env(), fd, bytes_of(text), dir + "/" + name); },
      dir + "/" + name);
}

// A new file only (O_EXCL, never through a symlink): a name that appeared since the plan
// is the site's, and is left alone. Owned like the root and readable by the web server.
Status create_decoy(Env& env, int root_fd, const decoy::Decoy& d) {
  struct stat root_st {};
  if (::fstat(root_fd, &root_st) != 0) return fail_errno("stat", d.root);
  const std::string display = d.root + "/" + d.rel;
  UniqueFd fd = MAMORI_TRY(fs::open_beneath(root_fd, d.rel, O_WRONLY | O_CREAT | O_EXCL, 0644));
  auto filled = [&]() -> Status {
    MAMORI_TRY(write_all(env, fd.get(), bytes_of(d.content), display));
    if (::fchown(fd.get(), root_st.st_uid, root_st.st_gid) != 0)
      return fail_errno("chown", display);
    if (::fchmod(fd.get(), 0644) != 0) return fail_errno("chmod", display);
    if (::fsync(fd.get()) != 0) return fail_errno("fsync", display);
    return ok();
  }();
  if (!filled) ::unlinkat(root_fd, d.rel.c_str(), 0);  // never half a decoy
  return filled;
}

struct PlantOptions {
  std::vector<std::string> roots;
  std::string url_prefix = "/";
  size_t count = 3;
  bool dry_run = false;
};

int run_plant(App& app, const PlantOptions& o) {
  auto planted = load_record(app);
  if (!planted) return app.report(planted.error(), kExitIncomplete);
  auto targets = app.targets(o.roots, o.roots.empty());
  if (!targets) return app.report(targets.error(), kExitUsage);
  for (const auto& t : *targets)
    if (!t.rel.empty())
      return app.report(Error{"decoys", t.root->config->path + "/" + t.rel, 0,
                              "decoys go at the top of a root: name the root itself"},
                        kExitUsage);
  // A running agent takes new files for a dropper's unless a deploy has paused the root.
  if (!o.dry_run) {
    auto agent = agent_status(app);
    if (!agent) return app.report(agent.error(), kExitIncomplete);
    if (*agent)
      for (const auto& r : (**agent)["roots"])
        for (const auto& t : *targets)
          if (r["path"] == t.root->config->path && !r["paused"].get<bool>())
            return app.report(
                Error{"decoys", t.root->config->path, 0,
                      "the agent guards this root: plant under a deploy, "
                      "'mamori deploy -- mamori decoys plant', so that the new files are "
                      "neither quarantined nor left out of the baseline"},
                kExitUsage);
  }
  std::vector<decoy::Decoy> fresh;
  for (const auto& t : *targets) {
    const std::string& root = t.root->config->path;
    std::vector<std::string> taken;
    for (const auto& d : *planted)
      if (d.root == root) taken.push_back(d.rel);
    auto root_fd = fs::open_root(root);
    if (!root_fd) return app.report(root_fd.error(), kExitIncomplete);
    auto plan = decoy::plan(root_fd->get(), root, o.url_prefix, o.count, taken, decoy::random_text);
    if (!plan) return app.report(plan.error(), kExitUsage);
    for (auto& d : *plan) {
      if (!o.dry_run)
        if (auto s = create_decoy(app.env(), root_fd->get(), d); !s)
          return app.report(s.error(), kExitIncomplete);
      fresh.push_back(std::move(d));
    }
  }
  if (!o.dry_run && !fresh.empty()) {
    planted->insert(planted->end(), fresh.begin(), fresh.end());
    auto was = fs::make_private_dir(app.config().state_dir);
    if (!was) return app.report(was.error(), kExitIncomplete);
    if (*was) app.warn_private_dir(app.config().state_dir, **was);
    // The record first: a crash after it leaves files mamori knows of, never unknown ones.
    if (auto s =
            write_state_file(app, "decoys.json", decoy::to_json(*planted).dump(2) + "\n", 0600);
        !s)
      return app.report(s.error(), kExitIncomplete);
    if (auto s = write_state_file(app, "decoys.rules", decoy::rules_text(*planted), 0644); !s)
      return app.report(s.error(), kExitIncomplete);
  }
  if (app.options().json) {
    auto j = decoy::to_json(fresh);
    for (auto& d : j["decoys"]) d.erase("password");
    print_json({{"command", "decoys plant"}, {"dry_run", o.dry_run}, {"planted", j["decoys"]}});
  } else if (!app.options().quiet) {
    for (const auto& d : fresh)
      std::printf("%s %s  (served as %s)\n", o.dry_run ? "would plant" : "planted",
                  escape(d.root + "/" + d.rel).c_str(), escape(d.url).c_str());
    if (fresh.empty()) std::printf("nothing to plant: every root has its decoys\n");
  }
  return kExitOk;
}

int run_list(App& app) {
  auto planted = load_record(app);
  if (!planted) return app.report(planted.error(), kExitIncomplete);
  if (app.options().json) {
    auto j = decoy::to_json(*planted);
    for (auto& d : j["decoys"]) d.erase("password");
    print_json({{"command", "decoys list"}, {"decoys", j["decoys"]}});
    return kExitOk;
  }
  for (const auto& d : *planted)
    std::printf("%s  %s  rule decoy-%s  user %s\n", escape(d.root + "/" + d.rel).c_str(),
                escape(d.url).c_str(), d.token.c_str(), escape(d.user).c_str());
  return kExitOk;
}

constexpr std::string_view kHelp = R"TXT(NAME
    mamori decoys - plant honeytoken files in the site, list them

SYNOPSIS
    mamori deploy -- mamori decoys plant [--root ROOT]... [--url-prefix PATH] [--count N]
    mamori decoys plant --dry-run [--root ROOT]...
    mamori decoys list [--json]

DESCRIPTION
    plant puts, at the top of each root (every configured root, or the --root ones),
    files an attacker looks for first and no visitor ever asks for: for a WordPress
    tree wp-config.php.bak, backup.sql and .env; for another site .env, backup.sql
    and config.php.bak. A name the site already uses is never taken (the next one of
    its kind is, e.g. wp-config.php.old). Each file holds fake database credentials of
    its own, made for this node, and is owned like the root, mode 0644, so the web
    server serves it. The files are recorded in STATE/decoys.json (0600) and
    STATE/decoys.rules: one access-log rule per file, "decoy-TOKEN", which bans
    whoever requests its URL (URL-PREFIX + name) on the first request, tag "decoy".
    A root that has its decoys gets no second set.

    Run it under 'mamori deploy' so that a running agent does not take the new files
    for a dropper and the files go into the baseline: from then on they are guarded
    like every other file. The agent reads STATE/decoys.rules when it starts:
    restart it after planting (systemctl restart mamori-agent).

    list shows the planted decoys: file, URL, rule and fake user (--json: without
    the passwords).

OPTIONS
    --root ROOT        plant under this configured root only (repeatable)
    --url-prefix PATH  the URL the root is served at (default /); [A-Za-z0-9._~/-]
    --count N          decoys per root, at most 3 (default 3)
    --dry-run          show what would be planted; write nothing

EXAMPLES
    mamori deploy -- mamori decoys plant
    mamori deploy --root /var/www/html -- mamori decoys plant --root /var/www/html
    mamori decoys list --json

EXIT STATUS
    0 done (or nothing to plant); 2 bad arguments or config; 3 a file or the record
    could not be written (what was planted before it is recorded).
)TXT";

Run setup(CLI::App& cmd) {
  cmd.require_subcommand(0, 1);
  auto plant = std::make_shared<PlantOptions>();
  auto* p = cmd.add_subcommand("plant", "plant honeytoken files at the top of the roots");
  p->add_option("--root", plant->roots, "a configured root (repeatable)");
  p->add_option("--url-prefix", plant->url_prefix, "the URL the root is served at");
  p->add_option("--count", plant->count, "decoys per root")->check(CLI::Range(1, 3));
  p->add_flag("--dry-run", plant->dry_run, "write nothing");
  auto* l = cmd.add_subcommand("list", "list the planted decoys");
  return [plant, p, l](App& app) {
    if (p->parsed()) return run_plant(app, *plant);
    if (l->parsed()) return run_list(app);
    return usage_error("decoys", "say plant or list");
  };
}

}  // namespace

Command decoys_command() {
  return {
      "decoys", "decoys plant|list", "honeytoken files: who asks for one is banned", kHelp, true,
      setup};
}

}  // namespace mamori::cli
