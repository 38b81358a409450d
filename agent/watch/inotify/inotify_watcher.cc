#include "agent/watch/inotify/inotify_watcher.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>

#include <fmt/format.h>

#include "agent/watch/sysctl.h"
#include "core/fs/beneath.h"

namespace mamori::watch {
namespace {

constexpr uint32_t kMask = IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB | IN_CREATE | IN_DELETE |
                           IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF |
                           IN_ONLYDIR |
                           IN_EXCL_UNLINK;  // no IN_DONT_FOLLOW: we follow /proc/self/fd
constexpr const char* kWatchesSysctl = "/proc/sys/fs/inotify/max_user_watches";

uint64_t read_limit() { return read_sysctl(kWatchesSysctl); }

// Doubles the per-user watch limit; false when not allowed.
bool raise_limit() {
  const uint64_t now = read_limit();
  if (now == 0 || now >= (1ull << 30)) return false;
  return write_sysctl(kWatchesSysctl, now * 2) && read_limit() > now;
}

}  // namespace

Result<std::unique_ptr<InotifyWatcher>> InotifyWatcher::create() {
  const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return fail_errno("inotify_init1", "");
  return std::unique_ptr<InotifyWatcher>(new InotifyWatcher(UniqueFd(fd)));
}

Status InotifyWatcher::add_root(size_t index, const std::string& path, int root_fd) {
  roots_.push_back({index, root_fd});
  auto st = watch_tree(roots_.size() - 1, "", false, nullptr);
  if (!st) st.error().path = path + (st.error().path.empty() ? "" : "/" + st.error().path);
  return st;
}

Status InotifyWatcher::watch_one(size_t root, int dir_fd, const std::string& rel) {
  // Through the fd's /proc link: exactly the directory opened beneath the root, even if
  // its name was swapped for a symlink since.
  const std::string proc = fmt::format("/proc/self/fd/{}", dir_fd);
  while (true) {
    const int wd = ::inotify_add_watch(fd_.get(), proc.c_str(), kMask);
    if (wd >= 0) {
      dirs_[wd] = {root, rel};
      return ok();
    }
    if (errno != ENOSPC) return fail_errno("inotify_add_watch", rel);
    if (!raise_limit())
      return fail("inotify_add_watch", rel, ENOSPC,
                  fmt::format("out of inotify watches and could not raise the limit: set "
                              "fs.inotify.max_user_watches above {} (sysctl -w), or let mamori "
                              "use fanotify",
                              read_limit()));
  }
}

Status InotifyWatcher::watch_tree(size_t root, const std::string& rel, bool report,
                                  std::vector<Change>* out) {
  const int root_fd = roots_[root].fd;
  auto dir = fs::open_beneath(root_fd, rel, O_RDONLY | O_DIRECTORY);
  if (!dir) {
    // Gone or replaced already: its removal is (or will be) an event of its parent.
    if (dir.error().errnum == ENOENT || dir.error().errnum == ENOTDIR ||
        dir.error().errnum == ELOOP)
      return ok();
    return tl::unexpected(std::move(dir).error());
  }
  MAMORI_TRY(watch_one(root, dir->get(), rel));
  // Read the entries through a duplicate: closedir() closes the fd it was given.
  const int dup = ::fcntl(dir->get(), F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return fail_errno("dup", rel);
  DIR* d = ::fdopendir(dup);
  if (!d) {
    ::close(dup);
    return fail_errno("fdopendir", rel);
  }
  std::vector<std::string> subdirs;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    const std::string child = fs::join(rel, name);
    bool is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN) {
      struct stat st {};
      is_dir =
          ::fstatat(dir->get(), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
    }
    if (report && out)
      out->push_back({roots_[root].index, child, kCreated | (is_dir ? kIsDir : 0u), -1, {}});
    if (is_dir) subdirs.push_back(child);
  }
  ::closedir(d);
  for (const auto& s : subdirs) MAMORI_TRY(watch_tree(root, s, report, out));
  return ok();
}

Status InotifyWatcher::read(std::vector<Change>& out) {
  // A bounded number of reads per call: under unrelated traffic that never stops, the
  // queue never empties, and the changes already read must still be handled.
  for (int reads = 0; reads < kMaxReadsPerCall; ++reads) {
    const ssize_t n = ::read(fd_.get(), buf_.data(), buf_.size());
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return ok();
      if (errno == EINTR) continue;
      return fail_errno("read inotify", "");
    }
    if (n == 0) return ok();
    for (ssize_t off = 0; off + static_cast<ssize_t>(sizeof(inotify_event)) <= n;) {
      const auto* ev = reinterpret_cast<const inotify_event*>(buf_.data() + off);
      off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
      if (ev->mask & IN_Q_OVERFLOW) {
        ++overflows_;
        for (const auto& r : roots_) out.push_back({r.index, "", kOverflow | kIsDir, -1, {}});
        continue;
      }
      auto it = dirs_.find(ev->wd);
      if (it == dirs_.end()) continue;
      const Dir dir = it->second;
      if (ev->mask & IN_IGNORED) {
        dirs_.erase(it);
        continue;
      }
      if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
        // Reported by the parent as a removal too; the watch goes with the inode.
        continue;
      }
      const std::string rel = ev->len ? fs::join(dir.rel, ev->name) : dir.rel;
      uint32_t what = 0;
      if (ev->mask & (IN_MODIFY | IN_CLOSE_WRITE)) what |= kContent;
      if (ev->mask & IN_CLOSE_WRITE) what |= kClosedWrite;
      if (ev->mask & IN_ATTRIB) what |= kAttrib;
      if (ev->mask & (IN_CREATE | IN_MOVED_TO)) what |= kCreated;
      if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) what |= kRemoved;
      if (ev->mask & IN_ISDIR) what |= kIsDir;
      const size_t index = roots_[dir.root].index;
      out.push_back({index, rel, what, -1, {}});
      if ((ev->mask & (IN_CREATE | IN_MOVED_TO)) && (ev->mask & IN_ISDIR))
        MAMORI_TRY(watch_tree(dir.root, rel, true, &out));
    }
  }
  return ok();
}

}  // namespace mamori::watch
