#include "agent/guard/publisher.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <set>

#include "core/fs/beneath.h"

namespace mamori::guard {

Status make_durable(const std::vector<Rewritten>& rewritten) {
  if (rewritten.size() > kSyncfsPast) {
    std::set<int> roots;
    for (const auto& r : rewritten) roots.insert(r.root_fd);
    for (int fd : roots)
      if (::syncfs(fd) != 0) return fail_errno("syncfs", "");
    return ok();
  }
  for (const auto& r : rewritten) {
    auto file = fs::open_beneath(r.root_fd, r.rel, O_RDONLY | O_NONBLOCK);
    if (!file) {
      if (file.error().errnum == ENOENT) continue;
      return tl::unexpected(std::move(file).error());
    }
    if (::fsync(file->get()) != 0) return fail_errno("fsync", r.rel);
    auto dir = fs::open_beneath(r.root_fd, fs::dirname(r.rel), O_RDONLY | O_DIRECTORY);
    if (dir && ::fsync(dir->get()) != 0) return fail_errno("fsync directory of", r.rel);
  }
  return ok();
}

Status SyncPublisher::publish(std::vector<event::Event>&& events,
                              std::vector<Rewritten>&& rewritten) {
  // A failed sync still gets its events written: they are the record of what happened.
  const auto synced = make_durable(rewritten);
  for (auto& e : events) {
    origin_.stamp(e);
    box_.append(e);
  }
  MAMORI_TRY(box_.flush());
  return synced;
}

}  // namespace mamori::guard
