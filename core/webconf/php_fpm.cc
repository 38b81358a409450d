#include "core/webconf/php_fpm.h"

#include <algorithm>

namespace mamori::webconf {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

class Reader {
 public:
  Reader(ConfSource& source, const ConfLimits& limits, FpmConf& out)
      : guard_(source, limits, out.files, out.problems), out_(out) {}

  Status file(const std::string& path, uint32_t depth) {
    auto text = MAMORI_TRY(guard_.read(path));
    guard_.stack.push_back(path);
    std::string_view t = text;
    uint32_t line = 0;
    std::string section;
    size_t pos = 0;
    while (pos < t.size()) {
      size_t nl = t.find('\n', pos);
      if (nl == std::string_view::npos) nl = t.size();
      std::string_view l = trim(t.substr(pos, nl - pos));
      pos = nl + 1;
      ++line;
      if (l.empty() || l[0] == ';' || l[0] == '#') continue;
      const Origin from{path, line};
      if (l[0] == '[') {
        const size_t close = l.find(']');
        section =
            std::string(l.substr(1, close == std::string_view::npos ? l.size() - 1 : close - 1));
        if (section != "global") {
          pool_ = -1;
          for (size_t i = 0; i < out_.pools.size(); ++i)
            if (out_.pools[i].name == section) pool_ = static_cast<long>(i);
          if (pool_ < 0) {
            out_.pools.push_back({section, "", "", from});
            pool_ = static_cast<long>(out_.pools.size() - 1);
          }
        } else {
          pool_ = -1;
        }
        continue;
      }
      const size_t eq = l.find('=');
      if (eq == std::string_view::npos) {
        out_.problems.push_back({from, "not 'key = value': ignored"});
        continue;
      }
      const std::string key(trim(l.substr(0, eq)));
      std::string value(trim(l.substr(eq + 1)));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
        value = value.substr(1, value.size() - 2);
      FpmPool* pool = pool_ >= 0 ? &out_.pools[static_cast<size_t>(pool_)] : nullptr;
      if (pool) {
        // Searched on after each replacement: a pool named "$pool" must not loop.
        for (size_t at = 0; (at = value.find("$pool", at)) != std::string::npos;
             at += pool->name.size())
          value.replace(at, 5, pool->name);
      }
      if (key == "include") {
        include(resolve_against(parent_dir(path), value), from, depth);
        // The pool that was open is still open after an include in php-fpm only until the
        // next section; the included files start their own.
        pool_ = -1;
        section.clear();
      } else if (section == "global" && key == "pid") {
        out_.pid_file = value;
      } else if (pool && key == "listen") {
        pool->listen = value;
      } else if (pool && key == "user") {
        pool->user = value;
      }
    }
    guard_.stack.pop_back();
    return ok();
  }

 private:
  void include(const std::string& pattern, const Origin& from, uint32_t depth) {
    for (const auto& f : guard_.files_for(from, pattern, depth)) {
      const auto verdict = guard_.check(from, f);
      if (verdict == IncludeGuard::Verdict::kStop) return;
      if (verdict == IncludeGuard::Verdict::kSkip) continue;
      if (auto s = file(f, depth + 1); !s) out_.problems.push_back({from, s.error().message()});
    }
  }

  IncludeGuard guard_;
  FpmConf& out_;
  long pool_ = -1;  // index into out_.pools of the open section's pool
};

}  // namespace

Result<FpmConf> read_php_fpm(ConfSource& source, const std::string& main_file,
                             const ConfLimits& limits) {
  FpmConf out;
  out.main_file = main_file;
  Reader reader(source, limits, out);
  MAMORI_TRY(reader.file(main_file, 0));
  return out;
}

bool fpm_listens_on(const FpmPool& pool, const std::string& target) {
  if (pool.listen.empty()) return false;
  if (pool.listen[0] == '/') return target == "unix:" + pool.listen;
  // TCP: "9000", "127.0.0.1:9000", "[::1]:9000"; the web server names host:port.
  const size_t colon = target.rfind(':');
  if (colon == std::string::npos) return false;
  const std::string port = target.substr(colon + 1);
  const std::string host = target.substr(0, colon);
  const size_t pcolon = pool.listen.rfind(':');
  const std::string pool_port =
      pcolon == std::string::npos ? pool.listen : pool.listen.substr(pcolon + 1);
  const std::string pool_host = pcolon == std::string::npos ? "" : pool.listen.substr(0, pcolon);
  if (port != pool_port) return false;
  const auto local = [](const std::string& h) {
    return h.empty() || h == "127.0.0.1" || h == "localhost" || h == "[::1]" || h == "0.0.0.0" ||
           h == "[::]";
  };
  return host == pool_host || (local(host) && local(pool_host));
}

}  // namespace mamori::webconf
