#include "core/outbox/outbox.h"

#include <sys/stat.h>
#include <unistd.h>

#include <functional>
#include <utility>

#include "core/fs/admin_files.h"
#include "core/proto/actions.h"

namespace mamori::outbox {
namespace {

// Calls `f` on each line of both queues in append order.
template <typename Line>
void in_order(const std::deque<Line>& a, const std::deque<Line>& b,
              const std::function<void(const Line&)>& f) {
  auto i = a.begin(), j = b.begin();
  while (i != a.end() || j != b.end()) {
    if (j == b.end() || (i != a.end() && i->seq < j->seq))
      f(*i++);
    else
      f(*j++);
  }
}

}  // namespace

Result<Outbox> Outbox::open(Env& env, std::string path, Limits limits) {
  auto fd = MAMORI_TRY(fs::open_private_append(path));
  return Outbox(env, std::move(path), std::move(fd), limits);
}

void Outbox::append(const event::Event& e) {
  std::string line = e.to_json_line();
  line += '\n';
  const bool security = e.severity() >= event::Severity::kNotice;
  (security ? security_bytes_ : low_bytes_) += line.size();
  (security ? security_ : low_).push_back({next_seq_++, std::move(line), e.action()});
  // While writes work the queue never grows past spill_bytes; after a failure only the
  // caller's flush() retries, so a dead disk costs one failed write per batch, not one
  // per event.
  if (!failing_ && queued_bytes() >= limits_.spill_bytes) (void)flush();
  while (low_bytes_ > limits_.max_low_bytes && !low_.empty()) drop_oldest(low_, low_bytes_, false);
  while (security_bytes_ > limits_.max_security_bytes && !security_.empty())
    drop_oldest(security_, security_bytes_, true);
}

void Outbox::drop_oldest(std::deque<Line>& q, uint64_t& bytes, bool security) {
  bytes -= q.front().text.size();
  if (unreported_low_ + unreported_security_ == 0) first_unreported_ns_ = env_->clock().now_ns();
  ++unreported_by_action_[q.front().action];
  ++(security ? unreported_security_ : unreported_low_);
  ++(security ? dropped_security_ : dropped_low_);
  q.pop_front();
}

void Outbox::queue_drop_report() {
  if (unreported_low_ + unreported_security_ == 0) return;
  const uint64_t low = std::exchange(unreported_low_, 0);
  const uint64_t security = std::exchange(unreported_security_, 0);
  nlohmann::json by_action = nlohmann::json::object();
  for (const auto& [action, n] : std::exchange(unreported_by_action_, {})) by_action[action] = n;
  event::Event e(proto::action::kEventsDropped,
                 security ? event::Severity::kCritical : event::Severity::kWarning,
                 env_->clock().now_ns());
  e.set("event.category", nlohmann::json::array({"process"}));
  e.set("mamori.dropped.low", low);
  e.set("mamori.dropped.security", security);
  e.set("mamori.dropped.by_action", by_action);
  e.set("mamori.dropped.since_ns", first_unreported_ns_);
  e.message(std::to_string(low + security) + " event(s) dropped (" + std::to_string(security) +
            " security) while the event log could not be written; counted in mamori status");
  std::string line = e.to_json_line();
  line += '\n';
  security_bytes_ += line.size();
  security_.push_back({next_seq_++, std::move(line), e.action()});
}

Status Outbox::write_queued() {
  struct stat before {};
  if (::fstat(fd_.get(), &before) != 0) return fail_errno("fstat", path_);
  // Whole lines in writes of about kChunk bytes (O_APPEND keeps each write's lines
  // together for concurrent readers).
  constexpr size_t kChunk = 1 << 20;
  std::string chunk;
  Status st;
  in_order<Line>(low_, security_, [&](const Line& l) {
    if (!st) return;
    chunk += l.text;
    if (chunk.size() < kChunk) return;
    st = write_all(*env_, fd_.get(), {reinterpret_cast<const uint8_t*>(chunk.data()), chunk.size()},
                   path_);
    chunk.clear();
  });
  if (st && !chunk.empty())
    st = write_all(*env_, fd_.get(), {reinterpret_cast<const uint8_t*>(chunk.data()), chunk.size()},
                   path_);
  if (st) return ok();
  // Cut short (ENOSPC half-way): cut the file back to the last whole line we wrote, so
  // the next write does not glue a line onto a torn one. Whole lines stay (a reader may
  // have read them: its cursor must not end up past the end); they are written again
  // with the rest, and readers deduplicate on event.id.
  struct stat after {};
  if (::fstat(fd_.get(), &after) == 0 && after.st_size > before.st_size) {
    const uint64_t landed = static_cast<uint64_t>(after.st_size - before.st_size);
    uint64_t whole = 0;
    bool done = false;
    in_order<Line>(low_, security_, [&](const Line& l) {
      if (done) return;
      if (whole + l.text.size() > landed)
        done = true;
      else
        whole += l.text.size();
    });
    if (whole < landed) (void)::ftruncate(fd_.get(), before.st_size + static_cast<off_t>(whole));
  }
  return st;
}

Status Outbox::flush() {
  queue_drop_report();
  if (low_.empty() && security_.empty()) return ok();
  auto attempt = [&]() -> Status {
    if (!fd_.valid()) fd_ = MAMORI_TRY(fs::open_private_append(path_));
    MAMORI_TRY(write_queued());
    // Lines leave the queue only once synced, so a failure anywhere retries them all: a
    // reader may then see a line twice, never miss one.
    if (::fdatasync(fd_.get()) != 0) return fail_errno("fdatasync", path_);
    return ok();
  };
  if (auto st = attempt(); !st) {
    failing_ = true;
    return st;
  }
  failing_ = false;
  written_ += queued();
  low_.clear();
  security_.clear();
  low_bytes_ = security_bytes_ = 0;
  return ok();
}

Status Outbox::reopen() {
  fd_.reset();
  fd_ = MAMORI_TRY(fs::open_private_append(path_));
  return ok();
}

}  // namespace mamori::outbox
