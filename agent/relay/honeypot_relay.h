#pragma once
// Brings the SSH honeypot's events into the agent's event log (docs/honeypot.md,
// "Relayed by the agent"). The honeypot (honeypot/) runs as its own unprivileged user and
// writes its own outbox; the agent follows it like a sink, from a cursor of its own
// (STATE/relay/honeypot.cursor, core/outbox/cursor.h's format: the agent never writes
// into the honeypot's directory), and publishes each event again as its own, so the
// sinks, events.jsonl and the manager get them.
//
// The honeypot is the most exposed process on the host, so its outbox is hostile input.
// A record is relayed only when it is one honeypot event: at most kMaxRecordBytes of JSON
// no deeper than 64 levels, an ssh-* action (or its outbox's outbox-dropped /
// events-dropped, marked mamori.dropped.outbox "honeypot"), an event id of the usual
// form, and only the fields docs/honeypot.md lists (any other is dropped). The agent stamps its own
// origin, the dataset and the severity (by action, whatever the record says), and the result must
// pass the field list (core/event/schema.h); anything else is counted and skipped. At most
// kMaxPerSecond records a second are read: a flooding honeypot falls behind within its own disk
// quota, it cannot flood the agent's outbox. Records the agent never saw (the honeypot's quota
// dropped them while the agent was down) show as a jump in the sequence: one sink-gap event
// (mamori.sink "honeypot") says how many.
//
// Decoy credentials: a login attempt whose user name or password is one planted in a
// decoy (STATE/decoys.json, core/decoy) was stolen from the site: on_credential is
// called (the agent's log watch links and bans: Logwatch::credential_used) and the login
// event names that link's event in mamori.related_event.
//
// Threads: a thread of its own; start(), stop() and stats() from the owner; publish and
// on_credential are called on the relay's thread.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/base/env.h"
#include "core/base/mutex.h"
#include "core/base/result.h"
#include "core/decoy/decoy.h"
#include "core/event/event.h"
#include "core/event/origin.h"
#include "core/outbox/reader.h"

namespace mamori::relay {

// A decoy's credential seen in a login attempt.
struct CredentialSeen {
  const decoy::Decoy* decoy;
  std::string ip;
  std::string user;
  std::string event_id;  // for the link's event: the login event names it
  int64_t time_ns;
};

struct RelayOptions {
  std::string outbox_dir;   // the honeypot's
  std::string cursor_path;  // STATE/relay/honeypot.cursor
  std::vector<decoy::Decoy> decoys;
  const event::Origin* origin = nullptr;  // for the field-list check; null: none (tests)
  std::function<void(std::vector<event::Event>&&)> publish;
  std::function<void(const CredentialSeen&)> on_credential;
  std::function<void(const std::string&)> log;
  int64_t poll_ms = 100;
};

struct RelayStats {
  uint64_t relayed = 0;
  uint64_t rejected = 0;  // records that were not a honeypot event
  uint64_t missed = 0;    // records gone before the agent read them
  uint64_t credentials = 0;
  uint64_t next_sequence = 0;
};

// One record's event as the agent relays it; the error says why it is refused.
// `now_ns` is used when the record's @timestamp is not of the usual form.
Result<event::Event> relayed_event(std::string_view payload, int64_t now_ns);

// The decoy whose credential `user` / `password` is (either one), or null.
const decoy::Decoy* decoy_credential(const std::vector<decoy::Decoy>& decoys, std::string_view user,
                                     std::string_view password);

class HoneypotRelay {
 public:
  static constexpr size_t kMaxRecordBytes = 64 * 1024;
  static constexpr size_t kMaxPerSecond = 2000;

  HoneypotRelay(Env& env, RelayOptions options);
  ~HoneypotRelay();  // stop()s
  void start();
  void stop();
  RelayStats stats() const;

 private:
  void run();
  bool read_some();  // false: nothing new
  void relay(const outbox::Record& r, std::vector<event::Event>& out);
  void save_cursor();
  event::Event gap_event(uint64_t first, uint64_t last) const;
  void say(const std::string& error);

  Env& env_;
  RelayOptions options_;
  outbox::SegmentReader reader_;
  uint64_t saved_ = 0;
  int64_t second_start_ms_ = 0;
  size_t this_second_ = 0;
  std::string last_error_;  // said in the daemon's log; "" once reading works again

  mutable Mutex mu_;
  CondVar wake_;
  bool stop_ MAMORI_GUARDED_BY(mu_) = false;
  RelayStats stats_ MAMORI_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace mamori::relay
