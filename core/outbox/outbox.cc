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
  // One write per batch keeps lines whole for concurrent readers (O_APPEND).
  std::string batch;
  for (const auto& line : queue_) batch += line;
  const auto* data = reinterpret_cast<const uint8_t*>(batch.data());
  // A short write on a full disk leaves a partial line; readers skip a line without
  // its '\n', and the retry writes the batch whole after it.
  MAMORI_TRY(write_all(*env_, fd_.get(), {data, batch.size()}, path_));
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
