#include "core/fs/atomic_replace.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "core/base/unique_fd.h"
#include "core/fs/xattr.h"

namespace mamori::fs {
namespace {

// ".mamori-<16 hex>.tmp": unpredictable, so an attacker cannot pre-plant it.
std::string temp_name() {
  uint8_t raw[8] = {};
  if (::getrandom(raw, sizeof raw, 0) != sizeof raw) {
    // getrandom on Linux >= 3.17 with a small buffer does not fail once seeded; fall back
    // to the address of a stack object and the pid rather than aborting a restore.
    const auto v = reinterpret_cast<uintptr_t>(&raw) ^ static_cast<uintptr_t>(::getpid());
    for (size_t i = 0; i < sizeof raw; ++i) raw[i] = static_cast<uint8_t>(v >> (8 * i));
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string name = ".mamori-";
  for (uint8_t b : raw) {
    name += kHex[b >> 4];
    name += kHex[b & 0xF];
  }
  return name + ".tmp";
}

timespec to_timespec(int64_t ns) {
  timespec ts{};
  ts.tv_sec = ns / 1'000'000'000;
  ts.tv_nsec = ns % 1'000'000'000;
  if (ts.tv_nsec < 0) {
    ts.tv_nsec += 1'000'000'000;
    ts.tv_sec -= 1;
  }
  return ts;
}

// Renames the finished temporary over `name`, then makes the rename durable.
Status commit(Env& env, int dir_fd, const std::string& tmp, const std::string& name,
              std::string_view display, Sync sync = Sync::kNow) {
  if (env.renameat2(dir_fd, tmp.c_str(), dir_fd, name.c_str(), 0) != 0) {
    const int err = errno;
    ::unlinkat(dir_fd, tmp.c_str(), 0);
    return fail("renameat2", std::string(display), err);
  }
  return sync == Sync::kNow ? sync_dir(env, dir_fd, display) : ok();
}

}  // namespace

Status apply_meta(int fd, const InodeMeta& meta, bool set_mtime, std::string_view display) {
  if (::fchown(fd, meta.uid, meta.gid) != 0) return fail_errno("fchown", std::string(display));
  if (::fchmod(fd, meta.mode & 07777) != 0) return fail_errno("fchmod", std::string(display));
  MAMORI_TRY(write_xattrs_fd(fd, meta.xattrs, display));
  if (set_mtime) {
    const timespec times[2] = {{0, UTIME_OMIT}, to_timespec(meta.mtime_ns)};
    if (::futimens(fd, times) != 0) return fail_errno("futimens", std::string(display));
  }
  return ok();
}

namespace {
Status apply_meta_at_impl(int dir_fd, const std::string& name, const InodeMeta& meta,
                          bool set_mtime, std::string_view display, bool only_own) {
  // Through an O_PATH fd: it needs no permission on the entry itself (so an owner can undo
  // a chmod 000), and every call below acts on that inode even if the name is swapped for
  // a symlink meanwhile.
  const int raw = ::openat(dir_fd, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (raw < 0) return fail_errno("openat", std::string(display));
  UniqueFd fd(raw);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail_errno("fstat", std::string(display));
  if (only_own && !S_ISDIR(st.st_mode) && st.st_nlink > 1)
    return fail("chown", std::string(display), EMLINK,
                "the inode has other names; its owner and mode are not ours to change");
  if (::fchownat(fd.get(), "", meta.uid, meta.gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0)
    return fail_errno("fchownat", std::string(display));
  const timespec times[2] = {{0, UTIME_OMIT}, to_timespec(meta.mtime_ns)};
  if (S_ISLNK(st.st_mode)) {  // no mode of its own; reached by name, never followed
    MAMORI_TRY(write_xattrs_at(dir_fd, name, meta.xattrs, display));
    if (set_mtime && ::utimensat(dir_fd, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
      return fail_errno("utimensat", std::string(display));
    return ok();
  }
  // "/proc/self/fd/N" leads to exactly the inode the O_PATH fd holds.
  const std::string proc = "/proc/self/fd/" + std::to_string(fd.get());
  if (::chmod(proc.c_str(), meta.mode & 07777) != 0)
    return fail_errno("chmod", std::string(display));
  MAMORI_TRY(write_xattrs_opath(fd.get(), meta.xattrs, display));
  if (set_mtime && ::utimensat(AT_FDCWD, proc.c_str(), times, 0) != 0)
    return fail_errno("utimensat", std::string(display));
  return ok();
}
}  // namespace

Status apply_meta_at(int dir_fd, const std::string& name, const InodeMeta& meta, bool set_mtime,
                     std::string_view display) {
  return apply_meta_at_impl(dir_fd, name, meta, set_mtime, display, false);
}

Status apply_meta_own_at(int dir_fd, const std::string& name, const InodeMeta& meta, bool set_mtime,
                         std::string_view display) {
  return apply_meta_at_impl(dir_fd, name, meta, set_mtime, display, true);
}

Status replace_file(Env& env, int dir_fd, const std::string& name, const InodeMeta& meta,
                    const std::function<Status(int fd)>& fill, std::string_view display,
                    Sync sync) {
  const std::string tmp = temp_name();
  const int raw =
      ::openat(dir_fd, tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (raw < 0) return fail_errno("create temporary for", std::string(display));
  UniqueFd fd(raw);
  auto written = [&]() -> Status {
    MAMORI_TRY(fill(fd.get()));
    MAMORI_TRY(apply_meta(fd.get(), meta, true, display));
    if (sync == Sync::kNow && env.fsync(fd.get()) != 0)
      return fail_errno("fsync", std::string(display));
    return ok();
  }();
  if (!written) {
    ::unlinkat(dir_fd, tmp.c_str(), 0);
    return written;
  }
  return commit(env, dir_fd, tmp, name, display, sync);
}

std::string_view written_name(Written w) {
  return w == Written::kReplaced ? "replaced" : "rewritten-in-place";
}

Result<Written> replace_or_rewrite_file(Env& env, int dir_fd, const std::string& name,
                                        const InodeMeta& meta,
                                        const std::function<Status(int fd)>& fill,
                                        std::string_view display, Sync sync) {
  auto replaced = replace_file(env, dir_fd, name, meta, fill, display, sync);
  if (replaced) return Written::kReplaced;
  const Error& err = replaced.error();
  // Only a temporary that could not be created for want of inodes or quota: any other
  // failure (a write, a rename) says nothing about the existing inode being writable.
  if (err.op != "create temporary for" || (err.errnum != ENOSPC && err.errnum != EDQUOT))
    return tl::unexpected(replaced.error());
  const int raw =
      ::openat(dir_fd, name.c_str(), O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (raw < 0) return tl::unexpected(replaced.error());
  UniqueFd fd(raw);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail_errno("fstat", std::string(display));
  if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
    Error refused = replaced.error();
    refused.detail =
        "no inode for a temporary, and the file there is not a regular file with "
        "one name: not rewritten in place";
    return tl::unexpected(std::move(refused));
  }
  // Emptied first: `fill` leaves runs of zeros as holes, which must not show old bytes.
  if (::ftruncate(fd.get(), 0) != 0) return fail_errno("ftruncate", std::string(display));
  MAMORI_TRY(fill(fd.get()));
  MAMORI_TRY(apply_meta(fd.get(), meta, true, display));
  if (env.fsync(fd.get()) != 0) return fail_errno("fsync", std::string(display));
  (void)sync;  // always synced: a rewrite in place is the one copy there is
  return Written::kRewrittenInPlace;
}

Status replace_symlink(Env& env, int dir_fd, const std::string& name, const std::string& target,
                       const InodeMeta& meta, std::string_view display) {
  const std::string tmp = temp_name();
  if (::symlinkat(target.c_str(), dir_fd, tmp.c_str()) != 0)
    return fail_errno("symlinkat", std::string(display));
  if (auto st = apply_meta_at(dir_fd, tmp, meta, true, display); !st) {
    ::unlinkat(dir_fd, tmp.c_str(), 0);
    return st;
  }
  return commit(env, dir_fd, tmp, name, display);
}

Status replace_node(Env& env, int dir_fd, const std::string& name, mode_t type, dev_t rdev,
                    const InodeMeta& meta, std::string_view display) {
  if (S_ISSOCK(type))
    return fail("restore", std::string(display), EOPNOTSUPP, "a socket cannot be recreated");
  const std::string tmp = temp_name();
  if (::mknodat(dir_fd, tmp.c_str(), (type & S_IFMT) | 0600, rdev) != 0)
    return fail_errno("mknodat", std::string(display));
  if (auto st = apply_meta_at(dir_fd, tmp, meta, true, display); !st) {
    ::unlinkat(dir_fd, tmp.c_str(), 0);
    return st;
  }
  return commit(env, dir_fd, tmp, name, display);
}

Status ensure_directory(int dir_fd, const std::string& name, const InodeMeta& meta,
                        std::string_view display) {
  // Created 0700 so nobody can use it before its real mode and owner are set.
  if (::mkdirat(dir_fd, name.c_str(), 0700) != 0 && errno != EEXIST)
    return fail_errno("mkdirat", std::string(display));
  // By O_PATH (apply_meta_at): an existing directory may be mode 000.
  return apply_meta_at(dir_fd, name, meta, false, display);
}

Status sync_dir(Env& env, int dir_fd, std::string_view display) {
  if (env.fsync(dir_fd) != 0) return fail_errno("fsync directory of", std::string(display));
  return ok();
}

}  // namespace mamori::fs
