#pragma once
// nginx's configuration: a tokenizer for its syntax (nginx's ngx_conf_read_token: words,
// "double" and 'single' quotes, backslash escapes, # comments, ${var}, blocks) and a
// reader that follows `include` (globs, relative to the main file's directory) within
// ConfLimits, then finds the sites: each `server` block's root (its own or http's),
// access_log with its log_format, error_log, fastcgi_pass, and the `user`.
//
// An include loop, a missing or unparsable included file, a log nginx writes through
// syslog or to a path with variables: each is a Problem, never a failure of the whole.

#include <string>
#include <string_view>
#include <vector>

#include "core/base/result.h"
#include "core/webconf/conf.h"
#include "core/webconf/source.h"

namespace mamori::webconf {

// One file's directives, includes not followed. Errors name file:line.
Result<std::vector<Directive>> parse_nginx(std::string_view text, const std::string& file,
                                           const ConfLimits& limits = {});

// The configuration that starts at `main_file`, includes followed. Fails only when the
// main file cannot be read or parsed.
Result<ServerConf> read_nginx(ConfSource& source, const std::string& main_file,
                              const ConfLimits& limits = {});

// The sites and user of an already parsed (includes spliced) configuration.
void find_nginx_sites(const std::vector<Directive>& top, ServerConf& out);

}  // namespace mamori::webconf
