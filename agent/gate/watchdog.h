#pragma once
// The open gate's watchdog: a small process of its own that answers "allow" for the gate
// when the gate cannot answer in time, so that no open on the host waits for ever on a
// stuck agent. fanotify waits for a permission answer without any timeout: an agent that
// is SIGSTOPped, swapped out, stuck in a syscall or busy hashing a huge file would
// freeze every reader of the guarded tree (what makes on-access scanners notorious). A
// thread of the agent stops with it; a separate process does not.
//
// The gate and the watchdog share one page (anonymous shared memory, made before the
// fork): when the gate last woke (it wakes at least every tick, events or not), when it
// started its current batch, and a slot per event it read but has not answered yet (the
// event's fd number in the agent). The watchdog, every tick:
//   - the gate has been busy with one batch, or asleep without waking, for longer than the
//     timeout: it takes over, answers every pending slot (by fd number: the kernel matches
//     answers by number, not by process) and every event queued or still coming (it
//     reads them itself) with FAN_ALLOW, and counts the episode, until the gate is back;
//   - otherwise it leaves everything to the gate.
// A slot is claimed with a compare-and-swap by exactly one of the two, and the gate
// closes an event's fd only after the watchdog finished answering it, so an fd number is
// never answered after it was reused for another event.
//
// The watchdog holds the fanotify group open too: it dies with the agent
// (PR_SET_PDEATHSIG), so a killed agent still releases every waiting open at once (the
// kernel allows them when the group's last fd closes). It runs as nobody with no other
// descriptor than the group's.

#include <sys/types.h>

#include <atomic>
#include <cstdint>

#include "core/base/result.h"

namespace mamori::gate {

struct SharedPage {
  static constexpr size_t kSlots = 128;
  enum SlotState : uint32_t { kFree = 0, kPending = 1, kClaimed = 2, kAnswered = 3 };
  struct Slot {
    std::atomic<int32_t> fd{-1};
    std::atomic<uint32_t> state{kFree};
  };
  // CLOCK_MONOTONIC (the child cannot use the agent's Clock).
  std::atomic<int64_t> alive_ns{0};       // when the gate last woke
  std::atomic<int64_t> busy_since_ns{0};  // when it began its batch; 0 while waiting
  std::atomic<uint64_t> takeovers{0};     // episodes the watchdog answered for the gate
  std::atomic<uint64_t> answered{0};      // events it answered
  Slot slots[kSlots];
};
static_assert(std::atomic<int64_t>::is_always_lock_free &&
                  std::atomic<uint32_t>::is_always_lock_free,
              "the page is shared between processes: its atomics must not be locks");

class Watchdog {
 public:
  // Maps the page and forks the watchdog, which answers on `fanotify_fd` when the gate
  // has not within `timeout_ms`. The gate must wake at least every tick_ms(timeout_ms).
  static Result<Watchdog> start(int fanotify_fd, uint32_t timeout_ms);
  Watchdog(Watchdog&& other) noexcept;
  Watchdog& operator=(Watchdog&&) = delete;
  Watchdog(const Watchdog&) = delete;
  ~Watchdog();  // kills and reaps the process, unmaps the page

  static int tick_ms(uint32_t timeout_ms);
  SharedPage& page() const { return *page_; }
  pid_t pid() const { return pid_; }
  // False once the process is gone (killed by someone); the gate then runs without it.
  bool alive();

 private:
  Watchdog(SharedPage* page, pid_t pid) : page_(page), pid_(pid) {}
  SharedPage* page_ = nullptr;
  pid_t pid_ = -1;
};

}  // namespace mamori::gate
