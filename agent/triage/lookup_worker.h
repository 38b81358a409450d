#pragma once
// The agent's VirusTotal look-ups (docs/scan.md, "Hash look-ups"; [lookup] configured):
// the SHA-256 of every file the guard quarantined or found tampered is queued in the
// persisted LookupQueue (STATE/lookup.json, core/scan/lookup.h) with the guard event's
// id, and asked on this worker's own thread within the queue's limits (per_minute,
// per_day, kept across restarts). Each verdict becomes a file-lookup event naming the
// guard's event in mamori.related_event, so it joins that incident. Only hashes leave
// the host, never a file.
//
// Nothing in the guard waits: observe() only copies a hash into a bounded inbox
// (kMaxInbox; past it counted in dropped()), and the network, the state file and its
// lock are this thread's. The queue file is opened (and its lock held) only while a
// round works, so `mamori scan --lookup` can run beside the agent and both spend one
// budget; while that holds the lock the inbox waits and the worker tries again after
// kLockRetry.
//
// Threads: observe(), submit() and dropped() from any thread; one worker thread of
// its own; publish and log are called from it.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/base/env.h"
#include "core/base/mutex.h"
#include "core/event/event.h"
#include "core/hash/sha256.h"
#include "core/scan/lookup.h"

namespace mamori::triage {

struct LookupWorkerOptions {
  std::string state_path;  // STATE/lookup.json
  scan::LookupLimits limits;
  // Makes the client on the worker's thread (VtClient holds a libcurl handle).
  std::function<Result<std::unique_ptr<scan::HashLookup>>()> make_client;
  // The file-lookup events (AsyncPublisher::publish, which any thread may call).
  std::function<void(std::vector<event::Event>&&)> publish;
  std::function<void(const std::string&)> log;
  // Where an event's link points: VirusTotal's page of the file.
  std::string link_base = "https://www.virustotal.com/gui/file/";
};

// The verdict on `sha256` as a file-lookup event following `related_event` ("" none).
event::Event lookup_event(const hash::Digest& sha256, const scan::CachedVerdict& v,
                          const std::string& related_event, bool cached,
                          const std::string& link_base, int64_t now_ns);

class LookupWorker {
 public:
  static constexpr size_t kMaxInbox = 4096;
  static constexpr std::chrono::seconds kLockRetry{5};
  // After an error that stops the look-ups (the key refused, the state file unwritable).
  static constexpr std::chrono::seconds kErrorRetry{600};

  // Starts the thread.
  LookupWorker(Env& env, LookupWorkerOptions options);
  // Stops after the request in progress; what waits in the inbox is written to the
  // queue first (one try), so it is asked after a restart.
  ~LookupWorker();
  LookupWorker(const LookupWorker&) = delete;
  LookupWorker& operator=(const LookupWorker&) = delete;

  // A guard event: the SHA-256 of a quarantined or tampered file (file-quarantined,
  // file-restored, file-replaced, file-changed, file-created with file.hash.sha256)
  // is submitted with the event's id; anything else is ignored.
  void observe(const event::Event& e) MAMORI_EXCLUDES(mu_);
  // False (counted) when the inbox is full.
  bool submit(const hash::Digest& sha256, std::string related_event) MAMORI_EXCLUDES(mu_);
  uint64_t dropped() const MAMORI_EXCLUDES(mu_);
  // Rounds the worker has run (the first at start: what waits in the queue from before).
  uint64_t rounds() const MAMORI_EXCLUDES(mu_);
  // Tests drive the clock. Blocks until what was submitted has been taken in and no
  // round runs; runs one round now, whatever is due, and waits for it.
  void wait_idle_for_test() MAMORI_EXCLUDES(mu_);
  void round_for_test() MAMORI_EXCLUDES(mu_);

 private:
  using Inbox = std::vector<std::pair<hash::Digest, std::string>>;
  void run() MAMORI_EXCLUDES(mu_);
  // Opens the queue, takes `inbox` in, asks what the limits allow, publishes the
  // verdicts. Returns when the next round is due (nullopt: when something comes in);
  // `inbox` is left holding what could not be taken in (the lock was busy).
  // With `ask` false (stopping), only takes the inbox in.
  std::optional<std::chrono::system_clock::time_point> round(Inbox& inbox, bool ask);

  Env& env_;
  LookupWorkerOptions options_;
  std::unique_ptr<scan::HashLookup> client_;  // the worker thread's
  std::string last_error_;                    // the worker thread's: said once
  mutable Mutex mu_;
  CondVar wake_;
  CondVar done_;                                // a round ended
  bool poked_ MAMORI_GUARDED_BY(mu_) = false;   // round_for_test()
  bool running_ MAMORI_GUARDED_BY(mu_) = true;  // a round runs (the first is due at start)
  Inbox inbox_ MAMORI_GUARDED_BY(mu_);
  uint64_t dropped_ MAMORI_GUARDED_BY(mu_) = 0;
  uint64_t rounds_ MAMORI_GUARDED_BY(mu_) = 0;
  bool stop_ MAMORI_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: started once everything above exists
};

}  // namespace mamori::triage
