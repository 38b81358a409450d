#pragma once
// Commands from the manager on their way to the agent's loop thread, the only thread that
// may touch the guard, the watcher and the healer (agent/control/handlers.h): the link's
// thread push()es, the loop polls fd() (an eventfd, readable while something waits) as
// it polls the control socket, and take()s. Bounded: a manager that sends commands
// faster than the agent runs them gets push() == false and answers it with an error
// itself; nothing queues without limit in the agent.
//
// Threads: push() from any thread, fd() and take() from the loop thread.

#include <cstddef>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/base/mutex.h"
#include "core/base/result.h"
#include "core/base/unique_fd.h"

namespace mamori::link {

struct PendingCommand {
  std::string id;          // the manager's command_id, echoed in the result
  nlohmann::json request;  // a control-protocol request (core/proto/control.h)
};

class CommandQueue {
 public:
  static constexpr size_t kDefaultCapacity = 64;
  static Result<std::unique_ptr<CommandQueue>> create(size_t capacity = kDefaultCapacity);

  int fd() const { return fd_.get(); }
  // False, leaving the queue as it was, when `capacity` commands wait already.
  bool push(PendingCommand c);
  // Every waiting command, oldest first; empties the queue and drains fd().
  std::vector<PendingCommand> take();
  size_t size() const;

  explicit CommandQueue(UniqueFd fd, size_t capacity) : fd_(std::move(fd)), capacity_(capacity) {}

 private:
  UniqueFd fd_;
  const size_t capacity_;
  mutable Mutex mu_;
  std::deque<PendingCommand> queue_ MAMORI_GUARDED_BY(mu_);
};

}  // namespace mamori::link
