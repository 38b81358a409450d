#pragma once
// The fanotify backend: one filesystem mark per filesystem holding a root, reporting
// the directory's file handle and the entry's name (FAN_REPORT_DFID_NAME), so creates,
// deletes and renames are seen without a watch per directory and a tree of a million
// files costs nothing to watch. Every event carries the writer's pid. The directory
// handle is turned back into a path with open_by_handle_at(); events outside every
// root, and those of this process (our own restores), are dropped here.
//
// A filesystem mark sees the whole filesystem, and a busy one (a build, a log-heavy
// service) makes tens of thousands of events a second. Each directory handle is resolved
// once and remembered, inside a root or not, so an unrelated event costs one hash
// lookup; the memory is dropped whenever any directory is renamed or deleted (the only
// ways a directory's path changes) and when it grows past kMaxCachedDirs. Both groups'
// queues hold 262,144 events (16,384 by default): a lost event costs a rescan.
//
// A second group reports opens of files (not directories) on the same filesystems
// (kOpened), naming the file by its own handle (FAN_REPORT_FID), not by a directory and
// name: an open through a hard link outside every root still names the inode. The guard
// asks whether a baselined inode that was opened is now open for writing, since a write
// through another name, or through a shared writable mapping (no event at all, and no
// close while the writer lives), changes the site with no event naming it. A separate
// group so that directory opens (every listing) are never queued. Both groups are polled
// through one epoll descriptor.
//
// Needs CAP_SYS_ADMIN and a kernel with FAN_REPORT_DFID_NAME (5.9+): create() fails
// with EPERM/EINVAL otherwise and the caller falls back to inotify.

#include <fcntl.h>  // file_handle
#include <sys/fanotify.h>
#include <sys/statfs.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/watch/watcher.h"
#include "core/base/unique_fd.h"

namespace mamori::watch {

class FanotifyWatcher final : public Watcher {
 public:
  static Result<std::unique_ptr<FanotifyWatcher>> create();

  std::string_view name() const override { return "fanotify"; }
  Status add_root(size_t index, const std::string& path, int root_fd) override;
  int fd() const override { return epoll_.get(); }
  Status read(std::vector<Change>& out) override;
  uint64_t overflows() const override { return overflows_; }
  size_t cached_dirs_for_test() const { return dirs_.size(); }

 private:
  struct Root {
    size_t index;
    std::string path;   // resolved, no trailing '/' (but "/" itself)
    UniqueFd mount_fd;  // for open_by_handle_at
    fsid_t fsid;        // which filesystem's handles it can open
  };
  explicit FanotifyWatcher(UniqueFd fd) : fd_(std::move(fd)) {}
  // Reads the events queued on `fd` (one of the groups) into `out`.
  Status drain(int fd, std::vector<Change>& out);
  // The open one event of the opens group stands for.
  void decode_open(const fanotify_event_metadata& meta, const char* raw, std::vector<Change>& out);
  // Appends the change one event stands for; `raw` is the event in the read buffer.
  void decode(const fanotify_event_metadata& meta, const char* raw, std::vector<Change>& out);
  // The root holding absolute `dir`, and `dir` relative to it; null when none does.
  const Root* locate(const std::string& dir, std::string& rel) const;

  // Where a directory handle leads: the root (index into roots_, -1 for none) and the
  // directory's path relative to it.
  struct Where {
    int root = -1;
    std::string rel;
  };
  static constexpr size_t kMaxCachedDirs = 1 << 17;
  // The directory a handle names, resolved through the root on its filesystem.
  Where resolve(const fanotify_event_info_fid& fid, file_handle* handle);

  UniqueFd fd_;
  UniqueFd opens_;  // the group for FAN_OPEN of files; invalid when it could not be made
  UniqueFd epoll_;  // both groups
  std::vector<Root> roots_;
  std::unordered_map<std::string, Where> dirs_;  // key: fsid + handle type + handle
  pid_t self_ = 0;
  uint64_t overflows_ = 0;
  static constexpr int kMaxReadsPerCall = 4;
  std::vector<char> buf_ = std::vector<char>(256 * 1024);
};

}  // namespace mamori::watch
