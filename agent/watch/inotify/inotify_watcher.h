#pragma once
// The inotify backend, for kernels or containers where fanotify is not allowed: one
// watch per directory, added as directories appear. inotify does not say who made a
// change (pid is -1) and reports our own restores too; the guard's comparison with the
// baseline makes those no-ops. A directory that appears is read at once and everything
// already inside it reported, since it may have filled before its watch existed.
//
// Watches are a kernel limit (fs.inotify.max_user_watches): when adding one fails with
// ENOSPC the limit is raised to what the roots need (we run as root) and, if that is not
// allowed, add_root() fails naming the sysctl and the number to set.

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/watch/watcher.h"
#include "core/base/unique_fd.h"

namespace mamori::watch {

class InotifyWatcher final : public Watcher {
 public:
  static Result<std::unique_ptr<InotifyWatcher>> create();

  std::string_view name() const override { return "inotify"; }
  Status add_root(size_t index, const std::string& path, int root_fd) override;
  int fd() const override { return fd_.get(); }
  Status read(std::vector<Change>& out) override;
  uint64_t overflows() const override { return overflows_; }
  size_t watches() const { return dirs_.size(); }

 private:
  struct Dir {
    size_t root;
    std::string rel;
  };
  struct Root {
    size_t index;
    int fd;  // owned by the caller
  };
  explicit InotifyWatcher(UniqueFd fd) : fd_(std::move(fd)) {}
  // Watches `rel` and every directory beneath it; with `report`, appends a kCreated
  // change for every entry found (they may predate the watch).
  Status watch_tree(size_t root, const std::string& rel, bool report, std::vector<Change>* out);
  Status watch_one(size_t root, int dir_fd, const std::string& rel);

  UniqueFd fd_;
  std::vector<Root> roots_;
  std::unordered_map<int, Dir> dirs_;  // watch descriptor -> directory
  uint64_t overflows_ = 0;
  static constexpr int kMaxReadsPerCall = 4;
  std::vector<char> buf_ = std::vector<char>(256 * 1024);
};

}  // namespace mamori::watch
