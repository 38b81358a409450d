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
// Captured files ([downloads] fetch = true in the honeypot): a relayed
// ssh-download-attempted that says fetched and names a SHA-256 gets the file scanned with
// YARA on the triage scan worker's thread (agent/triage/scan_worker.h), never on the
// relay's: the relay opens DOWNLOADS/<64 hex digits> only (the name is checked, no path
// of the record's is ever used), beneath the spool with no symlink on the way
// (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, O_NOFOLLOW, O_NONBLOCK), a regular file
// with one link owned by the downloads directory's owner (so no hard link to a file of
// someone else's), at most kMaxCaptureBytes. The verdict is an ssh-download-scanned event
// (mamori.scan.rules, mamori.related_event = the download event), and the SHA-256 of a
// whole file goes to on_captured (the VirusTotal look-up, [lookup]).
//
// Threads: a thread of its own; start(), stop() and stats() from the owner; publish,
// on_credential and on_captured are called on the relay's thread.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/triage/scan_worker.h"
#include "core/base/env.h"
#include "core/base/mutex.h"
#include "core/base/result.h"
#include "core/decoy/decoy.h"
#include "core/event/event.h"
#include "core/event/origin.h"
#include "core/hash/sha256.h"
#include "core/outbox/reader.h"
#include "core/scan/scanner.h"

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
  // Captured files: the honeypot's STATE/downloads (honeypot_downloads_dir()) and the
  // agent's YARA scanner ([agent] yara); either missing: no scans.
  std::string downloads_dir;
  scan::Scanner* scanner = nullptr;
  // A captured file's SHA-256 (a whole file, scanned) and its download event's id.
  std::function<void(const hash::Digest&, const std::string&)> on_captured;
};

// Where the honeypot keeps captured files, from its outbox's path: the outbox is
// STATE/outbox, the captures STATE/downloads (docs/honeypot.md). "" when the outbox is
// not named so (an outbox_dir elsewhere: no scans).
std::string honeypot_downloads_dir(const std::string& outbox_dir);

struct RelayStats {
  uint64_t relayed = 0;
  uint64_t rejected = 0;  // records that were not a honeypot event
  uint64_t missed = 0;    // records gone before the agent read them
  uint64_t credentials = 0;
  uint64_t next_sequence = 0;
  uint64_t scanned = 0;      // captured files scanned
  uint64_t not_scanned = 0;  // captured files refused (not there, not ours) or queue full
};

// One record's event as the agent relays it; the error says why it is refused.
// `now_ns` is used when the record's @timestamp is not of the usual form.
Result<event::Event> relayed_event(std::string_view payload, int64_t now_ns);

// The decoy whose credential `user` / `password` is (either one), or null.
const decoy::Decoy* decoy_credential(const std::vector<decoy::Decoy>& decoys, std::string_view user,
                                     std::string_view password);

// Opens DOWNLOADS/<sha256> for a scan as the class comment says; the error says why not.
Result<UniqueFd> open_capture(const std::string& downloads_dir, std::string_view sha256);

class HoneypotRelay {
 public:
  static constexpr size_t kMaxRecordBytes = 64 * 1024;
  static constexpr size_t kMaxPerSecond = 2000;
  // The honeypot's max_kb is at most 1 GiB; the scan reads [agent] yara_max_kb of it.
  static constexpr uint64_t kMaxCaptureBytes = uint64_t{1} << 30;
  // Captured files waiting for their scan; past it one is reported not scanned.
  static constexpr size_t kMaxScansQueued = 64;

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
  void scan_capture(const event::Event& download);
  void take_scans();
  void say(const std::string& error);

  Env& env_;
  RelayOptions options_;
  outbox::SegmentReader reader_;
  uint64_t saved_ = 0;
  int64_t second_start_ms_ = 0;
  size_t this_second_ = 0;
  std::string last_error_;  // said in the daemon's log; "" once reading works again
  // The relay thread's: the download events whose files are being scanned, by job id.
  std::unique_ptr<triage::ScanWorker> scans_;
  std::map<uint64_t, event::Event> scanning_;
  uint64_t next_scan_ = 1;

  mutable Mutex mu_;
  CondVar wake_;
  bool stop_ MAMORI_GUARDED_BY(mu_) = false;
  RelayStats stats_ MAMORI_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace mamori::relay
