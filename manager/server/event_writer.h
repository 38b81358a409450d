#pragma once
// Stores the agents' event batches on a thread of its own, through a Store (a database
// connection) of its own: the io thread decodes a batch, hands it here and goes on
// reading the other channels; the writer takes everything queued, stores it in ONE
// transaction (Store::store_batches: one fsync, or one round trip, for all of it) and
// hands each batch's result back to the io thread, which then acks. While a group is
// written the next one gathers, so the busier the manager, the larger the groups and the
// fewer the commits per event.
//
// last_seen: channels note each message here (note_seen); the marks go with the next
// group, or on their own within kSeenFlush: one write per second at most, whatever the
// number of agents, instead of one per agent.
//
// Back-pressure is the caller's: queued() says how much waits (agent_channel.h stops
// reading a channel past its limits, which slows that agent, never its guard).
//
// Threads: submit(), note_seen() and queued() from the io thread (any thread, in
// fact); each Done runs where `post` puts it (the io thread). The writer thread owns the
// Store. mu_ guards what the two share.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/base/mutex.h"
#include "core/base/result.h"
#include "manager/db/store.h"

namespace mamori::manager {

class EventWriter {
 public:
  static constexpr std::chrono::seconds kSeenFlush{1};

  using Done = std::function<void(Result<InsertResult>)>;
  using Poster = std::function<void(std::function<void()>)>;
  // `now_ns` stamps received_at (called on the writer thread); `post` runs a Done on the
  // caller's thread; `on_error` (writer thread) hears of a failed transaction.
  EventWriter(std::unique_ptr<Store> store, std::function<int64_t()> now_ns, Poster post,
              std::function<void(const Error&)> on_error);
  // Writes what is queued (each Done still posted), then joins.
  ~EventWriter();

  void submit(std::string agent_key, EventBatch events, Done done) MAMORI_EXCLUDES(mu_);
  void note_seen(const std::string& agent_key, int64_t at_ns) MAMORI_EXCLUDES(mu_);
  // Handed over and not yet stored (queued or being written): events, and the memory
  // they hold (batch_bytes).
  struct Queued {
    size_t events = 0;
    size_t bytes = 0;
  };
  Queued queued() MAMORI_EXCLUDES(mu_);
  // What a batch holds in memory while it waits: its texts and their row structures.
  static size_t batch_bytes(const EventBatch& b);
  // Groups committed so far (for tests and figures).
  uint64_t commits() MAMORI_EXCLUDES(mu_);

 private:
  struct Pending {
    std::string agent_key;
    EventBatch events;
    Done done;
    size_t bytes = 0;  // batch_bytes(events), counted in at submit, out after the write
  };
  void run() MAMORI_EXCLUDES(mu_);
  // One group: its batches (maybe none) and the marks noted meanwhile.
  void write(std::vector<Pending>& group, std::vector<SeenMark>& seen) MAMORI_EXCLUDES(mu_);

  std::unique_ptr<Store> store_;  // the writer thread's only
  std::function<int64_t()> now_ns_;
  Poster post_;
  std::function<void(const Error&)> on_error_;

  Mutex mu_;
  CondVar wake_;
  std::vector<Pending> queue_ MAMORI_GUARDED_BY(mu_);
  std::unordered_map<std::string, int64_t> seen_ MAMORI_GUARDED_BY(mu_);
  Queued queued_ MAMORI_GUARDED_BY(mu_);
  uint64_t commits_ MAMORI_GUARDED_BY(mu_) = 0;
  bool stop_ MAMORI_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: starts once the members above exist
};

}  // namespace mamori::manager
