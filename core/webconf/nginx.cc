#include "core/webconf/nginx.h"

#include <map>
#include <optional>

#include <fmt/format.h>

namespace mamori::webconf {
namespace {

// nginx's built-in format.
constexpr std::string_view kCombined =
    R"($remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent")";

class Tokenizer {
 public:
  Tokenizer(std::string_view text, const std::string& file, const ConfLimits& limits)
      : text_(text), file_(file), limits_(limits) {}

  Result<std::vector<Directive>> parse() {
    std::vector<Directive> top;
    MAMORI_TRY(parse_block(top, 0));
    return top;
  }

 private:
  enum class Kind { kWord, kSemicolon, kOpen, kClose, kEnd };
  struct Token {
    Kind kind;
    std::string word;
    uint32_t line;
  };

  tl::unexpected<Error> error(uint32_t line, const std::string& what) const {
    return fail_msg("nginx config", fmt::format("{}:{}", file_, line), what);
  }

  // Undoes nginx's escapes the way ngx_conf_read_token's copy does: \" \' \\ lose the
  // backslash, \t \r \n become the byte, any other backslash stays.
  static void unescape_into(std::string_view raw, std::string& out) {
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '\\' && i + 1 < raw.size()) {
        const char c = raw[i + 1];
        if (c == '"' || c == '\'' || c == '\\') {
          out += c;
          ++i;
          continue;
        }
        if (c == 't' || c == 'r' || c == 'n') {
          out += c == 't' ? '\t' : c == 'r' ? '\r' : '\n';
          ++i;
          continue;
        }
      }
      out += raw[i];
    }
  }

  Result<Token> next() {
    for (;;) {
      if (pos_ >= text_.size()) return Token{Kind::kEnd, {}, line_};
      const char c = text_[pos_];
      if (c == '\n') {
        ++line_;
        ++pos_;
      } else if (c == ' ' || c == '\t' || c == '\r') {
        ++pos_;
      } else if (c == '#') {
        while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
      } else {
        break;
      }
    }
    const uint32_t line = line_;
    const char c = text_[pos_];
    if (c == ';') return ++pos_, Token{Kind::kSemicolon, {}, line};
    if (c == '{') return ++pos_, Token{Kind::kOpen, {}, line};
    if (c == '}') return ++pos_, Token{Kind::kClose, {}, line};
    Token t{Kind::kWord, {}, line};
    if (c == '"' || c == '\'') {
      const size_t start = ++pos_;
      for (;;) {
        if (pos_ >= text_.size()) return error(line, "unterminated quoted string");
        const char d = text_[pos_];
        if (d == '\\' && pos_ + 1 < text_.size()) {
          if (text_[pos_ + 1] == '\n') ++line_;
          pos_ += 2;
          continue;
        }
        if (d == '\n') ++line_;
        if (d == c) break;
        ++pos_;
      }
      unescape_into(text_.substr(start, pos_ - start), t.word);
      ++pos_;
      // nginx wants a separator after a closing quote.
      if (pos_ < text_.size()) {
        const char d = text_[pos_];
        if (d != ' ' && d != '\t' && d != '\r' && d != '\n' && d != ';' && d != '{' && d != '}')
          return error(line_, fmt::format("unexpected '{}' after a quoted string", d));
      }
    } else {
      const size_t start = pos_;
      bool in_var_brace = false;
      while (pos_ < text_.size()) {
        const char d = text_[pos_];
        if (d == '\\' && pos_ + 1 < text_.size()) {
          if (text_[pos_ + 1] == '\n') ++line_;
          pos_ += 2;
          continue;
        }
        if (in_var_brace) {
          if (d == '}') in_var_brace = false;
          if (d == '\n') break;
          ++pos_;
          continue;
        }
        if (d == '{' && pos_ > start && text_[pos_ - 1] == '$') {
          in_var_brace = true;
          ++pos_;
          continue;
        }
        if (d == ' ' || d == '\t' || d == '\r' || d == '\n' || d == ';' || d == '{' || d == '}')
          break;
        // A quote inside a word is part of it, as in nginx.
        ++pos_;
      }
      unescape_into(text_.substr(start, pos_ - start), t.word);
    }
    if (t.word.size() > kMaxWord) return error(line, "a word longer than 64 KiB");
    return t;
  }

  Status parse_block(std::vector<Directive>& into, uint32_t depth) {
    if (depth > limits_.max_block_depth)
      return error(line_, fmt::format("blocks nested deeper than {}", limits_.max_block_depth));
    for (;;) {
      auto t = MAMORI_TRY(next());
      if (t.kind == Kind::kEnd) {
        if (depth > 0) return error(t.line, "unexpected end of file, expecting '}'");
        return ok();
      }
      if (t.kind == Kind::kClose) {
        if (depth == 0) return error(t.line, "unexpected '}'");
        return ok();
      }
      if (t.kind != Kind::kWord) return error(t.line, "unexpected ';' or '{'");
      if (++directives_ > limits_.max_directives)
        return error(t.line, fmt::format("more than {} directives", limits_.max_directives));
      Directive d;
      d.name = std::move(t.word);
      d.from = {file_, t.line};
      for (;;) {
        auto a = MAMORI_TRY(next());
        if (a.kind == Kind::kWord) {
          if (d.args.size() >= kMaxArgs)
            return error(a.line, "a directive with too many arguments");
          d.args.push_back(std::move(a.word));
        } else if (a.kind == Kind::kSemicolon) {
          break;
        } else if (a.kind == Kind::kOpen) {
          d.has_block = true;
          MAMORI_TRY(parse_block(d.block, depth + 1));
          break;
        } else {
          return error(a.line, fmt::format("directive '{}' is not terminated by ';'", d.name));
        }
      }
      into.push_back(std::move(d));
    }
  }

  static constexpr size_t kMaxWord = 64 << 10;
  static constexpr size_t kMaxArgs = 4096;
  std::string_view text_;
  const std::string& file_;
  const ConfLimits& limits_;
  size_t pos_ = 0;
  uint32_t line_ = 1;
  uint32_t directives_ = 0;
};

class IncludeReader {
 public:
  IncludeReader(ConfSource& source, const ConfLimits& limits, ServerConf& out)
      : guard(source, limits, out.files, out.problems), limits_(limits), out_(out) {}

  // Splices includes into `dirs` (recursively), relative to `prefix`.
  void expand(std::vector<Directive>& dirs, const std::string& prefix, uint32_t depth) {
    std::vector<Directive> result;
    result.reserve(dirs.size());
    for (auto& d : dirs) {
      if (d.name == "include" && !d.has_block) {
        if (d.args.size() != 1) {
          out_.problems.push_back({d.from, "include takes one file or pattern"});
          continue;
        }
        include(d, prefix, depth, result);
        continue;
      }
      if (d.has_block) expand(d.block, prefix, depth);
      result.push_back(std::move(d));
    }
    dirs = std::move(result);
  }

  Result<std::vector<Directive>> load(const std::string& file) {
    auto text = MAMORI_TRY(guard.read(file));
    return parse_nginx(text, file, limits_);
  }

  IncludeGuard guard;

 private:
  void include(const Directive& d, const std::string& prefix, uint32_t depth,
               std::vector<Directive>& result) {
    for (const auto& f : guard.files_for(d.from, resolve_against(prefix, d.args[0]), depth)) {
      const auto verdict = guard.check(d.from, f);
      if (verdict == IncludeGuard::Verdict::kStop) return;
      if (verdict == IncludeGuard::Verdict::kSkip) continue;
      auto parsed = load(f);
      if (!parsed) {
        const Error& e = parsed.error();
        if (e.op == "nginx config")
          out_.problems.push_back({error_origin(e), e.detail + " (file not used)"});
        else
          out_.problems.push_back({d.from, e.message()});
        continue;
      }
      guard.stack.push_back(f);
      expand(*parsed, prefix, depth + 1);
      guard.stack.pop_back();
      for (auto& x : *parsed) result.push_back(std::move(x));
    }
  }

  const ConfLimits& limits_;
  ServerConf& out_;
};

bool has_variable(const std::string& s) { return s.find('$') != std::string::npos; }

std::string join_args(const std::vector<std::string>& args, size_t from) {
  std::string s;
  for (size_t i = from; i < args.size(); ++i) s += (i > from ? " " : "") + args[i];
  return s;
}

struct Scope {
  std::optional<std::vector<LogRef>> access_logs;  // nullopt: inherited; empty: off
  std::vector<LogRef> error_logs;
  std::optional<DocRoot> root;
};

class SiteFinder {
 public:
  explicit SiteFinder(ServerConf& out) : out_(out) {
    formats_["combined"] = std::string(kCombined);
  }

  void top(const std::vector<Directive>& dirs) {
    for (const auto& d : dirs) {
      if (d.name == "user" && !d.has_block && !d.args.empty()) {
        out_.user = d.args[0];
        out_.user_from = d.from;
      } else if (d.name == "error_log" && !d.args.empty()) {
        main_error_logs_.push_back(log_ref(d, true));
      }
    }
    for (const auto& d : dirs)
      if (d.name == "http" && d.has_block) http(d);
  }

 private:
  LogRef log_ref(const Directive& d, bool error_log) const {
    LogRef l;
    l.path = d.args[0];
    l.from = d.from;
    if (!error_log) {
      l.format_name = d.args.size() > 1 ? d.args[1] : "combined";
      const auto it = formats_.find(l.format_name);
      if (it != formats_.end()) l.format = l.format_name == "combined" ? "combined" : it->second;
    }
    return l;
  }

  // Applies one logging directive to a scope; false when it was not one.
  bool logging(const Directive& d, Scope& s) {
    if (d.name == "access_log" && !d.args.empty()) {
      if (!s.access_logs) s.access_logs.emplace();
      if (d.args[0] == "off") {
        s.access_logs->clear();
        return true;
      }
      LogRef l = log_ref(d, false);
      if (l.format.empty())
        out_.problems.push_back(
            {d.from, fmt::format("access_log uses log_format '{}', which is not defined before it",
                                 l.format_name)});
      s.access_logs->push_back(std::move(l));
      return true;
    }
    if (d.name == "error_log" && !d.args.empty()) {
      s.error_logs.push_back(log_ref(d, true));
      return true;
    }
    if (d.name == "root" && d.args.size() == 1) {
      s.root = DocRoot{d.args[0], "", d.from};
      return true;
    }
    return false;
  }

  void http(const Directive& h) {
    Scope scope;
    for (const auto& d : h.block) {
      if (d.name == "log_format" && d.args.size() >= 2) {
        size_t first = 1;
        if (d.args[1].rfind("escape=", 0) == 0) first = 2;
        if (first >= d.args.size()) continue;
        std::string format;  // nginx joins the strings as they are, no separator
        for (size_t i = first; i < d.args.size(); ++i) format += d.args[i];
        formats_[d.args[0]] = format;
      } else {
        logging(d, scope);
      }
    }
    for (const auto& d : h.block)
      if (d.name == "server" && d.has_block) server(d, scope);
  }

  void locations(const Directive& block, Site& site) {
    for (const auto& d : block.block) {
      if (d.name == "fastcgi_pass" && !d.args.empty()) {
        if (std::find(site.fastcgi.begin(), site.fastcgi.end(), d.args[0]) == site.fastcgi.end())
          site.fastcgi.push_back(d.args[0]);
      } else if (d.name == "root" && d.args.size() == 1 && block.name == "location") {
        site.roots.push_back({d.args[0], "location " + join_args(block.args, 0), d.from});
      } else if (d.name == "location" && d.has_block) {
        locations(d, site);
      }
    }
  }

  void server(const Directive& srv, const Scope& http_scope) {
    Scope scope;
    Site site;
    site.from = srv.from;
    for (const auto& d : srv.block) {
      if (logging(d, scope)) continue;
      if (d.name == "server_name") site.names = join_args(d.args, 0);
      if (d.name == "listen" && !d.args.empty())
        site.listen += (site.listen.empty() ? "" : " ") + d.args[0];
    }
    const auto& root = scope.root ? scope.root : http_scope.root;
    if (root) site.roots.insert(site.roots.begin(), *root);
    locations(srv, site);
    const auto& logs = scope.access_logs ? scope.access_logs : http_scope.access_logs;
    if (logs) site.access_logs = *logs;
    site.error_logs =
        scope.error_logs.empty()
            ? (http_scope.error_logs.empty() ? main_error_logs_ : http_scope.error_logs)
            : scope.error_logs;
    if (!logs)
      out_.problems.push_back(
          {srv.from,
           "no access_log for this server: nginx writes its compiled-in default "
           "(see 'nginx -V', --http-log-path), not listed"});
    out_.sites.push_back(std::move(site));
  }

  ServerConf& out_;
  std::map<std::string, std::string> formats_;
  std::vector<LogRef> main_error_logs_;
};

}  // namespace

Result<std::vector<Directive>> parse_nginx(std::string_view text, const std::string& file,
                                           const ConfLimits& limits) {
  return Tokenizer(text, file, limits).parse();
}

void find_nginx_sites(const std::vector<Directive>& top, ServerConf& out) {
  SiteFinder(out).top(top);
  for (auto& site : out.sites) {
    for (auto* logs : {&site.access_logs, &site.error_logs}) {
      std::vector<LogRef> kept;
      for (auto& l : *logs) {
        if (l.path.rfind("syslog:", 0) == 0 || l.path == "stderr" || l.path == "/dev/stderr" ||
            l.path == "/dev/stdout") {
          out.problems.push_back({l.from, "log '" + l.path + "' is not a file: not followed"});
        } else if (has_variable(l.path)) {
          out.problems.push_back(
              {l.from, "log path '" + l.path + "' holds variables: not followed"});
        } else {
          kept.push_back(std::move(l));
        }
      }
      *logs = std::move(kept);
    }
  }
}

Result<ServerConf> read_nginx(ConfSource& source, const std::string& main_file,
                              const ConfLimits& limits) {
  ServerConf out;
  out.server = "nginx";
  out.main_file = main_file;
  IncludeReader reader(source, limits, out);
  auto top = MAMORI_TRY(reader.load(main_file));
  reader.guard.stack.push_back(main_file);
  reader.expand(top, parent_dir(main_file), 0);
  find_nginx_sites(top, out);
  return out;
}

}  // namespace mamori::webconf
