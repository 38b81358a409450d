#include "core/fs/beneath.h"

#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

namespace mamori::fs {
namespace {

constexpr uint64_t kResolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
// openat2 answers EAGAIN when a concurrent rename makes a safe lookup impossible; a few
// retries ride out an ordinary race, more would let an attacker spin us.
constexpr int kEagainRetries = 8;

int sys_openat2(int dir_fd, const char* path, int flags, mode_t mode) {
  struct open_how how {};
  how.flags = static_cast<uint64_t>(flags);
  how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
  how.resolve = kResolve;
  return static_cast<int>(::syscall(SYS_openat2, dir_fd, path, &how, sizeof how));
}

}  // namespace

Result<UniqueFd> open_root(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fail_errno("open root", path);
  return UniqueFd(fd);
}

Result<UniqueFd> open_beneath(int root_fd, std::string_view rel, int flags, mode_t mode) {
  const std::string path = rel.empty() ? std::string(".") : std::string(rel);
  flags |= O_NOFOLLOW | O_CLOEXEC;
  for (int attempt = 0;; ++attempt) {
    const int fd = sys_openat2(root_fd, path.c_str(), flags, mode);
    if (fd >= 0) return UniqueFd(fd);
    if ((errno == EAGAIN || errno == EINTR) && attempt < kEagainRetries) continue;
    return fail_errno("openat2", std::string(rel.empty() ? "." : rel));
  }
}

Result<Parent> open_parent(int root_fd, std::string_view rel) {
  if (rel.empty()) return fail("open parent", ".", EINVAL, "the root has no parent");
  Parent p;
  p.dir = MAMORI_TRY(open_beneath(root_fd, dirname(rel), O_RDONLY | O_DIRECTORY));
  p.name = std::string(basename(rel));
  return p;
}

Result<struct stat> stat_beneath(int root_fd, std::string_view rel) {
  struct stat st {};
  if (rel.empty()) {
    if (::fstat(root_fd, &st) != 0) return fail_errno("fstat", ".");
    return st;
  }
  auto parent = MAMORI_TRY(open_parent(root_fd, rel));
  if (::fstatat(parent.dir.get(), parent.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    return fail_errno("fstatat", std::string(rel));
  return st;
}

Result<std::string> read_fd(int fd, size_t limit, std::string_view display) {
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("read", std::string(display));
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > limit) return fail("read", std::string(display), EFBIG);
  }
}

Result<std::string> read_link_at(int dir_fd, const std::string& name, std::string_view display) {
  std::vector<char> buf(256);
  for (;;) {
    const ssize_t n = ::readlinkat(dir_fd, name.c_str(), buf.data(), buf.size());
    if (n < 0) return fail_errno("readlinkat", std::string(display));
    if (static_cast<size_t>(n) < buf.size()) return std::string(buf.data(), static_cast<size_t>(n));
    if (buf.size() > 65536) return fail("readlinkat", std::string(display), ENAMETOOLONG);
    buf.resize(buf.size() * 4);
  }
}

bool is_canonical_relative(std::string_view rel) {
  if (rel.empty()) return true;
  if (rel.find('\0') != std::string_view::npos) return false;
  size_t start = 0;
  while (start <= rel.size()) {
    size_t end = rel.find('/', start);
    if (end == std::string_view::npos) end = rel.size();
    const auto part = rel.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

std::optional<std::string> relative_to(std::string_view root, std::string_view path) {
  if (path == root) return std::string();
  if (root == "/")
    return path.starts_with('/') ? std::optional<std::string>(path.substr(1)) : std::nullopt;
  if (path.size() > root.size() && path.starts_with(root) && path[root.size()] == '/')
    return std::string(path.substr(root.size() + 1));
  return std::nullopt;
}

std::string join(std::string_view dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  std::string out;
  out.reserve(dir.size() + 1 + name.size());
  out.append(dir).append("/").append(name);
  return out;
}

std::string_view dirname(std::string_view rel) {
  const auto slash = rel.rfind('/');
  return slash == std::string_view::npos ? std::string_view{} : rel.substr(0, slash);
}

std::string_view basename(std::string_view rel) {
  const auto slash = rel.rfind('/');
  return slash == std::string_view::npos ? rel : rel.substr(slash + 1);
}

}  // namespace mamori::fs
