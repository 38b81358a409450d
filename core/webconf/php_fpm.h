#pragma once
// PHP-FPM's configuration (Debian: /etc/php/VERSION/fpm/php-fpm.conf, which includes
// pool.d/*.conf): INI sections, `key = value`, ';' comments, include= globs (bounded as
// the server readers are), $pool in values. What `mamori setup` needs for [opcache]:
// each pool's listen address and user, and the master's pid file.

#include <string>
#include <string_view>
#include <vector>

#include "core/base/result.h"
#include "core/webconf/conf.h"
#include "core/webconf/source.h"

namespace mamori::webconf {

struct FpmPool {
  std::string name;
  std::string listen;  // "/run/php/php8.2-fpm.sock" or "127.0.0.1:9000" or "9000"
  std::string user;
  Origin from;
};

struct FpmConf {
  std::string main_file;
  std::string pid_file;  // [global] pid; "" when not set
  std::vector<FpmPool> pools;
  std::vector<std::string> files;
  std::vector<Problem> problems;
};

// Reads the master config at `main_file` and what it includes.
Result<FpmConf> read_php_fpm(ConfSource& source, const std::string& main_file,
                             const ConfLimits& limits = {});

// Whether a FastCGI target as a web server names it ("unix:/run/php/x.sock",
// "127.0.0.1:9000", "localhost:9000") is the pool's listen address.
bool fpm_listens_on(const FpmPool& pool, const std::string& target);

}  // namespace mamori::webconf
