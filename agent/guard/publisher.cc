#include "agent/guard/publisher.h"

#include <unistd.h>

namespace mamori::guard {

Status sync_filesystems(const std::vector<int>& fds) {
  for (int fd : fds)
    if (::syncfs(fd) != 0) return fail_errno("syncfs", "");
  return ok();
}

Status SyncPublisher::publish(std::vector<event::Event>&& events, const std::vector<int>& sync_fds) {
  // A failed sync still gets its events written: they are the record of what happened.
  const auto synced = sync_filesystems(sync_fds);
  for (const auto& e : events) box_.append(e);
  MAMORI_TRY(box_.flush());
  return synced;
}

}  // namespace mamori::guard
