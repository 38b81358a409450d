#pragma once
// From what the readers found (nginx.h, apache.h, php_fpm.h) to the config `mamori
// setup` proposes: one [[root]] per distinct document root (canonical, symlinks
// resolved, nested roots merged into the outer one), with the applications found in it
// (WordPress, phpMyAdmin, MediaWiki: upload directories as allow_new, caches excluded,
// their config files with secrets guarded); one [[log]] per access log with its format
// and root; [opcache] for the PHP-FPM pool the sites pass PHP to. Whatever cannot be used
// is a note saying why, with the file and line it came from: a root that does not exist,
// a root of '/' or a system directory (refused: mamori does not guard the whole
// system), a log format core/logparse cannot read.
//
// Looks at the real file system (lstat, realpath, the roots' top directories); changes
// nothing.

#include <string>
#include <vector>

#include "core/webconf/conf.h"
#include "core/webconf/php_fpm.h"

namespace mamori::webconf {

struct AppFound {
  std::string kind;                  // "wordpress", "phpmyadmin", "mediawiki"
  std::string dir;                   // relative to the root; "" the root itself
  std::vector<std::string> guarded;  // relative paths of its config files (secrets)
};

struct PlannedRoot {
  std::string path;                  // canonical
  std::vector<std::string> sources;  // where it came from, one line each
  std::vector<std::string> exclude;
  std::vector<std::string> allow_new;
  std::vector<AppFound> apps;
  std::vector<std::string> remarks;  // comments written above it
};

struct PlannedLog {
  std::string path;
  std::string format;  // a core/logparse spec
  std::string root;    // "" none
  std::vector<std::string> sources;
  bool usable = true;  // false: written commented out (a format logparse refuses)
};

struct PlannedOpcache {
  bool found = false;
  std::string socket;
  std::string pid_file;
  std::vector<std::string> sources;
};

struct WebUser {
  std::string server;  // "nginx", "apache", "php-fpm pool www"
  std::string user;
  std::string from;
};

struct Plan {
  std::string state_dir = "/var/lib/mamori";
  std::vector<std::string> read;  // "nginx: /etc/nginx/nginx.conf (12 files)"
  std::vector<WebUser> users;
  std::vector<PlannedRoot> roots;
  std::vector<PlannedLog> logs;
  std::vector<LogRef> error_logs;
  PlannedOpcache opcache;
  std::vector<Problem> notes;  // every problem of the readers, then the planner's own
};

// True for "/" and the system's own directories (/var, /usr, /etc, /usr/share, ...).
bool is_system_dir(const std::string& canonical);

// The applications at `dir` (relative; "" the root) of the root open as `root_fd`.
std::vector<AppFound> detect_apps(int root_fd, const std::string& dir,
                                  std::vector<std::string>& remarks);

Plan make_plan(const std::vector<ServerConf>& servers, const std::vector<FpmConf>& fpm);

// The config file text: comments say where each value came from.
std::string render_toml(const Plan& plan);

// A TOML basic string ("..." with escapes).
std::string toml_string(std::string_view s);

}  // namespace mamori::webconf
