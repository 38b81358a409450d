#include "agent/watch/fanotify/fanotify_watcher.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent/watch/sysctl.h"
#include "core/fs/beneath.h"
#include "core/fs/handle.h"

namespace mamori::watch {
namespace {

constexpr uint64_t kMask = FAN_MODIFY | FAN_CLOSE_WRITE | FAN_ATTRIB | FAN_CREATE | FAN_DELETE |
                           FAN_MOVED_FROM | FAN_MOVED_TO | FAN_DELETE_SELF | FAN_MOVE_SELF |
                           FAN_ONDIR;

// The kernel sizes a group's queue from fs.fanotify.max_queued_events when the group is
// made (16,384 by default). The whole filesystem's events pass through these queues, and
// a lost one costs a rescan of every root, so the agent's groups get kQueuedEvents: the
// setting is raised for the moment of fanotify_init and put back, leaving everyone
// else's groups as they were. A bound, where FAN_UNLIMITED_QUEUE would have none (a
// stalled agent would queue the filesystem's events in kernel memory without end).
class LargerQueue {
 public:
  static constexpr uint64_t kQueuedEvents = 262'144;  // ~150 bytes each queued: ~40 MiB at most
  LargerQueue() {
    const uint64_t was = read_sysctl(kSysctl);
    if (was == 0 || was >= kQueuedEvents) return;  // no such setting (before 5.13), or enough
    if (write_sysctl(kSysctl, kQueuedEvents)) restore_ = was;
  }
  ~LargerQueue() {
    if (restore_) (void)write_sysctl(kSysctl, restore_);
  }
  LargerQueue(const LargerQueue&) = delete;
  LargerQueue& operator=(const LargerQueue&) = delete;

 private:
  static constexpr const char* kSysctl = "/proc/sys/fs/fanotify/max_queued_events";
  uint64_t restore_ = 0;
};

}  // namespace

Result<std::unique_ptr<FanotifyWatcher>> FanotifyWatcher::create() {
  const LargerQueue larger;
  const int fd =
      ::fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_DFID_NAME,
                      O_RDONLY | O_LARGEFILE | O_CLOEXEC);
  if (fd < 0) return fail_errno("fanotify_init", "");
  auto w = std::unique_ptr<FanotifyWatcher>(new FanotifyWatcher(UniqueFd(fd)));
  w->self_ = ::getpid();
  const int opens = ::fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_FID,
                                    O_RDONLY | O_LARGEFILE | O_CLOEXEC);
  if (opens >= 0) w->opens_.reset(opens);  // without it, writable mappings are seen at close
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return fail_errno("epoll_create1", "");
  w->epoll_.reset(ep);
  for (const int f : {w->fd_.get(), w->opens_.get()}) {
    if (f < 0) continue;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = f;
    if (::epoll_ctl(ep, EPOLL_CTL_ADD, f, &ev) != 0) return fail_errno("epoll_ctl", "");
  }
  return w;
}

Status FanotifyWatcher::add_root(size_t index, const std::string& path, int root_fd) {
  // A filesystem mark: sees every entry beneath the root however deep, including those
  // created later, at the cost of also seeing (and dropping) the rest of the filesystem.
  if (::fanotify_mark(fd_.get(), FAN_MARK_ADD | FAN_MARK_FILESYSTEM, kMask, root_fd, nullptr) != 0)
    return fail_errno("fanotify_mark", path);
  if (opens_.valid() && ::fanotify_mark(opens_.get(), FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_OPEN,
                                        root_fd, nullptr) != 0)
    return fail_errno("fanotify_mark (opens)", path);
  struct statfs sfs {};
  if (::fstatfs(root_fd, &sfs) != 0) return fail_errno("fstatfs", path);
  const int dup = ::fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return fail_errno("dup", path);
  // Roots are tried in order; a root nested in another is refused by the config.
  roots_.push_back({index, path, UniqueFd(dup), sfs.f_fsid});
  return ok();
}

const FanotifyWatcher::Root* FanotifyWatcher::locate(const std::string& dir,
                                                     std::string& rel) const {
  for (const auto& r : roots_) {
    if (auto within = fs::relative_to(r.path, dir)) {
      rel = std::move(*within);
      return &r;
    }
  }
  return nullptr;
}

auto FanotifyWatcher::resolve(const fanotify_event_info_fid& fid, file_handle* handle) -> Where {
  std::string key(reinterpret_cast<const char*>(&fid.fsid), sizeof fid.fsid);
  key.append(reinterpret_cast<const char*>(&handle->handle_type), sizeof handle->handle_type);
  key.append(reinterpret_cast<const char*>(handle->f_handle), handle->handle_bytes);
  if (auto it = dirs_.find(key); it != dirs_.end()) return it->second;
  Where where;
  for (size_t i = 0; i < roots_.size(); ++i) {
    const auto& r = roots_[i];
    if (std::memcmp(&r.fsid, &fid.fsid, sizeof r.fsid) != 0) continue;
    const int dfd = ::open_by_handle_at(r.mount_fd.get(), handle, O_PATH | O_CLOEXEC);
    if (dfd < 0) return where;  // gone: its own removal is reported; nothing to remember
    const std::string dir = fs::path_of_fd(dfd);
    ::close(dfd);
    if (dir.empty()) return where;
    std::string rel;
    if (const Root* root = locate(dir, rel)) {
      where.root = static_cast<int>(root - roots_.data());
      where.rel = std::move(rel);
    }
    break;
  }
  if (dirs_.size() >= kMaxCachedDirs) dirs_.clear();
  dirs_.emplace(std::move(key), where);
  return where;
}

void FanotifyWatcher::decode(const fanotify_event_metadata& meta, const char* raw,
                             std::vector<Change>& out) {
  // A directory renamed or deleted anywhere changes the paths beneath it.
  if ((meta.mask & FAN_ONDIR) &&
      (meta.mask & (FAN_MOVED_FROM | FAN_MOVED_TO | FAN_MOVE_SELF | FAN_DELETE | FAN_DELETE_SELF)))
    dirs_.clear();
  // Info records follow the fixed header: here one DFID_NAME (or DFID for events on a
  // directory itself that has no name to report).
  const char* p = raw + meta.metadata_len;
  const char* end = raw + meta.event_len;
  while (p + sizeof(fanotify_event_info_header) <= end) {
    const auto* hdr = reinterpret_cast<const fanotify_event_info_header*>(p);
    if (hdr->len == 0 || p + hdr->len > end) return;
    if (hdr->info_type != FAN_EVENT_INFO_TYPE_DFID_NAME &&
        hdr->info_type != FAN_EVENT_INFO_TYPE_DFID) {
      p += hdr->len;
      continue;
    }
    const auto* fid = reinterpret_cast<const fanotify_event_info_fid*>(p);
    auto* handle = reinterpret_cast<file_handle*>(const_cast<unsigned char*>(fid->handle));
    const Where where = resolve(*fid, handle);
    if (where.root < 0) return;
    std::string rel = where.rel;
    if (hdr->info_type == FAN_EVENT_INFO_TYPE_DFID_NAME) {
      const char* name = reinterpret_cast<const char*>(handle->f_handle) + handle->handle_bytes;
      if (std::strcmp(name, ".") != 0) rel = rel.empty() ? std::string(name) : rel + "/" + name;
    }
    uint32_t what = 0;
    if (meta.mask & (FAN_MODIFY | FAN_CLOSE_WRITE)) what |= kContent;
    if (meta.mask & FAN_CLOSE_WRITE) what |= kClosedWrite;
    if (meta.mask & FAN_OPEN) what |= kOpened;
    if (meta.mask & FAN_ATTRIB) what |= kAttrib;
    if (meta.mask & (FAN_CREATE | FAN_MOVED_TO)) what |= kCreated;
    if (meta.mask & (FAN_DELETE | FAN_MOVED_FROM | FAN_DELETE_SELF | FAN_MOVE_SELF))
      what |= kRemoved;
    if (meta.mask & FAN_ONDIR) what |= kIsDir;
    out.push_back(
        {roots_[static_cast<size_t>(where.root)].index, std::move(rel), what, meta.pid, {}});
    return;
  }
}

void FanotifyWatcher::decode_open(const fanotify_event_metadata& meta, const char* raw,
                                  std::vector<Change>& out) {
  const char* p = raw + meta.metadata_len;
  const char* end = raw + meta.event_len;
  while (p + sizeof(fanotify_event_info_header) <= end) {
    const auto* hdr = reinterpret_cast<const fanotify_event_info_header*>(p);
    if (hdr->len == 0 || p + hdr->len > end) return;
    if (hdr->info_type != FAN_EVENT_INFO_TYPE_FID) {
      p += hdr->len;
      continue;
    }
    const auto* fid = reinterpret_cast<const fanotify_event_info_fid*>(p);
    const auto* handle = reinterpret_cast<const file_handle*>(fid->handle);
    for (const auto& r : roots_) {
      if (std::memcmp(&r.fsid, &fid->fsid, sizeof r.fsid) != 0) continue;
      Change c{r.index, "", kOpened, meta.pid, {}};
      c.handle = fs::handle_key(
          r.fsid, handle->handle_type,
          {reinterpret_cast<const uint8_t*>(handle->f_handle), handle->handle_bytes});
      out.push_back(std::move(c));
      return;  // the guard looks the inode up in every root on this filesystem
    }
    return;
  }
}

Status FanotifyWatcher::read(std::vector<Change>& out) {
  // Opens first: one that came before a change is handled with it.
  if (opens_.valid()) MAMORI_TRY(drain(opens_.get(), out));
  return drain(fd_.get(), out);
}

Status FanotifyWatcher::drain(int fd, std::vector<Change>& out) {
  // A bounded number of reads per call: under unrelated traffic that never stops, the
  // queue never empties, and the changes already read must still be handled.
  for (int reads = 0; reads < kMaxReadsPerCall; ++reads) {
    const ssize_t n = ::read(fd, buf_.data(), buf_.size());
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return ok();
      if (errno == EINTR) continue;
      return fail_errno("read fanotify", "");
    }
    if (n == 0) return ok();
    // Events are packed back to back with lengths that keep them only 4-byte aligned,
    // while the header holds a u64: copy each header out instead of casting in place.
    for (size_t off = 0; off + sizeof(fanotify_event_metadata) <= static_cast<size_t>(n);) {
      fanotify_event_metadata meta{};
      std::memcpy(&meta, buf_.data() + off, sizeof meta);
      if (meta.event_len < sizeof meta || off + meta.event_len > static_cast<size_t>(n)) break;
      if (meta.vers != FANOTIFY_METADATA_VERSION)
        return fail_msg("fanotify", "", "metadata version mismatch");
      const char* raw = buf_.data() + off;
      off += meta.event_len;
      if (meta.mask & FAN_Q_OVERFLOW) {
        ++overflows_;
        // Lost opens only call for asking every baselined file again (kOpened), not for
        // a rescan of the whole tree.
        const uint32_t what = fd == opens_.get() ? kOverflow | kOpened : kOverflow | kIsDir;
        for (const auto& r : roots_) out.push_back({r.index, "", what, -1, {}});
        continue;
      }
      if (meta.fd >= 0) ::close(meta.fd);  // not used with FID reporting, but never leak
      if (meta.pid == self_) continue;     // our own restores
      if (fd == opens_.get())
        decode_open(meta, raw, out);
      else
        decode(meta, raw, out);
    }
  }
  return ok();
}

}  // namespace mamori::watch
