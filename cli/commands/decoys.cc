// mamori decoys: plant honeytoken files in the roots and list them (core/decoy).

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <optional>
#include <span>
#include <vector>

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

Result<decoy::Record> load_record(const App& app) { return decoy::load(record_path(app)); }

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

// The web server's user, who runs the plugin and appends to the credential log.
struct WebUser {
  uid_t uid;
  gid_t gid;
};
Result<WebUser> lookup_web_user(const std::string& name) {
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (const int rc = ::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found); rc != 0)
    return fail("getpwnam", name, rc);
  if (!found) return fail_msg("getpwnam", name, "no such user: name the web server's (--web-user)");
  if (pw.pw_uid == 0) return fail_msg("decoys", name, "the web server's user is not root");
  return WebUser{pw.pw_uid, pw.pw_gid};
}

// The credential log's directory, owned by the web server's user (the plugin runs as it)
// inside a directory it cannot write (so it cannot swap the directory itself), and the
// log, created empty. The agent reads it as it reads an access log: never through a
// symlink, a regular file only, lines capped (agent/logwatch/tailer.h).
Status make_credential_log(const std::string& path, const WebUser& web) {
  const bool absolute = !path.empty() && path.front() == '/';
  const std::string dir(absolute ? fs::dirname(path.substr(1)) : "");
  if (!absolute || dir.empty() || fs::dirname(dir).empty() ||
      !fs::is_canonical_relative(path.substr(1)))
    return fail_msg("decoys", path,
                    "the credential log must be an absolute path /PARENT/DIR/FILE, its "
                    "directory to be the web server's");
  const std::string parent = "/" + std::string(fs::dirname(dir));
  UniqueFd parent_fd = MAMORI_TRY(fs::open_root(parent));
  struct stat st {};
  if (::fstat(parent_fd.get(), &st) != 0) return fail_errno("stat", parent);
  if (st.st_uid != 0 || (st.st_mode & S_IWOTH) || ((st.st_mode & S_IWGRP) && st.st_gid != 0))
    return fail_msg("decoys", parent,
                    "the credential log's directory must be in a directory only root may "
                    "write (the web server's user could swap its own directory otherwise)");
  const std::string name(fs::basename(dir));
  fs::InodeMeta dir_meta;
  dir_meta.mode = 0750;
  dir_meta.uid = web.uid;
  dir_meta.gid = web.gid;
  MAMORI_TRY(fs::ensure_directory(parent_fd.get(), name, dir_meta, "/" + dir));
  UniqueFd dir_fd = MAMORI_TRY(fs::open_beneath(parent_fd.get(), name, O_PATH | O_DIRECTORY));
  UniqueFd log = MAMORI_TRY(fs::open_beneath(dir_fd.get(), fs::basename(path),
                                             O_WRONLY | O_CREAT | O_APPEND | O_NONBLOCK, 0640));
  if (::fstat(log.get(), &st) != 0) return fail_errno("stat", path);
  if (!S_ISREG(st.st_mode)) return fail("decoys", path, EINVAL);
  if (::fchown(log.get(), web.uid, web.gid) != 0) return fail_errno("chown", path);
  if (::fchmod(log.get(), 0640) != 0) return fail_errno("chmod", path);
  return ok();
}

// A file of the site mamori writes whole (the plugin, a robots.txt of its own): owned like
// the root, 0644, replaced atomically. `rel` is "NAME" or "DIR/NAME" under the root.
Status write_site_file(Env& env, int root_fd, const std::string& root, const std::string& rel,
                       const std::string& text) {
  struct stat root_st {};
  if (::fstat(root_fd, &root_st) != 0) return fail_errno("stat", root);
  auto parent = MAMORI_TRY(fs::open_parent(root_fd, rel));
  fs::InodeMeta meta;
  meta.mode = 0644;
  meta.uid = root_st.st_uid;
  meta.gid = root_st.st_gid;
  const std::string display = root + "/" + rel;
  return fs::replace_file(
      env, parent.dir.get(), parent.name, meta,
      [&](int fd) { return write_all(env, fd, bytes_of(text), display); }, display);
}

// robots.txt with the traps' group appended (its owner and mode kept), or created.
Status publish_robots(Env& env, int root_fd, const std::string& root, decoy::Robots how,
                      const std::string& group) {
  const std::string display = root + "/robots.txt";
  if (how == decoy::Robots::kCreate) {
    // New only (O_EXCL): one that appeared since the plan is the site's.
    decoy::Decoy d;
    d.root = root;
    d.rel = "robots.txt";
    d.content = group;
    return create_decoy(env, root_fd, d);
  }
  UniqueFd fd = MAMORI_TRY(fs::open_beneath(root_fd, "robots.txt", O_RDONLY | O_NONBLOCK));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail_errno("stat", display);
  if (!S_ISREG(st.st_mode)) return fail("decoys", display, EINVAL);
  std::string text = MAMORI_TRY(fs::read_fd(fd.get(), 512 << 10, display));
  if (!text.empty() && text.back() != '\n') text += '\n';
  text += "\n" + group;
  fs::InodeMeta meta;
  meta.mode = st.st_mode & 07777;
  meta.uid = st.st_uid;
  meta.gid = st.st_gid;
  return fs::replace_file(
      env, root_fd, "robots.txt", meta,
      [&](int out) { return write_all(env, out, bytes_of(text), display); }, display);
}

// WordPress's must-use plugin (decoy::plugin_text), in wp-content/mu-plugins/ (made, owned
// like wp-content, when missing).
Status write_plugin(Env& env, int root_fd, const std::string& root, const std::string& text) {
  UniqueFd content = MAMORI_TRY(fs::open_beneath(root_fd, "wp-content", O_PATH | O_DIRECTORY));
  struct stat st {};
  if (::fstat(content.get(), &st) != 0) return fail_errno("stat", root + "/wp-content");
  fs::InodeMeta meta;
  meta.mode = st.st_mode & 0777;
  meta.uid = st.st_uid;
  meta.gid = st.st_gid;
  if (!fs::stat_beneath(root_fd, "wp-content/mu-plugins"))
    MAMORI_TRY(
        fs::ensure_directory(content.get(), "mu-plugins", meta, root + "/wp-content/mu-plugins"));
  return write_site_file(env, root_fd, root, std::string(decoy::kPluginRel), text);
}

struct PlantOptions {
  std::vector<std::string> roots;
  std::string url_prefix = "/";
  size_t count = 3;
  bool dry_run = false;
  std::string credential_log = "/var/log/mamori-decoys/credentials.log";
  std::string web_user = "www-data";
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
  // The credential log the plugins write to: the record's, once there is one.
  const std::string credential_log =
      planted->credential_log.empty() ? o.credential_log : planted->credential_log;
  std::optional<WebUser> web;
  std::vector<decoy::Decoy> fresh;
  std::vector<decoy::UrlDecoy> fresh_urls;
  std::vector<decoy::Site> fresh_sites;
  // A failure stops the planting; what was planted before it is still recorded below,
  // so that its rules ban and the next plant does not plant it twice.
  std::optional<std::pair<Error, int>> failed;
  for (const auto& t : *targets) {
    const std::string& root = t.root->config->path;
    const auto stop = [&](const Error& e, int code) { failed.emplace(e, code); };
    std::vector<std::string> taken;
    for (const auto& d : planted->files)
      if (d.root == root) taken.push_back(d.rel);
    auto root_fd = fs::open_root(root);
    if (!root_fd) {
      stop(root_fd.error(), kExitIncomplete);
      break;
    }
    auto plan = decoy::plan(root_fd->get(), root, o.url_prefix, o.count, taken, decoy::random_text);
    if (!plan) return app.report(plan.error(), kExitUsage);  // the prefix: nothing written yet
    // The URL decoys, once per root (a record of version 1 has files only: they come now).
    std::optional<decoy::UrlPlan> urls;
    if (std::none_of(planted->sites.begin(), planted->sites.end(),
                     [&](const decoy::Site& s) { return s.root == root; })) {
      auto u = decoy::plan_urls(root_fd->get(), root, o.url_prefix, decoy::random_text);
      if (!u) return app.report(u.error(), kExitUsage);
      urls = std::move(*u);
      if (urls->site.plugin && !o.dry_run && !web) {
        for (const auto& r : app.config().roots)
          if (credential_log.rfind(r.path + "/", 0) == 0)
            return app.report(Error{"decoys", credential_log, 0,
                                    "the credential log must be outside every root (the web "
                                    "server would serve it, the guard restore it)"},
                              kExitUsage);
        auto w = lookup_web_user(o.web_user);
        if (!w) return app.report(w.error(), kExitUsage);
        if (auto s = make_credential_log(credential_log, *w); !s) {
          stop(s.error(), kExitIncomplete);
          break;
        }
        web = *w;
      }
    }
    if (o.dry_run) {
      fresh.insert(fresh.end(), plan->begin(), plan->end());
    } else {
      for (const auto& d : *plan) {
        if (auto s = create_decoy(app.env(), root_fd->get(), d); !s) {
          stop(s.error(), kExitIncomplete);
          break;
        }
        fresh.push_back(d);
      }
      if (failed) break;
      if (urls && urls->site.robots != decoy::Robots::kNone &&
          urls->site.robots != decoy::Robots::kPlugin)
        if (auto s = publish_robots(app.env(), root_fd->get(), root, urls->site.robots,
                                    decoy::robots_group(urls->urls));
            !s) {
          stop(s.error(), kExitIncomplete);
          break;
        }
      // The plugin holds every file decoy of its root: written again when one is added.
      const bool plugin =
          urls ? urls->site.plugin
               : std::any_of(planted->sites.begin(), planted->sites.end(),
                             [&](const decoy::Site& s) { return s.root == root && s.plugin; });
      if (plugin && (urls || !plan->empty())) {
        std::vector<decoy::Decoy> files = planted->files;
        files.insert(files.end(), plan->begin(), plan->end());
        std::vector<decoy::UrlDecoy> all_urls = planted->urls;
        if (urls) all_urls.insert(all_urls.end(), urls->urls.begin(), urls->urls.end());
        decoy::Site site = urls ? urls->site : decoy::Site{};
        if (!urls)
          for (const auto& s : planted->sites)
            if (s.root == root) site = s;
        if (auto s = write_plugin(app.env(), root_fd->get(), root,
                                  decoy::plugin_text(site, files, all_urls, credential_log));
            !s) {
          stop(s.error(), kExitIncomplete);  // its URL decoys unrecorded: planted again next time
          break;
        }
      }
    }
    if (urls) {
      fresh_urls.insert(fresh_urls.end(), urls->urls.begin(), urls->urls.end());
      fresh_sites.push_back(urls->site);
    }
  }
  if (!o.dry_run && !(fresh.empty() && fresh_sites.empty())) {
    planted->files.insert(planted->files.end(), fresh.begin(), fresh.end());
    planted->urls.insert(planted->urls.end(), fresh_urls.begin(), fresh_urls.end());
    planted->sites.insert(planted->sites.end(), fresh_sites.begin(), fresh_sites.end());
    if (std::any_of(planted->sites.begin(), planted->sites.end(),
                    [](const decoy::Site& s) { return s.plugin; }))
      planted->credential_log = credential_log;
    auto was = fs::make_private_dir(app.config().state_dir);
    if (!was) return app.report(was.error(), kExitIncomplete);
    if (*was) app.warn_private_dir(app.config().state_dir, **was);
    // The record after the files: a crash in between leaves files the next plant skips
    // (their names are taken), never a record of files that are not there.
    if (auto s =
            write_state_file(app, "decoys.json", decoy::to_json(*planted).dump(2) + "\n", 0600);
        !s)
      return app.report(s.error(), kExitIncomplete);
    const std::string rules = decoy::rules_text(planted->files) +
                              decoy::url_rules_text(planted->urls) +
                              decoy::credential_rules_text(planted->files);
    if (auto s = write_state_file(app, "decoys.rules", rules, 0644); !s)
      return app.report(s.error(), kExitIncomplete);
  }
  if (failed) return app.report(failed->first, failed->second);
  if (app.options().json) {
    auto j = decoy::to_json(decoy::Record{fresh, fresh_urls, fresh_sites, {}});
    for (auto& d : j["decoys"]) d.erase("password");
    print_json({{"command", "decoys plant"},
                {"dry_run", o.dry_run},
                {"planted", j["decoys"]},
                {"urls", j["urls"]},
                {"sites", j["sites"]}});
  } else if (!app.options().quiet) {
    const char* verb = o.dry_run ? "would plant" : "planted";
    for (const auto& d : fresh)
      std::printf("%s %s  (served as %s)\n", verb, escape(d.root + "/" + d.rel).c_str(),
                  escape(d.url).c_str());
    for (const auto& u : fresh_urls)
      std::printf("%s the URL %s  (%s, rule %s)\n", verb, escape(u.url).c_str(),
                  std::string(decoy::url_kind_name(u.kind)).c_str(), decoy::rule_id(u).c_str());
    for (const auto& s : fresh_sites) {
      if (s.plugin)
        std::printf("%s %s  (credential use logged to %s)\n", verb,
                    escape(s.root + "/" + std::string(decoy::kPluginRel)).c_str(),
                    escape(credential_log).c_str());
      if (s.robots == decoy::Robots::kNone)
        std::printf("no robots.txt trap under %s: its robots.txt is no regular file\n",
                    escape(s.root).c_str());
    }
    if (fresh.empty() && fresh_sites.empty())
      std::printf("nothing to plant: every root has its decoys\n");
  }
  return kExitOk;
}

int run_list(App& app) {
  auto planted = load_record(app);
  if (!planted) return app.report(planted.error(), kExitIncomplete);
  if (app.options().json) {
    auto j = decoy::to_json(*planted);
    for (auto& d : j["decoys"]) d.erase("password");
    print_json({{"command", "decoys list"},
                {"decoys", j["decoys"]},
                {"urls", j["urls"]},
                {"sites", j["sites"]},
                {"credential_log", j["credential_log"]}});
    return kExitOk;
  }
  for (const auto& d : planted->files)
    std::printf("%s  %s  rule decoy-%s  user %s\n", escape(d.root + "/" + d.rel).c_str(),
                escape(d.url).c_str(), d.token.c_str(), escape(d.user).c_str());
  for (const auto& u : planted->urls)
    std::printf("%s  %s  rule %s  (%s)\n", escape(u.root).c_str(), escape(u.url).c_str(),
                decoy::rule_id(u).c_str(), std::string(decoy::url_kind_name(u.kind)).c_str());
  if (!planted->credential_log.empty())
    std::printf("credential use on wp-login.php: %s (rules decoy-credential-TOKEN)\n",
                escape(planted->credential_log).c_str());
  return kExitOk;
}

constexpr std::string_view kHelp = R"TXT(NAME
    mamori decoys - plant honeytoken files and decoy URLs in the site, list them

SYNOPSIS
    mamori deploy -- mamori decoys plant [--root ROOT]... [--url-prefix PATH] [--count N]
                                         [--credential-log PATH] [--web-user USER]
    mamori decoys plant --dry-run [--root ROOT]...
    mamori decoys list [--json]

DESCRIPTION
    plant puts, at the top of each root (every configured root, or the --root ones),
    files an attacker looks for first and no visitor ever asks for: for a WordPress
    tree wp-config.php.bak, backup.sql and .env; for another site .env, backup.sql
    and config.php.bak. A name the site already uses is never taken (the next one of
    its kind is, e.g. wp-config.php.old). Each file holds fake database credentials of
    its own, made for this node, and is owned like the root, mode 0644, so the web
    server serves it.

    It also sets decoy URLs, which have no file behind them (the web server answers
    404, as for any unknown path): a random trap path listed as a Disallow: line of
    robots.txt (appended to the site's robots.txt, or a robots.txt created; for
    WordPress without one, WordPress's virtual robots.txt through the plugin), a
    second trap behind an invisible rel="nofollow" link (WordPress), and the admin
    and installer paths scanners probe that the site lacks (/.git/config,
    /adminer.php, /phpmyadmin/, /installer.php or /install.php).

    For WordPress it writes the must-use plugin
    wp-content/mu-plugins/mamori-decoys.php: the robots.txt filter, the link, and a
    login hook that, when a submitted user or password is one of the decoy files'
    (compared by SHA-256; the passwords are not in the plugin), appends a line to
    the credential log (default /var/log/mamori-decoys/credentials.log, its
    directory made and given to --web-user, default www-data). The agent follows
    that log as it follows the access logs.

    All is recorded in STATE/decoys.json (0600) and STATE/decoys.rules: rules
    "decoy-TOKEN" (a file), "decoy-trap-TOKEN" (a trap), "decoy-url-TOKEN" (a fake
    path), tag "decoy", and "decoy-credential-TOKEN" (a file's credentials used on
    wp-login.php or xmlrpc.php), tag "decoy-credential": each bans on the first
    request. A root that has its decoys gets no second set.

    Run it under 'mamori deploy' so that a running agent does not take the new files
    for a dropper and the files go into the baseline: from then on they are guarded
    like every other file. The agent reads STATE/decoys.rules and the credential log's
    path when it starts: restart it after planting (systemctl restart mamori-agent).

    list shows the planted decoys: files, URLs, rules and fake users (--json: without
    the passwords).

OPTIONS
    --root ROOT            plant under this configured root only (repeatable)
    --url-prefix PATH      the URL the root is served at (default /); [A-Za-z0-9._~/-]
    --count N              decoy files per root, at most 3 (default 3)
    --credential-log PATH  where the WordPress plugin logs decoy credentials used, in
                           a directory of its own inside one only root may write;
                           outside every root (fixed by the first plant)
    --web-user USER        the user PHP runs as (default www-data)
    --dry-run              show what would be planted; write nothing

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
  p->add_option("--credential-log", plant->credential_log,
                "where the WordPress plugin logs decoy credentials used (absolute)");
  p->add_option("--web-user", plant->web_user, "the user the web server's PHP runs as");
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
