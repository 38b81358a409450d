#pragma once
// Who may take events next while the event writer is behind (agent_channel.h). A channel
// that stopped taking them because the writer holds too much waits here, and channels
// are let in the order they came, each with a reservation of the bytes it is expected to
// bring (its last batch) until its next message is read: so memory stays near the limit
// however many agents wait, instead of every waiting channel bringing one batch more at
// once. The batches that waiting channels receive meanwhile may be held for them, up to
// the same limit again (hold()); past it they are dropped and asked for again.
//
// Threads: the io thread only.

#include <cstddef>
#include <deque>
#include <functional>

namespace mamori::manager {

class Admission {
 public:
  // Lets a waiting channel take events again (it owns the channel until then); false when
  // the channel ended meanwhile (then nothing is reserved for it).
  using Wake = std::function<bool()>;

  explicit Admission(size_t limit_bytes) : limit_(limit_bytes) {}

  // Queues a channel that will bring about `reserve` bytes once let in.
  void wait(Wake wake, size_t reserve);
  // A woken channel read its message (or ended): its reservation is over.
  void release(size_t reserve);
  // Wakes waiting channels, first come first, while `queued_bytes` (what the writer holds)
  // plus the reservations stays under the limit. At least one is let in when nothing is
  // queued or reserved, however large its reservation: the limit slows, never stops.
  void let_in(size_t queued_bytes);

  // Drops the waiting ones unwoken (the manager stops: before its io_context goes).
  void clear() { waiting_.clear(); }

  // Counts `bytes` of batches a waiting channel keeps until its turn; false (nothing
  // counted) when that would pass the limit.
  bool hold(size_t bytes);
  void unhold(size_t bytes);

  size_t waiting() const { return waiting_.size(); }
  size_t reserved() const { return reserved_; }
  size_t held() const { return held_; }

 private:
  struct Waiting {
    Wake wake;
    size_t reserve;
  };
  size_t limit_;
  size_t reserved_ = 0;
  size_t held_ = 0;
  std::deque<Waiting> waiting_;
};

}  // namespace mamori::manager
