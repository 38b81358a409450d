// mamori setup: reads the web servers' own configuration (nginx, Apache, PHP-FPM),
// shows the mamori config it proposes for the sites it finds, and writes it when told
// to. The reading and the proposal are core/webconf; this file is the command.

#include <unistd.h>

#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/commands/command.h"
#include "cli/commands/commands.h"
#include "core/base/quote.h"
#include "core/config/config.h"
#include "core/fs/admin_files.h"
#include "core/webconf/apache.h"
#include "core/webconf/nginx.h"
#include "core/webconf/php_fpm.h"
#include "core/webconf/plan.h"

namespace mamori::cli {
namespace {

constexpr const char* kNginxConf = "/etc/nginx/nginx.conf";
constexpr const char* kApacheConf = "/etc/apache2/apache2.conf";
constexpr const char* kPhpFpmConfs = "/etc/php/*/fpm/php-fpm.conf";

struct SetupOptions {
  std::string nginx_conf = kNginxConf;                      // "none": not read
  std::string apache_conf = kApacheConf;                    // "none": not read
  std::string apache_envvars;                               // "" = envvars beside apache_conf
  std::vector<std::string> php_fpm_confs = {kPhpFpmConfs};  // "none": not read
  std::string output;                                       // "" = --config's path
  std::string state_dir;                                    // "" = the default
  bool yes = false;
  bool force = false;
  bool init = false;
};

using nlohmann::json;

json origin_json(const webconf::Origin& o) { return o.text(); }

json log_json(const webconf::LogRef& l) {
  json j = {{"path", l.path}, {"from", origin_json(l.from)}};
  if (!l.format.empty()) j["format"] = l.format;
  if (!l.format_name.empty()) j["format_name"] = l.format_name;
  return j;
}

json server_json(const webconf::ServerConf& s) {
  json sites = json::array();
  for (const auto& site : s.sites) {
    json roots = json::array(), logs = json::array(), errors = json::array();
    for (const auto& r : site.roots)
      roots.push_back({{"path", r.path}, {"context", r.context}, {"from", origin_json(r.from)}});
    for (const auto& l : site.access_logs) logs.push_back(log_json(l));
    for (const auto& l : site.error_logs) errors.push_back(log_json(l));
    sites.push_back({{"names", site.names},
                     {"listen", site.listen},
                     {"from", origin_json(site.from)},
                     {"roots", roots},
                     {"access_logs", logs},
                     {"error_logs", errors},
                     {"fastcgi", site.fastcgi}});
  }
  return {{"server", s.server},
          {"main_file", s.main_file},
          {"user", s.user},
          {"files", s.files},
          {"sites", sites}};
}

json fpm_json(const webconf::FpmConf& f) {
  json pools = json::array();
  for (const auto& p : f.pools)
    pools.push_back(
        {{"name", p.name}, {"listen", p.listen}, {"user", p.user}, {"from", origin_json(p.from)}});
  return {
      {"main_file", f.main_file}, {"pid_file", f.pid_file}, {"files", f.files}, {"pools", pools}};
}

json plan_json(const webconf::Plan& p) {
  json roots = json::array(), logs = json::array(), users = json::array();
  for (const auto& r : p.roots) {
    json apps = json::array();
    for (const auto& a : r.apps)
      apps.push_back({{"kind", a.kind}, {"dir", a.dir}, {"guarded", a.guarded}});
    roots.push_back({{"path", r.path},
                     {"sources", r.sources},
                     {"exclude", r.exclude},
                     {"allow_new", r.allow_new},
                     {"apps", apps},
                     {"remarks", r.remarks}});
  }
  for (const auto& l : p.logs)
    logs.push_back({{"path", l.path},
                    {"format", l.format},
                    {"root", l.root},
                    {"sources", l.sources},
                    {"usable", l.usable}});
  for (const auto& u : p.users)
    users.push_back({{"server", u.server}, {"user", u.user}, {"from", u.from}});
  json opcache = nullptr;
  if (p.opcache.found)
    opcache = {{"socket", p.opcache.socket},
               {"pid_file", p.opcache.pid_file},
               {"sources", p.opcache.sources}};
  json notes = json::array();
  for (const auto& n : p.notes) notes.push_back(n.text());
  return {
      {"roots", roots}, {"logs", logs}, {"users", users}, {"opcache", opcache}, {"notes", notes}};
}

// An option naming a file: "none" skips it; the default path skips quietly when the
// server is not installed; a path given on the command line must exist.
bool wanted(const std::string& path) { return !path.empty() && path != "none"; }

struct Found {
  std::vector<webconf::ServerConf> servers;
  std::vector<webconf::FpmConf> fpm;
};

// Reads every configuration; an explicit file that cannot be read is an error (exit 2),
// a default one that is absent means the server is not installed.
std::optional<int> gather(App& app, const SetupOptions& o, Found& found) {
  webconf::RealConfSource src;
  const auto missing_default = [](const Error& e, const std::string& path, const char* def) {
    return e.errnum == ENOENT && path == def;
  };
  if (wanted(o.nginx_conf)) {
    auto n = webconf::read_nginx(src, o.nginx_conf);
    if (n)
      found.servers.push_back(std::move(*n));
    else if (!missing_default(n.error(), o.nginx_conf, kNginxConf))
      return app.report(n.error(), kExitUsage);
  }
  if (wanted(o.apache_conf)) {
    const std::string envvars = o.apache_envvars.empty()
                                    ? webconf::parent_dir(o.apache_conf) + "/envvars"
                                    : o.apache_envvars;
    std::map<std::string, std::string> vars;
    if (auto text = src.read(envvars))
      vars = webconf::parse_envvars(*text);
    else if (!o.apache_envvars.empty())
      return app.report(text.error(), kExitUsage);
    auto a = webconf::read_apache(src, o.apache_conf, std::move(vars));
    if (a)
      found.servers.push_back(std::move(*a));
    else if (!missing_default(a.error(), o.apache_conf, kApacheConf))
      return app.report(a.error(), kExitUsage);
  }
  for (const auto& pattern : o.php_fpm_confs) {
    if (!wanted(pattern)) continue;
    auto files = src.glob(pattern);
    if (!files) return app.report(files.error(), kExitUsage);
    for (const auto& f : *files) {
      auto c = webconf::read_php_fpm(src, f);
      if (c)
        found.fpm.push_back(std::move(*c));
      else if (!(c.error().errnum == ENOENT && pattern == kPhpFpmConfs))
        return app.report(c.error(), kExitUsage);
    }
  }
  return std::nullopt;
}

// Asks on the terminal; false without one.
bool confirm(const std::string& question) {
  if (!::isatty(STDIN_FILENO)) return false;
  std::fprintf(stderr, "%s [y/N] ", question.c_str());
  std::fflush(stderr);
  std::string answer;
  if (!std::getline(std::cin, answer)) return false;
  return answer == "y" || answer == "Y" || answer == "yes";
}

Status write_config(App& app, const std::string& path, const std::string& text, bool force) {
  const std::string dir = webconf::parent_dir(path);
  MAMORI_TRY(fs::make_private_dirs(dir));
  if (force) return fs::write_file_atomic(app.env(), path, text, 0600);
  const bool created = MAMORI_TRY(fs::create_file_exclusive(app.env(), path, text, 0600));
  if (!created) return fail("create", path, EEXIST, "exists; --force replaces it");
  return ok();
}

int run_setup(App& app, const SetupOptions& o) {
  const bool text_out = !app.options().json;
  Found found;
  if (auto code = gather(app, o, found)) return *code;
  webconf::Plan plan = webconf::make_plan(found.servers, found.fpm);
  if (!o.state_dir.empty()) plan.state_dir = o.state_dir;
  const std::string toml = webconf::render_toml(plan);
  // What is proposed must load: a planner bug must never write a config the agent
  // refuses at its next start.
  if (auto c = config::parse_config(toml, "(proposed config)"); !c)
    return app.report(
        Error{"setup", "", 0, "the proposed config does not load: " + c.error().text()},
        kExitIncomplete);
  const std::string output = o.output.empty() ? app.options().config_path : o.output;

  json out = {{"command", "setup"},      {"servers", json::array()}, {"php_fpm", json::array()},
              {"plan", plan_json(plan)}, {"config", toml},           {"output", output},
              {"written", false}};
  for (const auto& s : found.servers) out["servers"].push_back(server_json(s));
  for (const auto& f : found.fpm) out["php_fpm"].push_back(fpm_json(f));

  if (text_out && !app.options().quiet) {
    std::fwrite(toml.data(), 1, toml.size(), stdout);
    std::fflush(stdout);
  }
  if (found.servers.empty()) {
    if (app.options().json) print_json(out);
    return app.report(Error{"setup", "", 0,
                            "found no nginx or Apache configuration (--nginx-conf, "
                            "--apache-conf name other places)"},
                      kExitIncomplete);
  }
  if (plan.roots.empty()) {
    if (app.options().json) print_json(out);
    return app.report(
        Error{"setup", "", 0,
              "found no document root mamori can guard (the notes at the end say why)"},
        kExitIncomplete);
  }
  struct stat st {};
  if (!o.force && ::lstat(output.c_str(), &st) == 0) {
    if (app.options().json) print_json(out);
    return app.report(Error{"setup", output, EEXIST, "exists; --force replaces it"}, kExitUsage);
  }
  const bool go = o.yes || (text_out && confirm("Write this config to " + quote(output) + "?"));
  if (!go) {
    if (app.options().json)
      print_json(out);
    else
      std::fprintf(stderr, "mamori: not written (--yes writes it without asking)\n");
    return kExitChanges;
  }
  if (auto w = write_config(app, output, toml, o.force); !w) {
    if (app.options().json) print_json(out);
    return app.report(w.error(), kExitIncomplete);
  }
  out["written"] = true;
  const std::string config_arg =
      output == GlobalOptions{}.config_path ? "" : " --config " + quote(output);
  if (text_out && !app.options().quiet) {
    std::printf("\nwrote %s\n", quote(output).c_str());
    if (!o.init) {
      std::printf("next:\n  mamori%s init                         # record the baseline\n",
                  config_arg.c_str());
      std::printf("  systemctl enable --now mamori-agent   # start the real-time guard\n");
    }
  }
  if (!o.init) {
    if (app.options().json) print_json(out);
    return kExitOk;
  }
  GlobalOptions g = app.options();
  g.config_path = output;
  App init_app(g);
  if (auto code = init_app.load()) return *code;
  if (app.options().json) print_json(out);  // then init's own report
  const int rc = run_init(init_app, {});
  if (rc == kExitOk && text_out && !app.options().quiet)
    std::printf("next:\n  systemctl enable --now mamori-agent   # start the real-time guard\n");
  return rc;
}

constexpr std::string_view kHelp = R"TXT(NAME
    mamori setup - write a config for the sites on this machine

SYNOPSIS
    mamori setup [--yes] [--force] [--init] [--output FILE] [--state-dir DIR]
                 [--nginx-conf FILE] [--apache-conf FILE] [--apache-envvars FILE]
                 [--php-fpm-conf FILE...]

DESCRIPTION
    Reads the web servers' own configuration and proposes a mamori config for what
    it finds, each value with a comment saying where it came from:

    nginx (/etc/nginx/nginx.conf and its includes): each server block's root (its
    own or http's, and location roots), access_log with its log_format, error_log,
    fastcgi_pass, and the workers' user. Apache (/etc/apache2/apache2.conf, the
    envvars file beside it for ${APACHE_LOG_DIR} and friends, IncludeOptional of
    sites-enabled/): each VirtualHost's DocumentRoot, CustomLog with its LogFormat
    nickname or string, ErrorLog, SetHandler proxy:unix FastCGI handlers, User.
    PHP-FPM (/etc/php/*/fpm/php-fpm.conf and pool.d/): each pool's listen and user,
    the master's pid file.

    One [[root]] per distinct document root (symlinks resolved; two sites sharing
    a root share it; a root inside another is guarded as part of it), mode
    "restore". In each root and its top-level directories it looks for WordPress
    (wp-content/uploads as allow_new, wp-content/cache excluded, wp-config.php
    guarded), phpMyAdmin (tmp/ excluded, config.inc.php guarded) and MediaWiki
    (images/ as allow_new, cache/ excluded, LocalSettings.php guarded); a guarded
    file readable by every local user is pointed out. One [[log]] per access log,
    with its format and the root its requests map to; a format mamori cannot read
    is written commented out. [opcache] for the PHP-FPM pool the sites pass PHP to.

    Whatever it cannot use is listed at the end of the config with the file and
    line it came from, never a crash: a root that does not exist, a relative root,
    a root of '/' or a system directory such as /var (refused: mamori does not
    guard the whole system), include loops and includes nested deeper than 16, a
    file that does not parse, logs written to syslog or a pipe.

    The config is printed first and written only when confirmed at the terminal or
    with --yes, to --output (default: the --config path, /etc/mamori/mamori.toml),
    never over an existing file without --force. Then it prints the next steps
    (mamori init, systemctl enable --now mamori-agent), or with --init runs init.

OPTIONS
    --yes                write without asking
    --force              replace an existing config
    --init               record the baseline right after writing (mamori init)
    --output FILE        where to write (default: --config's path)
    --state-dir DIR      the config's state_dir (default /var/lib/mamori)
    --nginx-conf FILE    nginx's main config (default /etc/nginx/nginx.conf;
                         "none": do not read nginx's)
    --apache-conf FILE   Apache's (default /etc/apache2/apache2.conf; "none")
    --apache-envvars FILE  the shell file exporting APACHE_* (default: envvars
                         beside --apache-conf)
    --php-fpm-conf FILE  PHP-FPM master configs, globs allowed (default
                         /etc/php/*/fpm/php-fpm.conf; "none")

OUTPUT
    With --json (nothing printed but the JSON; still writes only with --yes):
    {"servers": [{"server", "main_file", "user", "files", "sites": [{"names",
    "listen", "from", "roots", "access_logs", "error_logs", "fastcgi"}]}],
    "php_fpm": [{"main_file", "pid_file", "pools"}], "plan": {"roots", "logs",
    "users", "opcache", "notes"}, "config", "output", "written"}.

EXAMPLES
    sudo mamori setup
    sudo mamori setup --yes --init && sudo systemctl enable --now mamori-agent
    mamori setup --json --nginx-conf /srv/test/nginx.conf --apache-conf none

EXIT STATUS
    0 written (and with --init, the baseline recorded; init's own status otherwise);
    1 not written: not confirmed, or no terminal to ask and no --yes; 2 bad
    arguments, a configuration file named on the command line cannot be read or
    parsed, or the output exists (--force); 3 no web server configuration or no
    document root to guard was found, or the file could not be written.
)TXT";

Run setup(CLI::App& cmd) {
  auto o = std::make_shared<SetupOptions>();
  cmd.add_flag("--yes,-y", o->yes);
  cmd.add_flag("--force", o->force);
  cmd.add_flag("--init", o->init);
  cmd.add_option("--output,-o", o->output);
  cmd.add_option("--state-dir", o->state_dir);
  cmd.add_option("--nginx-conf", o->nginx_conf);
  cmd.add_option("--apache-conf", o->apache_conf);
  cmd.add_option("--apache-envvars", o->apache_envvars);
  cmd.add_option("--php-fpm-conf", o->php_fpm_confs)->allow_extra_args(false);
  return [o](App& app) { return run_setup(app, *o); };
}

}  // namespace

Command setup_command() {
  return {"setup",
          "setup [--yes] [--init]",
          "write a config for the sites nginx/Apache serve here",
          kHelp,
          false,
          setup};
}

}  // namespace mamori::cli
