#include "agent/link/command_queue.h"

#include <sys/eventfd.h>
#include <unistd.h>

namespace mamori::link {

Result<std::unique_ptr<CommandQueue>> CommandQueue::create(size_t capacity) {
  const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return fail_errno("eventfd", "manager commands");
  return std::make_unique<CommandQueue>(UniqueFd(fd), capacity);
}

bool CommandQueue::push(PendingCommand c) {
  {
    MutexLock lock(mu_);
    if (queue_.size() >= capacity_) return false;
    queue_.push_back(std::move(c));
  }
  const uint64_t one = 1;
  // The counter cannot overflow (at most capacity_ adds between two reads); EAGAIN
  // would only mean it is readable already.
  (void)!::write(fd_.get(), &one, sizeof one);
  return true;
}

std::vector<PendingCommand> CommandQueue::take() {
  uint64_t n = 0;
  (void)!::read(fd_.get(), &n, sizeof n);  // EAGAIN: nothing was signalled; fine
  MutexLock lock(mu_);
  std::vector<PendingCommand> out(std::make_move_iterator(queue_.begin()),
                                  std::make_move_iterator(queue_.end()));
  queue_.clear();
  return out;
}

size_t CommandQueue::size() const {
  MutexLock lock(mu_);
  return queue_.size();
}

}  // namespace mamori::link
