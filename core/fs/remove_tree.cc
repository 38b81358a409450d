#include "core/fs/remove_tree.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "core/base/unique_fd.h"

namespace mamori::fs {
namespace {

struct linux_dirent64 {
  ino64_t d_ino;
  off64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

constexpr size_t kMaxLabel = 4096;
constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;

struct Id {
  dev_t dev;
  ino_t ino;
  bool operator==(const Id&) const = default;
};

Id id_of(const struct stat& st) { return {st.st_dev, st.st_ino}; }

// The first entry of `dir_fd` other than "." and "..", read from the start: what was
// removed is not listed again, so each call makes progress.
Result<std::optional<std::string>> first_entry(int dir_fd, const std::string& display) {
  if (::lseek(dir_fd, 0, SEEK_SET) != 0) return fail_errno("lseek", display);
  alignas(linux_dirent64) char buf[8192];
  for (;;) {
    const long n = ::syscall(SYS_getdents64, dir_fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("getdents64", display);
    }
    if (n == 0) return std::optional<std::string>();
    for (long pos = 0; pos < n;) {
      const auto* d = reinterpret_cast<const linux_dirent64*>(buf + pos);
      pos += d->d_reclen;
      if (std::strcmp(d->d_name, ".") != 0 && std::strcmp(d->d_name, "..") != 0)
        return std::optional<std::string>(d->d_name);
    }
  }
}

// The display path of the directory being emptied: names are kept only while the path
// fits in kMaxLabel; deeper levels are counted, not stored.
class Label {
 public:
  explicit Label(std::string_view top) : path_(top) {}
  void push(const std::string& name) {
    if (hidden_ == 0 && path_.size() + 1 + name.size() <= kMaxLabel) {
      cuts_.push_back(path_.size());
      path_ += '/';
      path_ += name;
    } else {
      ++hidden_;
    }
  }
  void pop() {
    if (hidden_ > 0) {
      --hidden_;
    } else if (!cuts_.empty()) {
      path_.resize(cuts_.back());
      cuts_.pop_back();
    }
  }
  std::string child(const std::string& name) const {
    return path_ + (hidden_ ? "/…/" : "/") + name;
  }
  const std::string& dir() const { return path_; }

 private:
  std::string path_;
  std::vector<size_t> cuts_;
  size_t hidden_ = 0;
};

}  // namespace

Status remove_tree(int parent_fd, const std::string& name, std::string_view display,
                   const RemoveTreeOptions& options, RemoveTreeReport& report) {
  const std::string top_display(display);
  struct stat st {};
  if (::fstat(parent_fd, &st) != 0) return fail_errno("fstat", top_display);
  // ids[0] is the top's parent, ids.back() the directory being emptied.
  std::vector<Id> ids{id_of(st)};
  const int raw = ::openat(parent_fd, name.c_str(), kDirFlags);
  if (raw < 0) {
    if (errno == ENOENT) return ok();
    return fail_errno("openat", top_display);
  }
  UniqueFd cur(raw);
  if (::fstat(cur.get(), &st) != 0) return fail_errno("fstat", top_display);
  ids.push_back(id_of(st));
  Label label(display);
  uint64_t budget = options.max_entries;

  for (;;) {
    auto next = MAMORI_TRY(first_entry(cur.get(), label.dir()));
    if (!next) {
      if (ids.size() == 2) {
        if (options.keep_top) return ok();
        // The top is empty: it goes only if `name` is still the directory we emptied.
        if (::fstatat(parent_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
          if (errno == ENOENT) return ok();
          return fail_errno("fstatat", top_display);
        }
        if (id_of(st) != ids[1])
          return fail("remove", top_display, ESTALE, "replaced while it was removed");
        if (::unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR) != 0) {
          if (errno == ENOENT) return ok();
          return fail_errno("rmdir", top_display);
        }
        ++report.directories;
        return ok();
      }
      // Back up one level; the emptied directory is removed when the parent is listed.
      const int up = ::openat(cur.get(), "..", kDirFlags);
      if (up < 0) return fail_errno("openat ..", label.dir());
      UniqueFd parent(up);
      if (::fstat(parent.get(), &st) != 0) return fail_errno("fstat ..", label.dir());
      if (id_of(st) != ids[ids.size() - 2])
        return fail("remove", label.dir(), ESTALE,
                    "moved out of the tree being removed; left for the next look");
      ids.pop_back();
      label.pop();
      cur = std::move(parent);
      continue;
    }
    if (budget == 0)
      return fail("remove", top_display, EAGAIN,
                  "more than " + std::to_string(options.max_entries) +
                      " entries removed and more keep coming; the rest is left for the next look");
    --budget;
    const std::string& entry = *next;
    if (::fstatat(cur.get(), entry.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      return fail_errno("fstatat", label.child(entry));
    }
    if (S_ISDIR(st.st_mode)) {
      if (::unlinkat(cur.get(), entry.c_str(), AT_REMOVEDIR) == 0) {
        ++report.directories;
        continue;
      }
      if (errno == ENOENT) continue;
      if (errno != ENOTEMPTY && errno != EEXIST) return fail_errno("rmdir", label.child(entry));
      const int down = ::openat(cur.get(), entry.c_str(), kDirFlags);
      if (down < 0) {
        if (errno == ENOENT) continue;
        return fail_errno("openat", label.child(entry));
      }
      UniqueFd child(down);
      if (::fstat(child.get(), &st) != 0) return fail_errno("fstat", label.child(entry));
      ids.push_back(id_of(st));
      label.push(entry);
      report.max_depth = std::max(report.max_depth, ids.size() - 2);
      cur = std::move(child);
      continue;
    }
    if (options.before_unlink) options.before_unlink(cur.get(), entry, st, label.child(entry));
    if (::unlinkat(cur.get(), entry.c_str(), 0) != 0) {
      if (errno == ENOENT) continue;
      return fail_errno("unlink", label.child(entry));
    }
    ++report.files;
  }
}

}  // namespace mamori::fs
