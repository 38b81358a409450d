#pragma once
// Apache's configuration (Debian's layout: apache2.conf, envvars beside it, Include and
// IncludeOptional of mods-enabled/, conf-enabled/, sites-enabled/): logical lines with
// backslash continuations, "quoted" and 'quoted' arguments, <Section> blocks, ${VAR}
// from envvars (export NAME=value lines) and Define, includes relative to ServerRoot
// (globs, a directory meaning every file in it) within ConfLimits. Then the sites: each
// <VirtualHost>'s DocumentRoot, CustomLog with its LogFormat (by nickname or inline),
// ErrorLog, FastCGI handlers (SetHandler "proxy:unix:...|fcgi://..."), the main server's
// when no virtual host exists, and the User.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/result.h"
#include "core/webconf/conf.h"
#include "core/webconf/source.h"

namespace mamori::webconf {

// `export NAME=value` lines of a shell file such as Debian's /etc/apache2/envvars
// ($SUFFIX and ${SUFFIX} read as empty, as on a machine with one instance).
std::map<std::string, std::string> parse_envvars(std::string_view text);

// One file's directives, includes not followed; ${VAR} expanded from `vars` (an unknown
// one is left as written and reported in `problems`). Errors name file:line.
Result<std::vector<Directive>> parse_apache(std::string_view text, const std::string& file,
                                            std::map<std::string, std::string>& vars,
                                            std::vector<Problem>& problems,
                                            const ConfLimits& limits = {});

// The configuration that starts at `main_file` with `vars` (from envvars), includes
// followed. Fails only when the main file cannot be read or parsed.
Result<ServerConf> read_apache(ConfSource& source, const std::string& main_file,
                               std::map<std::string, std::string> vars,
                               const ConfLimits& limits = {});

}  // namespace mamori::webconf
