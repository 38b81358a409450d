#include "core/webconf/apache.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include <fmt/format.h>

namespace mamori::webconf {
namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

// ${NAME} replaced from `vars`.
std::string expand(const std::string& s, const std::map<std::string, std::string>& vars,
                   const Origin& from, std::vector<Problem>& problems) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '$' && i + 1 < s.size() && s[i + 1] == '{') {
      const size_t end = s.find('}', i + 2);
      if (end != std::string::npos) {
        const std::string name = s.substr(i + 2, end - i - 2);
        const auto it = vars.find(name);
        if (it != vars.end()) {
          out += it->second;
        } else {
          problems.push_back({from, "${" + name + "} is not defined (envvars, Define)"});
          out += s.substr(i, end - i + 1);
        }
        i = end;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

// Splits a logical line into words: "double" and 'single' quotes (a backslash escapes
// the quote or a backslash inside them), whitespace between.
Result<std::vector<std::string>> words(std::string_view line, const Origin& from) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_space(line[i])) ++i;
    if (i >= line.size()) break;
    std::string w;
    const char q = line[i];
    if (q == '"' || q == '\'') {
      ++i;
      bool closed = false;
      while (i < line.size()) {
        if (line[i] == '\\' && i + 1 < line.size() && (line[i + 1] == q || line[i + 1] == '\\')) {
          w += line[i + 1];
          i += 2;
          continue;
        }
        if (line[i] == q) {
          closed = true;
          ++i;
          break;
        }
        w += line[i++];
      }
      if (!closed) return fail_msg("apache config", from.text(), "unterminated quoted string");
    } else {
      while (i < line.size() && !is_space(line[i])) w += line[i++];
    }
    if (out.size() >= 4096) return fail_msg("apache config", from.text(), "too many arguments");
    out.push_back(std::move(w));
  }
  return out;
}

class Parser {
 public:
  Parser(std::string_view text, const std::string& file, std::map<std::string, std::string>& vars,
         std::vector<Problem>& problems, const ConfLimits& limits)
      : text_(text), file_(file), vars_(vars), problems_(problems), limits_(limits) {}

  Result<std::vector<Directive>> parse() {
    std::vector<Directive> top;
    auto closed = MAMORI_TRY(block(top, "", 0));
    if (!closed.empty())
      return fail_msg("apache config", fmt::format("{}:{}", file_, line_),
                      "'</" + closed + ">' without its opening section");
    return top;
  }

 private:
  // The next logical line (continuations joined), its first line number; false at end.
  bool next_line(std::string& out, uint32_t& first) {
    out.clear();
    while (pos_ < text_.size()) {
      size_t nl = text_.find('\n', pos_);
      if (nl == std::string_view::npos) nl = text_.size();
      std::string_view l = text_.substr(pos_, nl - pos_);
      pos_ = nl + 1;
      const uint32_t this_line = line_++;
      if (out.empty()) first = this_line;
      while (!l.empty() && (l.back() == '\r')) l.remove_suffix(1);
      if (!l.empty() && l.back() == '\\') {
        l.remove_suffix(1);
        out.append(l);
        if (out.size() > kMaxLine) return true;
        continue;
      }
      out.append(l);
      size_t s = 0;
      while (s < out.size() && is_space(out[s])) ++s;
      if (s == out.size() || out[s] == '#') {
        out.clear();
        continue;
      }
      out.erase(0, s);
      return true;
    }
    return !out.empty();
  }

  // Reads directives into `into` until `</section>` (returned lower-case) or the end ("").
  Result<std::string> block(std::vector<Directive>& into, const std::string& section,
                            uint32_t depth) {
    if (depth > limits_.max_block_depth)
      return fail_msg("apache config", fmt::format("{}:{}", file_, line_),
                      fmt::format("sections nested deeper than {}", limits_.max_block_depth));
    std::string line;
    uint32_t at = 0;
    while (next_line(line, at)) {
      const Origin from{file_, at};
      if (line.size() > kMaxLine)
        return fail_msg("apache config", from.text(), "a line longer than 1 MiB");
      if (++directives_ > limits_.max_directives)
        return fail_msg("apache config", from.text(),
                        fmt::format("more than {} directives", limits_.max_directives));
      if (line.rfind("</", 0) == 0) {
        std::string name = line.substr(2);
        const size_t gt = name.find('>');
        if (gt == std::string::npos)
          return fail_msg("apache config", from.text(), "'" + line + "' lacks its '>'");
        name = lower(name.substr(0, gt));
        while (!name.empty() && is_space(name.back())) name.pop_back();
        if (section.empty() || name != section)
          return fail_msg("apache config", from.text(),
                          "'</" + name + ">' does not close " +
                              (section.empty() ? std::string("any section") : "<" + section + ">"));
        return name;
      }
      Directive d;
      d.from = from;
      std::string_view rest = line;
      const bool open = line[0] == '<';
      if (open) {
        const size_t gt = line.rfind('>');
        if (gt == std::string::npos)
          return fail_msg("apache config", from.text(), "section '" + line + "' lacks its '>'");
        rest = std::string_view(line).substr(1, gt - 1);
      }
      auto w = MAMORI_TRY(words(expand(std::string(rest), vars_, from, problems_), from));
      if (w.empty()) return fail_msg("apache config", from.text(), "an empty section");
      d.name = w[0];
      d.args.assign(w.begin() + 1, w.end());
      if (lower(d.name) == "define" && !d.args.empty())
        vars_[d.args[0]] = d.args.size() > 1 ? d.args[1] : "";
      if (open) {
        d.has_block = true;
        auto closed = MAMORI_TRY(block(d.block, lower(d.name), depth + 1));
        if (closed.empty())
          return fail_msg("apache config", from.text(),
                          "<" + d.name + "> is not closed before the end of the file");
      }
      into.push_back(std::move(d));
    }
    return std::string();
  }

  static constexpr size_t kMaxLine = 1 << 20;
  std::string_view text_;
  const std::string& file_;
  std::map<std::string, std::string>& vars_;
  std::vector<Problem>& problems_;
  const ConfLimits& limits_;
  size_t pos_ = 0;
  uint32_t line_ = 1;
  uint32_t directives_ = 0;
};

class Reader {
 public:
  Reader(ConfSource& source, const ConfLimits& limits, ServerConf& out,
         std::map<std::string, std::string>& vars)
      : guard(source, limits, out.files, out.problems),
        source_(source),
        limits_(limits),
        out_(out),
        vars_(vars) {}

  Result<std::vector<Directive>> load(const std::string& file) {
    auto text = MAMORI_TRY(guard.read(file));
    return parse_apache(text, file, vars_, out_.problems, limits_);
  }

  void expand(std::vector<Directive>& dirs, uint32_t depth) {
    std::vector<Directive> result;
    for (auto& d : dirs) {
      const std::string name = lower(d.name);
      if (name == "serverroot" && d.args.size() == 1) server_root = d.args[0];
      if ((name == "include" || name == "includeoptional") && !d.has_block) {
        if (d.args.size() != 1) {
          out_.problems.push_back({d.from, d.name + " takes one file or pattern"});
          continue;
        }
        include(d, name == "includeoptional", depth, result);
        continue;
      }
      if (d.has_block) expand(d.block, depth);
      result.push_back(std::move(d));
    }
    dirs = std::move(result);
  }

  IncludeGuard guard;
  std::string server_root;

 private:
  void include(const Directive& d, bool optional, uint32_t depth, std::vector<Directive>& result) {
    for (const auto& f : guard.files_for(d.from, resolve_against(server_root, d.args[0]), depth)) {
      const auto verdict = guard.check(d.from, f);
      if (verdict == IncludeGuard::Verdict::kStop) return;
      if (verdict == IncludeGuard::Verdict::kSkip) continue;
      auto parsed = load(f);
      if (!parsed && parsed.error().errnum == EINVAL && !has_glob_chars(f)) {
        // A directory: every file in it, as Apache does.
        auto inside = source_.glob(f + "/*");
        if (inside && !inside->empty()) {
          Directive sub = d;
          sub.args = {f + "/*"};
          include(sub, optional, depth, result);
          continue;
        }
      }
      if (!parsed) {
        const Error& e = parsed.error();
        if (e.op == "apache config")
          out_.problems.push_back({error_origin(e), e.detail + " (file not used)"});
        else if (!(optional && e.errnum == ENOENT))
          out_.problems.push_back({d.from, e.message()});
        continue;
      }
      guard.stack.push_back(f);
      expand(*parsed, depth + 1);
      guard.stack.pop_back();
      for (auto& x : *parsed) result.push_back(std::move(x));
    }
  }

  ConfSource& source_;
  const ConfLimits& limits_;
  ServerConf& out_;
  std::map<std::string, std::string>& vars_;
};

// Where an Apache FastCGI handler sends requests: "proxy:unix:/run/php/x.sock|fcgi://l/"
// is unix:/run/php/x.sock, "proxy:fcgi://127.0.0.1:9000" is 127.0.0.1:9000.
std::string fastcgi_target(std::string_view handler) {
  const std::string l = lower(std::string(handler));
  if (l.rfind("proxy:unix:", 0) == 0) {
    std::string_view rest = handler.substr(11);
    rest = rest.substr(0, rest.find('|'));
    return "unix:" + std::string(rest);
  }
  if (l.rfind("proxy:fcgi://", 0) == 0) {
    std::string_view rest = handler.substr(13);
    rest = rest.substr(0, rest.find('/'));
    return std::string(rest);
  }
  return "";
}

struct VhostScope {
  std::vector<DocRoot> roots;
  std::vector<LogRef> access_logs;
  std::vector<LogRef> error_logs;
  std::vector<std::string> fastcgi;
  std::string names;
};

class SiteFinder {
 public:
  SiteFinder(ServerConf& out, std::string server_root)
      : out_(out), server_root_(std::move(server_root)) {
    // Apache's own defaults for nicknames it knows without a LogFormat line.
    formats_["common"] = "common";
  }

  void run(const std::vector<Directive>& top) {
    VhostScope main;
    std::vector<const Directive*> vhosts;
    walk(top, main, vhosts);
    for (const Directive* v : vhosts) {
      VhostScope scope;
      std::vector<const Directive*> nested;
      walk(v->block, scope, nested);
      Site site;
      site.from = v->from;
      site.listen = v->args.empty() ? "" : v->args[0];
      site.names = scope.names;
      site.roots = scope.roots.empty() ? main.roots : scope.roots;
      site.access_logs = scope.access_logs.empty() ? main.access_logs : scope.access_logs;
      site.error_logs = scope.error_logs.empty() ? main.error_logs : scope.error_logs;
      site.fastcgi = scope.fastcgi.empty() ? main.fastcgi : scope.fastcgi;
      out_.sites.push_back(std::move(site));
    }
    if (vhosts.empty() && !main.roots.empty()) {
      Site site;
      site.from = {out_.main_file, 0};
      site.names = main.names;
      site.roots = main.roots;
      site.access_logs = main.access_logs;
      site.error_logs = main.error_logs;
      site.fastcgi = main.fastcgi;
      out_.sites.push_back(std::move(site));
    }
  }

 private:
  LogRef log(const Directive& d, const std::string& format_arg) {
    LogRef l;
    l.path = d.args[0];
    l.from = d.from;
    if (!l.path.empty() && l.path[0] != '|' && l.path.rfind("syslog", 0) != 0)
      l.path = resolve_against(server_root_, l.path);
    if (format_arg.empty()) return l;
    const auto it = formats_.find(format_arg);
    if (it != formats_.end()) {
      l.format_name = format_arg;
      l.format = it->second;
    } else if (format_arg.find('%') != std::string::npos) {
      l.format = format_arg;  // an inline format string
    } else {
      l.format_name = format_arg;
      out_.problems.push_back({d.from, "CustomLog uses LogFormat '" + format_arg +
                                           "', which is not defined before it"});
    }
    return l;
  }

  void walk(const std::vector<Directive>& dirs, VhostScope& scope,
            std::vector<const Directive*>& vhosts) {
    for (const auto& d : dirs) {
      const std::string name = lower(d.name);
      if (d.has_block) {
        if (name == "virtualhost") {
          vhosts.push_back(&d);
        } else if (name == "ifmodule" || name == "ifdefine" || name == "ifversion" ||
                   name == "if" || name == "else" || name == "elseif" || name == "ifdirective" ||
                   name == "iffile" || name == "ifsection") {
          walk(d.block, scope, vhosts);  // assumed to hold, as on a stock install
        } else if (name == "filesmatch" || name == "files" || name == "location" ||
                   name == "locationmatch" || name == "directory" || name == "directorymatch") {
          for (const auto& inner : d.block)
            if (lower(inner.name) == "sethandler" && !inner.args.empty()) handler(inner, scope);
        }
        continue;
      }
      if (name == "user" && !d.args.empty()) {
        out_.user = d.args[0];
        out_.user_from = d.from;
      } else if (name == "logformat" && !d.args.empty()) {
        if (d.args.size() >= 2)
          formats_[d.args[1]] = d.args[0];
        else
          default_format_ = d.args[0];
      } else if (name == "customlog" && d.args.size() >= 2) {
        scope.access_logs.push_back(log(d, d.args[1]));
      } else if (name == "transferlog" && !d.args.empty()) {
        scope.access_logs.push_back(log(d, default_format_.empty() ? "common" : default_format_));
      } else if (name == "errorlog" && !d.args.empty()) {
        scope.error_logs.push_back(log(d, ""));
      } else if (name == "documentroot" && d.args.size() == 1) {
        scope.roots.push_back({resolve_against(server_root_, d.args[0]), "", d.from});
      } else if ((name == "servername" || name == "serveralias") && !d.args.empty()) {
        for (const auto& a : d.args) scope.names += (scope.names.empty() ? "" : " ") + a;
      } else if (name == "sethandler" && !d.args.empty()) {
        handler(d, scope);
      }
    }
  }

  void handler(const Directive& d, VhostScope& scope) {
    const std::string t = fastcgi_target(d.args[0]);
    if (!t.empty() &&
        std::find(scope.fastcgi.begin(), scope.fastcgi.end(), t) == scope.fastcgi.end())
      scope.fastcgi.push_back(t);
  }

  ServerConf& out_;
  std::string server_root_;
  std::map<std::string, std::string> formats_;
  std::string default_format_;
};

}  // namespace

std::map<std::string, std::string> parse_envvars(std::string_view text) {
  std::map<std::string, std::string> vars;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view l = text.substr(pos, nl - pos);
    pos = nl + 1;
    while (!l.empty() && is_space(l.front())) l.remove_prefix(1);
    if (l.rfind("export ", 0) != 0) continue;
    l.remove_prefix(7);
    while (!l.empty() && is_space(l.front())) l.remove_prefix(1);
    const size_t eq = l.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    const std::string name(l.substr(0, eq));
    std::string value(l.substr(eq + 1));
    while (!value.empty() && is_space(value.back())) value.pop_back();
    if (value.size() >= 2 && (value[0] == '"' || value[0] == '\'') && value.back() == value[0])
      value = value.substr(1, value.size() - 2);
    for (const char* suffix : {"${SUFFIX}", "$SUFFIX"})
      for (size_t at; (at = value.find(suffix)) != std::string::npos;)
        value.erase(at, std::char_traits<char>::length(suffix));
    if (value.find('$') != std::string::npos || value.find('`') != std::string::npos) continue;
    vars[name] = value;
  }
  return vars;
}

Result<std::vector<Directive>> parse_apache(std::string_view text, const std::string& file,
                                            std::map<std::string, std::string>& vars,
                                            std::vector<Problem>& problems,
                                            const ConfLimits& limits) {
  return Parser(text, file, vars, problems, limits).parse();
}

Result<ServerConf> read_apache(ConfSource& source, const std::string& main_file,
                               std::map<std::string, std::string> vars, const ConfLimits& limits) {
  ServerConf out;
  out.server = "apache";
  out.main_file = main_file;
  Reader reader(source, limits, out, vars);
  reader.server_root = parent_dir(main_file);
  auto top = MAMORI_TRY(reader.load(main_file));
  reader.guard.stack.push_back(main_file);
  reader.expand(top, 0);
  SiteFinder(out, reader.server_root).run(top);
  for (auto& site : out.sites) {
    for (auto* logs : {&site.access_logs, &site.error_logs}) {
      std::vector<LogRef> kept;
      for (auto& l : *logs) {
        if (!l.path.empty() && l.path[0] == '|')
          out.problems.push_back(
              {l.from, "log '" + l.path + "' is a pipe to a program: not followed"});
        else if (l.path.rfind("syslog", 0) == 0)
          out.problems.push_back({l.from, "log '" + l.path + "' goes to syslog: not followed"});
        else if (l.path.find("${") != std::string::npos)
          out.problems.push_back(
              {l.from, "log path '" + l.path + "' holds an undefined variable: not followed"});
        else
          kept.push_back(std::move(l));
      }
      *logs = std::move(kept);
    }
  }
  return out;
}

}  // namespace mamori::webconf
