#include "packaging/gen/completion.h"

#include <sstream>
#include <string_view>

namespace mamori::packaging {
namespace {

std::string joined(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) {
    if (!out.empty()) out += ' ';
    out += w;
  }
  return out;
}

// Single-quoted for the shell; the words are option and command names.
std::string quoted(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += '\'';
  return out;
}

}  // namespace

CompletionLevel global_options_from_help(const std::string& overview) {
  CompletionLevel global;
  std::istringstream in(overview);
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] != ' ') {
      inside = line == "GLOBAL OPTIONS";
      continue;
    }
    if (!inside) continue;
    // "    -c, --config FILE   the config file": the term ends at the first gap.
    const size_t start = line.find_first_not_of(' ');
    if (start == std::string::npos || line[start] != '-') continue;
    const size_t gap = line.find("  ", start);
    const std::string term =
        line.substr(start, gap == std::string::npos ? std::string::npos : gap - start);
    const bool valued = term.find(' ', term.rfind('-')) != std::string::npos;
    std::istringstream names(term);
    std::string name;
    while (names >> name) {
      if (name.back() == ',') name.pop_back();
      if (name.empty() || name[0] != '-') continue;
      global.options.push_back(name);
      if (valued) global.valued.push_back(name);
    }
  }
  return global;
}

std::string bash_completion(const CompletionLevel& global,
                            const std::vector<CompletionLevel>& levels) {
  std::string out = R"SH(# bash completion for mamori(8). Generated from mamori's command table
# (cli/commands/table.cc) by mamori-gen-docs at build time: do not edit.

# Sets the words of one level of the command line ("", "bans", "bans add"...): its
# subcommands, its options, and those of them that take a value.
_mamori_level() {
  case $1 in
)SH";
  for (const auto& l : levels) {
    out += "    " + quoted(l.path) + ")\n";
    out += "      _mamori_subs=" + quoted(joined(l.subcommands)) + "\n";
    out += "      _mamori_opts=" + quoted(joined(l.options)) + "\n";
    out += "      _mamori_valued=" + quoted(joined(l.valued)) + " ;;\n";
  }
  out += R"SH(    *) _mamori_subs='' _mamori_opts='' _mamori_valued='' ;;
  esac
}

_mamori() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
)SH";
  out += "  local global_opts=" + quoted(joined(global.options)) + "\n";
  out += "  local global_valued=" + quoted(joined(global.valued)) + "\n";
  out += R"SH(  local path='' w i _mamori_subs _mamori_opts _mamori_valued
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    if [[ $w == -- && $path == deploy ]]; then
      # What follows is the command deploy runs: complete it as its own line.
      if declare -F _command_offset >/dev/null; then
        _command_offset $((i + 1))
      else
        mapfile -t COMPREPLY < <(compgen -c -- "$cur")
      fi
      return
    fi
    _mamori_level "$path"
    if [[ " $global_valued $_mamori_valued " == *" $w "* ]]; then
      ((i++))
      continue
    fi
    [[ $w == -* ]] && continue
    [[ " $_mamori_subs " == *" $w "* ]] && path=${path:+$path }$w
  done
  _mamori_level "$path"
  if [[ " $global_valued $_mamori_valued " == *" $prev "* ]]; then
    compopt -o filenames 2>/dev/null
    mapfile -t COMPREPLY < <(compgen -f -- "$cur")
  elif [[ $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$_mamori_opts $global_opts" -- "$cur")
  elif [[ -n $_mamori_subs ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$_mamori_subs" -- "$cur")
  else
    compopt -o filenames 2>/dev/null
    mapfile -t COMPREPLY < <(compgen -f -- "$cur")
  fi
}
complete -F _mamori mamori
)SH";
  return out;
}

}  // namespace mamori::packaging
