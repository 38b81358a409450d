#include "core/fs/walk.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "core/base/unique_fd.h"
#include "core/fs/beneath.h"
#include "core/fs/xattr.h"

namespace mamori::fs {
namespace {

struct linux_dirent64 {
  ino64_t d_ino;
  off64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

Result<std::vector<std::string>> list_names(int dir_fd, std::string_view display) {
  std::vector<std::string> names;
  alignas(linux_dirent64) char buf[32768];
  for (;;) {
    const long n = ::syscall(SYS_getdents64, dir_fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("getdents64", std::string(display));
    }
    if (n == 0) break;
    for (long pos = 0; pos < n;) {
      const auto* d = reinterpret_cast<const linux_dirent64*>(buf + pos);
      pos += d->d_reclen;
      if (std::strcmp(d->d_name, ".") == 0 || std::strcmp(d->d_name, "..") == 0) continue;
      names.emplace_back(d->d_name);
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

class Walker {
 public:
  Walker(const WalkOptions& options, const std::function<void(WalkEntry&&)>& on_entry,
         const std::function<void(Error&&)>& on_error)
      : options_(options), on_entry_(on_entry), on_error_(on_error) {}

  // `dir_fd` is open on the directory `entry` describes.
  void visit_dir(int dir_fd, WalkEntry entry, size_t depth) {
    const std::string dir_path = entry.path;
    const auto id = std::make_pair(entry.st.st_dev, entry.st.st_ino);
    if (std::find(ancestors_.begin(), ancestors_.end(), id) != ancestors_.end()) {
      on_error_(Error{"walk", dir_path, ELOOP, "directory cycle (a bind mount?); not entered"});
      entry.incomplete = true;
      on_entry_(std::move(entry));
      return;
    }
    if (depth > options_.max_depth) {
      on_error_(Error{"walk", dir_path, 0, "deeper than the nesting limit; not entered"});
      entry.incomplete = true;
      entry.too_deep = true;
      on_entry_(std::move(entry));
      return;
    }
    auto names = list_names(dir_fd, dir_path.empty() ? "." : dir_path);
    if (!names) {
      entry.incomplete = true;
      on_error_(Error(names.error()));
    }
    on_entry_(std::move(entry));
    if (!names) return;
    ancestors_.push_back(id);
    for (auto& name : *names) visit_child(dir_fd, dir_path, name, depth);
    ancestors_.pop_back();
  }

 private:
  void visit_child(int dir_fd, const std::string& dir_path, const std::string& name, size_t depth) {
    WalkEntry e;
    e.path = join(dir_path, name);
    if (options_.exclude && options_.exclude->matches(e.path)) return;
    if (::fstatat(dir_fd, name.c_str(), &e.st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT) on_error_(Error{"fstatat", e.path, errno, ""});
      return;  // ENOENT: deleted since listed; it is simply not there
    }
    if (S_ISDIR(e.st.st_mode)) {
      const int fd = ::openat(dir_fd, name.c_str(),
                              O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
      if (fd < 0) {
        if (errno == ENOENT) return;
        on_error_(Error{"openat", e.path, errno, ""});
        e.incomplete = true;
        read_xattrs_by_name(dir_fd, name, e);
        on_entry_(std::move(e));
        return;
      }
      UniqueFd child(fd);
      struct stat now {};
      if (::fstat(child.get(), &now) == 0 &&
          (now.st_ino != e.st.st_ino || now.st_dev != e.st.st_dev)) {
        e.st = now;  // replaced between fstatat and openat: describe what we opened
      }
      if (auto x = read_xattrs_fd(child.get(), e.path))
        e.xattrs = std::move(*x);
      else
        on_error_(std::move(x).error());
      visit_dir(child.get(), std::move(e), depth + 1);
      return;
    }
    if (S_ISLNK(e.st.st_mode)) {
      auto target = read_link_at(dir_fd, name, e.path);
      if (!target) {
        if (target.error().errnum != ENOENT) on_error_(std::move(target).error());
        return;
      }
      e.link_target = std::move(*target);
    }
    read_xattrs_by_name(dir_fd, name, e);
    on_entry_(std::move(e));
  }

  void read_xattrs_by_name(int dir_fd, const std::string& name, WalkEntry& e) {
    if (auto x = read_xattrs_at(dir_fd, name, e.path))
      e.xattrs = std::move(*x);
    else if (x.error().errnum != ENOENT)
      on_error_(std::move(x).error());
  }

  const WalkOptions& options_;
  const std::function<void(WalkEntry&&)>& on_entry_;
  const std::function<void(Error&&)>& on_error_;
  std::vector<std::pair<dev_t, ino_t>> ancestors_;
};

}  // namespace

Status walk(int dir_fd, std::string_view dir_path, const WalkOptions& options,
            const std::function<void(WalkEntry&&)>& on_entry,
            const std::function<void(Error&&)>& on_error) {
  WalkEntry top;
  top.path = std::string(dir_path);
  const std::string display = dir_path.empty() ? "." : top.path;
  if (::fstat(dir_fd, &top.st) != 0) return fail_errno("fstat", display);
  if (!S_ISDIR(top.st.st_mode)) return fail("walk", display, ENOTDIR);
  top.xattrs = MAMORI_TRY(read_xattrs_fd(dir_fd, display));
  Walker walker(options, on_entry, on_error);
  walker.visit_dir(dir_fd, std::move(top), 0);
  return ok();
}

}  // namespace mamori::fs
