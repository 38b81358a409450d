#include "core/outbox/outbox.h"

#include <unistd.h>

#include "core/fs/admin_files.h"

namespace mamori::outbox {

Result<Outbox> Outbox::open(Env& env, std::string path) {
  auto fd = MAMORI_TRY(fs::open_private_append(path));
  return Outbox(env, std::move(path), std::move(fd));
}

void Outbox::append(const event::Event& e) {
  std::string line = e.to_json_line();
  line += '\n';
  queued_bytes_ += line.size();
  queue_.push_back(std::move(line));
  while (queued_bytes_ > kMaxQueuedBytes && queue_.size() > 1) {
    queued_bytes_ -= queue_.front().size();
    queue_.pop_front();
    ++dropped_;
  }
}

Status Outbox::flush() {
  if (queue_.empty()) return ok();
  if (!fd_.valid()) fd_ = MAMORI_TRY(fs::open_private_append(path_));
  // Whole lines in writes of about kChunk bytes (O_APPEND keeps each write's lines
  // together for concurrent readers), then one sync for the lot. Lines leave the queue
  // only once synced, so a failure anywhere retries them all: a reader may then see a
  // line twice, never miss one (consumers deduplicate on event.id).
  constexpr size_t kChunk = 1 << 20;
  std::string chunk;
  auto write_chunk = [&]() -> Status {
    const auto* data = reinterpret_cast<const uint8_t*>(chunk.data());
    MAMORI_TRY(write_all(*env_, fd_.get(), {data, chunk.size()}, path_));
    chunk.clear();
    return ok();
  };
  for (const auto& line : queue_) {
    chunk += line;
    if (chunk.size() >= kChunk) MAMORI_TRY(write_chunk());
  }
  if (!chunk.empty()) MAMORI_TRY(write_chunk());
  if (::fdatasync(fd_.get()) != 0) return fail_errno("fdatasync", path_);
  written_ += queue_.size();
  queue_.clear();
  queued_bytes_ = 0;
  return ok();
}

Status Outbox::reopen() {
  fd_.reset();
  fd_ = MAMORI_TRY(fs::open_private_append(path_));
  return ok();
}

}  // namespace mamori::outbox
