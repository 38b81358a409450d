#include "core/fs/admin_files.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <utility>

#include "core/base/unique_fd.h"
#include "core/fs/beneath.h"

namespace mamori::fs {
namespace {

// "<dir>/" and "<name>" of an administrator's path ("." for a bare name).
std::pair<std::string, std::string> split_path(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return {".", path};
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

// ".<name>.<16 hex>.tmp": unpredictable, so nobody can plant it in advance.
std::string temp_name_for(const std::string& name) {
  uint64_t r = 0;
  if (::getrandom(&r, sizeof r, 0) != sizeof r) r ^= reinterpret_cast<uintptr_t>(&r) ^ ::getpid();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "." + name + ".";
  for (int i = 0; i < 16; ++i) out += kHex[(r >> (4 * i)) & 0xF];
  return out + ".tmp";
}

}  // namespace

Result<std::string> read_small_file(const std::string& path, size_t limit) {
  const int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (raw < 0) return fail_errno("open", path);
  UniqueFd fd(raw);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail_errno("fstat", path);
  if (!S_ISREG(st.st_mode)) return fail("read", path, EINVAL, "not a regular file");
  return read_fd(fd.get(), limit, path);
}

Status make_private_dirs(const std::string& path) {
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    const std::string part = path.substr(0, pos);
    if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) return fail_errno("mkdir", part);
  }
  return ok();
}

namespace {

// Takes group and other access away from the inode `fd` is open on; the earlier mode
// when there was any.
Result<std::optional<mode_t>> tighten(int fd, const std::string& path, mode_t keep) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail_errno("fstat", path);
  const mode_t mode = st.st_mode & 07777;
  if ((mode & 077) == 0) return std::optional<mode_t>{};
  if (::fchmod(fd, mode & keep) != 0) return fail_errno("fchmod", path);
  return std::optional<mode_t>(mode);
}

}  // namespace

Result<std::optional<mode_t>> make_private_dir(const std::string& path) {
  MAMORI_TRY(make_private_dirs(path));
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return fail_errno("open", path);
  UniqueFd dir(fd);
  return tighten(dir.get(), path, 0700);
}

Result<std::optional<mode_t>> make_private_file(const std::string& path, bool create) {
  if (create) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
      ::close(fd);  // new: nobody held it, so no lock of ours is dropped by the close
      return std::optional<mode_t>{};
    }
    if (errno != EEXIST) return fail_errno("open", path);
  }
  // An existing file is reached through an O_PATH descriptor: closing any other kind of
  // descriptor drops every POSIX lock this process holds on the file, and SQLite's
  // locks on a database this process has open already (a second connection) are such
  // locks. An O_PATH descriptor is neither read nor written, and its close drops none.
  const int fd = ::open(path.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT && !create) return std::optional<mode_t>{};
    return fail_errno("open", path);
  }
  UniqueFd file(fd);
  struct stat st {};
  if (::fstat(file.get(), &st) != 0) return fail_errno("fstat", path);
  if (!S_ISREG(st.st_mode)) return fail("open", path, EINVAL, "not a regular file");
  const mode_t mode = st.st_mode & 07777;
  if ((mode & 077) == 0) return std::optional<mode_t>{};
  // fchmod() refuses an O_PATH descriptor; its /proc name is the same file.
  const std::string by_fd = "/proc/self/fd/" + std::to_string(file.get());
  if (::fchmodat(AT_FDCWD, by_fd.c_str(), mode & 0600, 0) != 0) return fail_errno("chmod", path);
  return std::optional<mode_t>(mode);
}

Result<UniqueFd> open_private_append(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) MAMORI_TRY(make_private_dirs(path.substr(0, slash)));
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return fail_errno("open", path);
  return UniqueFd(fd);
}

Result<UniqueFd> open_admin_read(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return fail_errno("open", path);
  return UniqueFd(fd);
}

Status write_file_atomic(Env& env, const std::string& path, std::string_view content, mode_t mode) {
  // Not a structured binding: clang 14 cannot capture one in the lambda below.
  const auto split = split_path(path);
  const std::string& dir_path = split.first;
  const std::string& name = split.second;
  if (name.empty()) return fail("write", path, EISDIR);
  const int raw_dir = ::open(dir_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (raw_dir < 0) return fail_errno("open", dir_path);
  UniqueFd dir(raw_dir);
  const std::string tmp = temp_name_for(name);
  const int raw = ::openat(dir.get(), tmp.c_str(),
                           O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 07777);
  if (raw < 0) return fail_errno("openat", dir_path + "/" + tmp);
  UniqueFd fd(raw);
  auto written = [&]() -> Status {
    if (::fchmod(fd.get(), mode & 07777) != 0) return fail_errno("fchmod", path);
    MAMORI_TRY(write_all(env, fd.get(),
                         {reinterpret_cast<const uint8_t*>(content.data()), content.size()}, path));
    if (env.fsync(fd.get()) != 0) return fail_errno("fsync", path);
    if (env.renameat2(dir.get(), tmp.c_str(), dir.get(), name.c_str(), 0) != 0)
      return fail_errno("renameat2", path);
    return ok();
  }();
  if (!written) {
    ::unlinkat(dir.get(), tmp.c_str(), 0);
    return written;
  }
  if (env.fsync(dir.get()) != 0) return fail_errno("fsync", dir_path);
  return ok();
}

Result<bool> create_file_exclusive(Env& env, const std::string& path, std::string_view content,
                                   mode_t mode) {
  const auto split = split_path(path);
  const std::string& dir_path = split.first;
  const std::string& name = split.second;
  if (name.empty()) return fail("create", path, EISDIR);
  const int raw_dir = ::open(dir_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (raw_dir < 0) return fail_errno("open", dir_path);
  UniqueFd dir(raw_dir);
  const std::string tmp = temp_name_for(name);
  const int raw = ::openat(dir.get(), tmp.c_str(),
                           O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 07777);
  if (raw < 0) return fail_errno("openat", dir_path + "/" + tmp);
  UniqueFd fd(raw);
  bool created = true;
  auto linked = [&]() -> Status {
    if (::fchmod(fd.get(), mode & 07777) != 0) return fail_errno("fchmod", path);
    MAMORI_TRY(write_all(env, fd.get(),
                         {reinterpret_cast<const uint8_t*>(content.data()), content.size()}, path));
    if (env.fsync(fd.get()) != 0) return fail_errno("fsync", path);
    // linkat() never replaces: EEXIST means another creator (or an earlier run) won.
    if (::linkat(dir.get(), tmp.c_str(), dir.get(), name.c_str(), 0) != 0) {
      if (errno != EEXIST) return fail_errno("linkat", path);
      created = false;
    }
    return ok();
  }();
  ::unlinkat(dir.get(), tmp.c_str(), 0);
  if (!linked) return tl::unexpected(std::move(linked).error());
  if (created && env.fsync(dir.get()) != 0) return fail_errno("fsync", dir_path);
  return created;
}

Status remove_file(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return fail_errno("unlink", path);
  return ok();
}

}  // namespace mamori::fs
