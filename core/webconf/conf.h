#pragma once
// What `mamori setup` learns from a web server's configuration, whichever server it
// is: the sites (document roots, logs, FastCGI back ends), the user the workers run as,
// and every problem met on the way, each with the file and line it came from.

#include <cstdint>
#include <string>
#include <vector>

namespace mamori::webconf {

// file:line of a directive (line 0: the whole file, or a default).
struct Origin {
  std::string file;
  uint32_t line = 0;
  std::string text() const;  // "file:line", "file" or "" (no file)
};

// Something a reader met and could not use: an include loop, a missing file, a log
// written to a pipe. Never fatal for the rest of the configuration.
struct Problem {
  Origin where;
  std::string message;
  std::string text() const;  // "file:line: message"
};

// A directive as parsed: name, arguments (unquoted, unescaped), its block's directives.
// nginx's `server { ... }` and Apache's `<VirtualHost *:80> ... </VirtualHost>` are both
// a directive with a block (Apache's section name keeps no '<').
struct Directive {
  std::string name;
  std::vector<std::string> args;
  bool has_block = false;
  std::vector<Directive> block;
  Origin from;
};

struct LogRef {
  std::string path;
  // A core/logparse format spec: "combined", "common", "vhost_combined", or the
  // server's own format string. Empty for error logs.
  std::string format;
  std::string format_name;  // the name it was given in the config ("main", "combined")
  Origin from;
};

struct DocRoot {
  std::string path;
  std::string context;  // "" for the site's own root, else e.g. "location /phpmyadmin"
  Origin from;
};

struct Site {
  std::string names;  // server_name / ServerName and aliases, space separated; "" none
  std::string listen;
  Origin from;  // the server block / VirtualHost (or the main server's config file)
  std::vector<DocRoot> roots;
  std::vector<LogRef> access_logs;
  std::vector<LogRef> error_logs;
  // FastCGI back ends the site passes requests to: "unix:/run/php/php8.2-fpm.sock" or
  // "127.0.0.1:9000" (an nginx upstream name as written).
  std::vector<std::string> fastcgi;
};

struct ServerConf {
  std::string server;  // "nginx" or "apache"
  std::string main_file;
  std::string user;  // the workers' user; "" when the config does not say
  Origin user_from;
  std::vector<Site> sites;
  std::vector<std::string> files;  // every file read, in order
  std::vector<Problem> problems;
};

// Limits on what one configuration may make a reader do; past one, the reader stops
// including (a Problem says so) and keeps what it has.
struct ConfLimits {
  uint32_t max_include_depth = 16;
  uint32_t max_files = 2000;
  uint64_t max_total_bytes = 32 << 20;
  uint32_t max_block_depth = 64;
  uint32_t max_directives = 200'000;
};

}  // namespace mamori::webconf
