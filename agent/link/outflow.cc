#include "agent/link/outflow.h"

#include <algorithm>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/outbox/cursor.h"

namespace mamori::link {

std::string events_frame(const Batch& b, bool resent) {
  std::string msg;
  msg.reserve(b.events.size() + 64);
  msg = resent ? R"({"v":1,"type":"events","resent":true,"events":)"
               : R"({"v":1,"type":"events","events":)";
  msg += b.events;
  msg += '}';
  return msg;
}

Outflow::Outflow(Env& env, OutflowOptions options)
    : env_(env), o_(std::move(options)), reader_(o_.outbox_dir) {}

Status Outflow::open() {
  auto saved = outbox::load_cursor(o_.outbox_dir, o_.cursor);
  if (!saved)
    committed_ = 0;  // damaged: from the oldest record kept (at least once)
  else if (*saved)
    committed_ = **saved;
  else
    committed_ = o_.start_sequence;
  MAMORI_TRY(save(/*force=*/true));  // registers it
  rewind();
  return ok();
}

Status Outflow::remove(const std::string& outbox_dir, const std::string& cursor) {
  return outbox::remove_cursor(outbox_dir, cursor);
}

void Outflow::rewind() {
  in_flight_.clear();
  sent_ = committed_;
  reader_ = outbox::SegmentReader(o_.outbox_dir);
  reader_.seek(committed_);
}

Result<std::optional<Batch>> Outflow::next_batch() {
  if (in_flight_.size() >= o_.max_in_flight) return std::optional<Batch>{};
  std::vector<outbox::Record> records;
  const size_t n = MAMORI_TRY(reader_.read(records, o_.max_events, o_.max_bytes));
  if (n == 0) return std::optional<Batch>{};
  Batch b;
  std::vector<uint64_t> seqs;
  b.events.reserve(o_.max_bytes + 2);
  b.events.push_back('[');
  for (auto& r : records) {
    // The outbox wrote the record and its CRC held; an object is all the manager needs
    // to find (event.id, event.sequence), and it checks those itself.
    if (r.payload.empty() || r.payload.front() != '{' || !nlohmann::json::accept(r.payload)) {
      ++skipped_;
      continue;
    }
    if (b.count) b.events.push_back(',');
    b.events += r.payload;
    if (!b.count) b.first = r.seq;
    b.last = r.seq;
    ++b.count;
    seqs.push_back(r.seq);
  }
  b.events.push_back(']');
  sent_ = reader_.next();
  // A batch of skipped records only still has to be acknowledged past: send it empty
  // would be noise, so the cursor simply follows once everything before it is acked.
  if (!b.count) {
    if (in_flight_.empty()) committed_ = sent_;
    return std::optional<Batch>{};
  }
  in_flight_.push_back({sent_ - 1, std::move(seqs)});
  events_sent_ += b.count;
  return std::optional<Batch>(std::move(b));
}

bool Outflow::ack(uint64_t through) {
  if (through >= sent_) return false;
  if (through < committed_) return true;  // old news (an earlier batch's ack)
  while (!in_flight_.empty() && in_flight_.front().last <= through) {
    events_acked_ += in_flight_.front().seqs.size();
    in_flight_.pop_front();
  }
  // Part of a batch (the manager acks what it stored in order): counted once, here.
  if (!in_flight_.empty()) {
    auto& seqs = in_flight_.front().seqs;
    const auto end = std::upper_bound(seqs.begin(), seqs.end(), through);
    events_acked_ += static_cast<uint64_t>(end - seqs.begin());
    seqs.erase(seqs.begin(), end);
  }
  committed_ = in_flight_.empty() ? sent_ : through + 1;
  return true;
}

Status Outflow::save(bool force) {
  if (committed_ == saved_) return ok();
  const int64_t now_ms = env_.clock().monotonic_ns() / 1'000'000;
  if (!force && now_ms - saved_ms_ < o_.save_every_ms) return ok();
  MAMORI_TRY(outbox::save_cursor(env_, o_.outbox_dir, o_.cursor, committed_));
  saved_ = committed_;
  saved_ms_ = now_ms;
  return ok();
}

}  // namespace mamori::link
