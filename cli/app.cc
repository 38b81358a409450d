#include "cli/app.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <thread>

#include <fmt/format.h>

#include "core/base/quote.h"
#include "core/fs/beneath.h"
#include "core/fs/xattr.h"

namespace mamori::cli {
namespace {

// ioprio_set(2) has no glibc wrapper.
constexpr int kIoprioWhoProcess = 1;
constexpr int kIoprioClassIdle = 3;
constexpr int kIoprioClassShift = 13;

void lower_priority() {
  if (::setpriority(PRIO_PROCESS, 0, 19) != 0) {
    // Not fatal: the work is still correct, only less polite.
  }
  ::syscall(SYS_ioprio_set, kIoprioWhoProcess, 0, kIoprioClassIdle << kIoprioClassShift);
}

std::string normalize(const std::string& arg) {
  std::string path = arg;
  if (path.empty() || path[0] != '/') {
    std::string cwd(4096, '\0');
    if (::getcwd(cwd.data(), cwd.size())) path = std::string(cwd.c_str()) + "/" + path;
  }
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    const std::string part = path.substr(start, end - start);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    start = end + 1;
  }
  std::string out;
  for (const auto& p : parts) out += "/" + p;
  return out.empty() ? "/" : out;
}

}  // namespace

std::optional<int> App::load() {
  auto c = config::load_config(options_.config_path);
  if (!c) {
    if (options_.json) {
      const auto& e = c.error();
      print_json({{"error",
                   {{"code", e.code},
                    {"file", e.file},
                    {"line", e.line},
                    {"column", e.column},
                    {"key", e.key},
                    {"message", e.message}}}});
    } else {
      std::fprintf(stderr, "mamori: %s\n", c.error().text().c_str());
      if (c.error().code == "config.io")
        std::fprintf(stderr, "mamori: pass --config FILE, or see etc/mamori.toml for an example\n");
    }
    return kExitUsage;
  }
  config_ = std::move(*c);
  roots_.clear();
  roots_.reserve(config_.roots.size());
  for (const auto& r : config_.roots) {
    auto m = fs::PathMatcher::compile(r.exclude);
    if (!m) return report(m.error(), kExitUsage);  // config.cc validated these already
    roots_.push_back({&r, std::move(*m)});
  }
  unsigned jobs = options_.jobs ? options_.jobs : config_.jobs;
  if (jobs == 0) jobs = std::max(1u, std::thread::hardware_concurrency());
  if (options_.nice) lower_priority();
  executor_ = std::make_unique<ThreadExecutor>(jobs);
  return std::nullopt;
}

void App::warn_private_dir(const std::string& dir, mode_t was) const {
  std::fprintf(stderr,
               "mamori: warning: state directory %s was mode %04o (others could read the "
               "baseline, bans and evidence): made 0700\n",
               quote(dir).c_str(), static_cast<unsigned>(was));
}

bool App::show_progress() const { return !options_.quiet && ::isatty(STDERR_FILENO); }

Result<std::unique_ptr<baseline::State>> App::open_state(baseline::StateAccess access) {
  store::StoreOptions so;
  so.compression_level = config_.compression_level;
  auto s = baseline::open_state(env_, config_.state_dir, access, so);
  if (!s && s.error().errnum == ENOENT && access == baseline::StateAccess::kRead)
    return fail("open baseline", config_.state_dir, ENOENT,
                "no baseline yet: run 'mamori init' first");
  if (s && (*s)->dir_mode_was) warn_private_dir(config_.state_dir, *(*s)->dir_mode_was);
  return s;
}

Result<App::Target> App::resolve(const std::string& arg) {
  const std::string path = normalize(arg);
  Root* best = nullptr;
  for (auto& r : roots_) {
    const std::string& rp = r.config->path;
    const bool inside = path == rp || rp == "/" ||
                        (path.size() > rp.size() && path.starts_with(rp) && path[rp.size()] == '/');
    if (inside && (!best || rp.size() > best->config->path.size())) best = &r;
  }
  if (!best) return fail("resolve", arg, ENOENT, "not inside any configured root");
  const std::string& rp = best->config->path;
  std::string rel = path == rp ? "" : path.substr(rp == "/" ? 1 : rp.size() + 1);
  return Target{best, rel};
}

Result<std::vector<App::Target>> App::targets(const std::vector<std::string>& paths, bool all) {
  std::vector<Target> out;
  if (all) {
    for (auto& r : roots_) out.push_back({&r, ""});
    return out;
  }
  for (const auto& p : paths) out.push_back(MAMORI_TRY(resolve(p)));
  return out;
}

int App::code_for(const Error& e) {
  return e.errnum == EBADMSG || e.errnum == EPROTO ? kExitIntegrity : kExitIncomplete;
}

int App::report(const Error& e, int code) {
  if (options_.json)
    print_json({{"error", error_json(e)}});
  else
    std::fprintf(stderr, "mamori: %s\n", e.message().c_str());
  return code;
}

nlohmann::json entry_json(const baseline::Entry& e) {
  nlohmann::json j = {{"type", baseline::type_name(e.type)},
                      {"mode", fmt::format("{:04o}", e.mode)},
                      {"uid", e.uid},
                      {"gid", e.gid}};
  if (e.type == baseline::FileType::kRegular) {
    j["size"] = e.size;
    j["sha256"] = e.sha256.hex();
    j["mtime"] = format_time_ns(e.mtime_ns);
  }
  if (e.type == baseline::FileType::kSymlink)
    j["link_target"] = is_valid_utf8(e.link_target()) ? e.link_target() : escape(e.link_target());
  if (!e.xattrs().empty()) {
    nlohmann::json names = nlohmann::json::array();
    if (auto list = fs::decode_xattrs(e.xattrs()))
      for (const auto& [name, value] : *list) names.push_back(escape(name));
    j["xattrs"] = names;
  }
  return j;
}

nlohmann::json error_json(const Error& e) {
  nlohmann::json j = {{"operation", e.op}, {"message", e.message()}};
  if (!e.path.empty()) j["path"] = is_valid_utf8(e.path) ? e.path : escape(e.path);
  if (e.errnum) j["errno"] = e.errnum;
  return j;
}

void print_json(const nlohmann::json& j) {
  // Attacker bytes (a user agent, a path) need not be UTF-8: replaced, never a throw.
  std::fputs(j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str(), stdout);
  std::fputc('\n', stdout);
}

std::string human_bytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", v, kUnits[u]);
}

}  // namespace mamori::cli
