#pragma once
// The real-time guard: given "something changed at PATH" (from a watcher, a start-up or
// scheduled verify, or an overflow rescan), compares PATH with the baseline and acts by
// the root's mode:
//   alert     report; change nothing
//   restore   put back content and metadata atomically (fs/atomic_replace), recreate
//             what was deleted, move files the baseline does not know out of the tree
//             into the evidence store (quarantine), unless allow_new lets them stay
//   preserve  as restore, and keep every tampered content in the evidence store
// Every detection and action becomes one ECS event in the outbox.
//
// Because each change is judged by comparing the path with the baseline, not by the
// event's kind, merged, duplicated or reordered events cannot change the outcome, and
// our own restores (which inotify reports) are no-ops.
//
// Storms: more than `storm_changes_per_second` changes in a second starts a storm: one
// tamper-storm event, then one summary per second naming every path, instead of an
// event per change; a path restored more than `path_restores_per_second` times in a
// second is summarised the same way. Nothing is skipped, only reported in bulk. Once a
// storm ends every root is rescanned (what the storm's races left), at most once per
// kStormVerifyEveryNs: an attacker who makes storm after storm cannot make verify after
// verify; a storm over sooner waits for that verify.
//
// Rescans after lost events (a queue overflow) and after a storm go in slices: the root's
// top-level names one after another, a large one directory by directory, about
// kRescanSliceEntries entries or kRescanSliceNs per handle() call, between reads of the
// watcher, so a tamper during a rescan of a million files waits for
// one slice, not for the whole root (~20 s of CPU), and the agent's loop still answers
// signals and its socket. Start-up, scheduled and resume verifies are whole (verify()).
// New files allow_new lets stay are low-severity: past `allowed_events_per_second`
// file-allowed events per root in one second (or in one verify), the rest are counted
// in one file-allowed-summary naming the first kMaxAllowedSummaryPaths, so an attacker's
// flood of uploads neither buries the security events nor fills the log.
// Events are handed to the publisher at flush(), and every kPublishEvery events in
// between (a verify that finds 100,000 changes does not hold them all in memory; the
// publisher may make the guard wait for its own write there, never inside a restore).
//
// Alert mode changes nothing, so a tampered path stays different from its baseline and
// every later event on it (modify, close-write, attrib, a scheduled verify) would find
// the same difference again. The guard remembers what it last reported for each path
// (a signature of the entry: type, mode, owner, size, mtime, ctime, hash if read) and
// reports again only when the entry differs from that; it forgets when the path matches
// its baseline again, and on every mode change or pause. A file still being written
// (`echo x > f` truncates, then writes) would show a passing state first: a realtime
// report of a regular file waits until its ctime has not moved for kQuietNs (at most
// kMaxHoldNs), so one write is one report.
//
// Threads: one owner (the agent's main thread). The restore path runs on it, with no
// queue hop.

#include <sys/stat.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "agent/guard/deploy_tree.h"
#include "agent/guard/inode_index.h"
#include "agent/guard/publisher.h"
#include "agent/guard/who.h"
#include "agent/triage/scan_worker.h"
#include "agent/watch/watcher.h"
#include "core/base/env.h"
#include "core/base/parallel.h"
#include "core/base/unique_fd.h"
#include "core/baseline/check.h"
#include "core/baseline/scan.h"
#include "core/baseline/state.h"
#include "core/config/config.h"
#include "core/event/event.h"
#include "core/evidence/evidence.h"
#include "core/fs/beneath.h"
#include "core/fs/glob.h"
#include "core/fs/upload_policy.h"
#include "core/scan/scanner.h"

namespace mamori::guard {

// Where an entry is now: its directory opened once beneath the root, its name there and
// its lstat, shared by every step of one reconcile.
struct Place {
  std::optional<fs::Parent> parent;  // none for the root itself
  int dir_fd = -1;                   // the parent's fd, or the root's for the root itself
  std::string name;                  // "" for the root itself
  std::optional<struct stat> st;     // none: nothing by that name now

  // Opens `rel`'s directory beneath the root and stats the entry; fails when the
  // directory cannot be reached (an ancestor is gone or is not a directory).
  Status look(int root_fd, const std::string& rel);
  // Stats the entry again (after a restore replaced it).
  Status refresh(std::string_view rel);
};

// Why a path is being looked at; carried into the events (mamori.trigger).
enum class Trigger {
  kRealtime,
  kStartup,
  kScheduled,
  kOverflow,
  kResume,
  kRetry,
  kStormOver,
  kCommand  // an operator's restore (the restore control command)
};
std::string_view trigger_name(Trigger t);

struct GuardedRoot {
  std::string path;        // as configured
  UniqueFd fd;             // the root directory
  int64_t catalog_id = 0;  // its baseline in the catalog
  config::Mode mode = config::Mode::kRestore;
  bool paused = false;  // a deploy is running: report, change nothing
  fs::PathMatcher exclude;
  fs::UploadPolicy uploads;  // allow_new, deny_new
};

struct Counters {
  uint64_t changes = 0;      // differences found
  uint64_t restored = 0;     // entries put back (content, metadata, recreated)
  uint64_t quarantined = 0;  // new entries moved out
  uint64_t evidence = 0;     // items kept
  uint64_t failures = 0;     // actions that failed
  uint64_t events = 0;       // events written
  uint64_t summarised = 0;   // changes reported inside a summary instead of alone
  uint64_t storms = 0;
  uint64_t verifies = 0;
  uint64_t scans_skipped = 0;  // tampered contents not scanned: the scan queue was full
};

class Guard {
 public:
  // `evidence` may be null (nothing kept; quarantine then only removes).
  Guard(Env& env, baseline::State& state, evidence::EvidenceStore* evidence, Publisher& publisher,
        Executor& executor, const config::AgentConfig& config);

  size_t add_root(GuardedRoot root);
  size_t root_count() const { return roots_.size(); }
  const GuardedRoot& root(size_t i) const { return roots_[i]; }

  // A batch of changes from the watcher; who-data is read once per pid per batch.
  void handle(const std::vector<watch::Change>& changes);
  // Opens were lost (an overflow of the opens queue): every baselined file of the root is
  // asked whether a writer holds it, kOpenProbeSlice files per handle() call. The asking
  // opens each file, which queues an open event of the agent's own: all at once, a root
  // of more files than the queue holds (16,384) overflowed it again, and the agent asked
  // for ever, its restores waiting behind (a www-data user had only to open 17,000 files
  // once). In slices, the loop drains the queue between them and handles what came.
  static constexpr size_t kOpenProbeSlice = 1024;
  // And at most about this long (checked every 64 files): a handle() call that probes
  // is one a restore may wait behind.
  static constexpr int64_t kOpenProbeSliceNs = 2'000'000;
  // Files still to ask.
  bool probing() const { return !probe_.empty(); }
  // A rescan in slices is under way (after an overflow, or once a storm ended): the
  // entries of the baseline not yet compared keep their last state in the inode index,
  // and the real-time path handles their changes meanwhile as usual.
  bool rescanning() const { return !rescans_.empty(); }
  bool rescanning(size_t root) const { return rescans_.contains(root); }
  // Work left in slices: the loop calls handle() again without waiting while it is true.
  bool busy() const { return probing() || rescanning(); }
  // A rescan's slice: parts of the root (a top-level name, or in a large one a
  // directory's subtree or its own files) are compared until this many entries were
  // looked at, or this long went by (checked between parts); at least one a slice.
  static constexpr uint64_t kRescanSliceEntries = 1024;
  static constexpr int64_t kRescanSliceNs = 5'000'000;
  // Compares a whole root with the baseline and handles every difference. A new entry
  // allow_new lets stay is reported once, not at every verify: it is left out when its
  // ctime (which no user can set back) is older than what was already reported. At
  // start-up that is set_allowed_reported_until() (what the previous run saw); later it
  // is the verify's own start, since the watcher has reported everything before it; after
  // an overflow (events lost) the previous verify's start. A rescan in slices of the
  // root still under way is done by this verify (and dropped).
  Status verify(size_t root, Trigger trigger);
  // Every allowed new entry whose ctime is older than `ns` was reported by a previous run.
  void set_allowed_reported_until(int64_t ns) { allowed_reported_until_ns_ = ns; }
  // Once a second (and at shutdown): retries of what failed (a race with the attacker
  // that lost), then storm and repeat summaries; every root verified once a storm ends.
  void tick();
  // Hands the events and deferred restores so far to the publisher.
  Status flush();

  // A decoy file (docs/decoys.md) of root `root`: an open of it by any process but
  // mamori and the web server (whose serving it the access log judges) is reported
  // (decoy-opened), once a minute per file and process. fanotify only: inotify names
  // no opener.
  void add_decoy(size_t root, const std::string& rel, const std::string& token);
  // YARA triage (core/scan; docs/scan.md, "What is scanned when"): a new regular file
  // allow_new would let stay is scanned first (on this thread: the verdict decides) and
  // quarantined if a rule matches. Everything else is scanned off this thread, on one of
  // the guard's own (triage::ScanWorker), once its writer is quiet: each quarantined
  // regular file (a directory's too) once it is out of the tree and kept, the tampered
  // content of a baselined file after its restore (restore mode) or once kept
  // (preserve), or the file itself when alert mode reports a change or a new file. The
  // event waits for the verdict, which is added to the evidence item too. The rules that
  // matched go into the event (mamori.scan.rules). Null: no triage. The scanner
  // outlives the guard.
  // `max_queued`: files the scan worker holds; past it a file is not scanned and its
  // event says so (mamori.scan.skipped).
  void set_scanner(scan::Scanner* scanner, size_t max_queued = triage::ScanWorker::kMaxQueued);
  // Told on this thread the moment a path was put back or moved out of a root
  // (file-restored, file-replaced, file-quarantined; a whole tree when `rel` is a
  // directory), before its event waits for evidence or a scan: PHP's opcache
  // (agent/opcache) must drop the compiled code of it at once. `event_id` is the event's
  // that will report it, "" when a storm or repeat summary reports it instead. Must
  // only queue: it runs inside the guard's handling of a change.
  using ActedHook = std::function<void(const std::string& root, const std::string& rel,
                                       std::string_view action, const std::string& event_id)>;
  void set_acted_hook(ActedHook hook) { acted_hook_ = std::move(hook); }

  void set_mode(size_t root, config::Mode mode);
  void set_paused(size_t root, bool paused);
  // Told whenever a root starts or stops being put back (restore or preserve mode, not
  // paused by a deploy): the open gate (agent/gate) refuses tampered content only then.
  using EnforcingHook = std::function<void(size_t root, bool enforcing)>;
  void set_enforcing_hook(EnforcingHook hook) { enforcing_hook_ = std::move(hook); }

  // Deploys (docs/agent.md). While a deploy runs, a real-time change to a paused root
  // whose writer is the deploy's process tree is recorded as the deploy's (reported,
  // left alone); any other writer's is a tamper during the deploy: handled by the
  // root's mode and reported with mamori.deploy.writer = "foreign". Without a tree
  // (begin_deploy not called: a backend that names no writer) a pause only records.
  Status begin_deploy(pid_t root_pid);
  void end_deploy();
  const DeployTree* deploy() const { return deploy_.get(); }
  // The paths each writer changed during the deploy, by root index; false in `complete`
  // when more than kMaxDeployPaths were changed (then the list is not the whole set).
  struct DeployPaths {
    std::map<size_t, std::set<std::string>> deploy, foreign;
    bool complete = true;
  };
  static constexpr size_t kMaxDeployPaths = 100000;
  const DeployPaths& deploy_paths() const { return deploy_paths_; }
  // Emits an event of the agent's own (start, stop, overflow, mode change...).
  void emit(event::Event e);

  // An operator's restore of `rel` ("" the whole root) and everything beneath it: what
  // preserve mode would do to it now, whatever the root's mode, so what it replaces is
  // kept as evidence. Refused (EBUSY) while a deploy pauses the root.
  Status restore_now(size_t root, const std::string& rel);
  // The agent itself has just put a new baseline's content at `rel` (the accept command):
  // the inode there is the baseline's, and the events of that write are its own.
  void adopt(size_t root, const std::string& rel) { note_inode(root, rel); }
  // How the guard walks a root (its excludes, its executor): what `mamori accept` records
  // must be what the guard compares.
  baseline::ScanContext scan_context(size_t root) const { return scan_context(roots_[root]); }

  // Evidence is taken once the tampered inode has been quiet for kQuietNs, since a writer
  // that still holds it open goes on writing into it after the restore (or after it was
  // unlinked into quarantine); at the latest kMaxHoldNs after the restore. The event that
  // names the evidence waits with it; the restore itself never does.
  static constexpr int64_t kQuietNs = 50'000'000;
  static constexpr int64_t kMaxHoldNs = 5'000'000'000;
  static constexpr size_t kMaxCaptures = 4096;  // open descriptors held; past it, take at once
  // Takes the evidence that is due (all of it with `all`) and emits the events that
  // waited for it.
  void capture_due(bool all = false);
  // When capture_due() next has work (clock ns); nullopt when nothing waits. While YARA
  // verdicts are outstanding, within kScanPollNs.
  std::optional<int64_t> next_capture_ns() const;
  static constexpr int64_t kScanPollNs = 2'000'000;

  const Counters& counters() const { return counters_; }
  bool in_storm() const { return storm_active_; }

 private:
  struct Act;  // what one reconcile decided and did, for its event
  // With `follow_links`, the other names of a tampered hard-linked file are looked at too.
  void reconcile(size_t root, std::string rel, const evidence::Who& who, Trigger trigger,
                 bool follow_links = true);
  void look_inside(size_t root, const std::string& rel, const evidence::Who& who, Trigger trigger,
                   std::unordered_set<std::string>& seen);
  Status reconcile_entry(GuardedRoot& r, const std::string& rel, Place& at,
                         const evidence::Who& who, Act& act);
  // Moves `rel` (a whole tree for a directory, however deep) out of the tree. A regular
  // file with other names that are baselined has those names queued in act.aliases: the
  // inode itself must leave the tree, not just this one name (see reconcile()).
  Status quarantine(GuardedRoot& r, const std::string& rel, const evidence::Who& who, Act& act);
  // The keepable content of the entry `name` in `dir` (its bytes, a symlink's target).
  UniqueFd content_of(int dir, const std::string& name, const struct stat& st,
                      const std::string& rel);
  // Records in the inode index where the baselined regular files of `prefix` ("" the
  // whole root) are now. Appends to `shared` the ones held open for writing (they get a
  // fresh copy), and to `linked` the ones of more than one link: whether one has a name
  // outside the baseline is known only once every name is indexed (judge_linked()).
  // Nothing is kept for the others: a million files are not listed in memory.
  Status index_prefix(size_t root, std::string_view prefix, std::vector<std::string>& shared,
                      std::vector<std::string>& linked);
  // Of `linked`, appends to `shared` the files whose inode has a name outside the
  // baseline (more links than indexed names) or is held open for writing.
  void judge_linked(size_t root, std::vector<std::string> linked, std::vector<std::string>& shared);
  // Acts on what a comparison found, as a verify does: `shared` are replaced even if
  // they match; new entries allow_new lets stay are left out when their ctime is older
  // than `reported_until`.
  void act_on(size_t root, baseline::CheckReport report, std::vector<std::string> shared,
              Trigger trigger, int64_t reported_until);
  // The ctime before which allowed new entries were reported already (see verify()).
  int64_t allowed_cutoff(size_t root, Trigger trigger, int64_t started) const;
  // A rescan in slices, by root.
  struct Rescan {
    Trigger trigger = Trigger::kOverflow;
    int64_t started_ns = 0;         // what it covers: every change since (last_verify_ns_)
    int64_t reported_until_ns = 0;  // allowed_cutoff() at its start
    bool relist = true;             // the root's names are to be read first
    // What is still to compare, in order: top-level names ("" the root's own entry) at
    // first; one whose baseline holds more than kRescanSliceEntries entries is split into
    // its directories when its turn comes (plan_rescan()).
    struct Unit {
      std::string path;
      bool whole = true;     // false: the directory's own entry only (its children follow)
      bool planned = false;  // true: not to be split again
    };
    std::deque<Unit> names;
    std::vector<std::string> linked;  // index_prefix()'s, judged at the end
    bool again = false;               // events were lost during it: another pass follows
  };
  // Starts a rescan of `root`. During one, events lost again (maybe in what it compared
  // already) queue one more pass after it: never more than one, and each pass ends, so
  // an overflow at every slice cannot keep a pass from finishing.
  void start_rescan(size_t root, Trigger trigger);
  // Works through the rescans for one slice.
  void rescan_slice();
  // One step of `s`: (re)lists its names, compares one, or says it is done (true).
  Result<bool> rescan_step(size_t root, Rescan& s, uint64_t& entries);
  // The units that compare `top` and everything beneath it, none of more than about
  // kRescanSliceEntries baselined entries (but a directory's own files, each one unit):
  // {top} when it is that small. Reads `top`'s part of the catalog once.
  Result<std::vector<Rescan::Unit>> plan_rescan(size_t root, const std::string& top,
                                                uint64_t& entries);
  std::map<size_t, Rescan> rescans_;
  // Records the inode now at `rel` (just restored) in the index.
  void note_inode(size_t root, const std::string& rel);
  // fs::handle_key() of `rel`; "" when it cannot be had.
  std::string handle_of(size_t root, const std::string& rel);
  // The same of `name` in the directory `fd` (or of `fd` itself: "", AT_EMPTY_PATH),
  // with no lookup of the directory and the root's fsid read once.
  std::string handle_at(size_t root, int fd, const char* name, int flags);
  std::map<size_t, std::optional<fsid_t>> fsids_;  // by root
  // Who-data of the batch handle() is working on: `who` names an entry of it whose /proc
  // reads are still to do (only its pid is known): read now. False when nothing was read.
  bool read_who(const evidence::Who& who);
  std::unordered_map<pid_t, evidence::Who>* batch_who_ = nullptr;
  std::unordered_set<pid_t> who_unread_;
  // The directory of `rel` (or `rel` itself) that lies deeper than a walk goes
  // (fs::kMaxWalkDepth); nullopt when `rel` is not that deep.
  static std::optional<std::string> too_deep_prefix(const std::string& rel);
  Status restore_subtree(GuardedRoot& r, const std::string& rel, const evidence::Who& who,
                         Act& act);
  // Queues `fd` (the tampered or quarantined inode) for capture into the evidence store.
  // With `scan`, the content is scanned once kept (preserve mode's tampered files).
  void defer_capture(GuardedRoot& r, const std::string& rel, UniqueFd fd, const std::string& reason,
                     const evidence::Who& who, const baseline::Entry* want, Act& act,
                     bool scan = false);
  void report(GuardedRoot& r, const std::string& rel, const evidence::Who& who, Trigger trigger,
              Act& act);
  bool allowed_new(const GuardedRoot& r, const std::string& rel) const;
  // Emits the file-allowed-summary of each root whose window summarised any, and starts
  // a new window.
  void summarise_allowed();
  baseline::ScanContext scan_context(const GuardedRoot& r) const;

  Env& env_;
  baseline::State& state_;
  evidence::EvidenceStore* evidence_;
  Publisher& publisher_;
  std::vector<event::Event> pending_;  // events not yet published
  Executor& executor_;
  config::AgentConfig config_;
  std::vector<GuardedRoot> roots_;
  Counters counters_;
  UserNames users_;
  std::vector<Rewritten> rewritten_;  // restored since the last flush, to be made durable
  std::unique_ptr<DeployTree> deploy_;
  DeployPaths deploy_paths_;
  bool foreign_write_ = false;  // the change being handled is not the deploy's
  void decoy_opened(const InodeIndex::Name& n, pid_t pid,
                    std::unordered_map<pid_t, evidence::Who>& who);
  std::unordered_map<std::string, std::string> decoys_;  // path_key() -> token
  scan::Scanner* scanner_ = nullptr;
  ActedHook acted_hook_;
  EnforcingHook enforcing_hook_;
  void enforcing_changed(size_t root);
  // The rules that match the regular file `fd` (`rel` names it), or none; a failed
  // scan is counted and reported in the event, never fatal.
  std::vector<std::string> scan_rules(int fd, const std::string& rel, Act& act);
  std::unordered_map<std::string, int64_t> decoy_reported_ns_;  // path_key + pid: when

  // Rate accounting for the current one-second window.
  uint64_t window_changes_ = 0;
  std::unordered_map<std::string, uint64_t> path_counts_;      // root and path -> changes
  std::set<std::pair<size_t, std::string>> summarised_paths_;  // reported in bulk this window
  std::map<size_t, uint64_t> summarised_changes_;              // by root: changes reported in bulk
  bool storm_active_ = false;
  // file-allowed in the current window (a second of real time, or one verify), by root.
  struct AllowedWindow {
    uint64_t events = 0;      // file-allowed seen, alone or summarised
    uint64_t summarised = 0;  // past the limit: counted here
    // The distinct paths among them (a file being written raises several events), up to
    // kMaxAllowedWindowPaths; past it only counted.
    std::set<std::string> paths;
    bool paths_complete = true;
    Trigger trigger = Trigger::kRealtime;
  };
  static constexpr size_t kMaxAllowedSummaryPaths = 100;
  static constexpr size_t kMaxAllowedWindowPaths = 100000;
  std::map<size_t, AllowedWindow> allowed_;
  static constexpr size_t kPublishEvery = 1024;
  uint64_t storm_changes_ = 0;  // every change of the storm, its first second's included
  static constexpr int64_t kStormVerifyEveryNs = 10'000'000'000;
  bool storm_verify_due_ = false;
  std::optional<int64_t> storm_verified_ns_;  // when the last storm-over verify ran
  // Alert mode: by root and path, the signature of what was last reported. Bounded: when
  // full it is cleared, which can only repeat a report, never lose one.
  static constexpr size_t kMaxAlerted = 1 << 16;
  std::unordered_map<std::string, std::string> alerted_;
  // True when `act` on `rel` was reported already in this state (alert mode); records it.
  bool already_alerted(const GuardedRoot& r, const std::string& rel, const Place& at,
                       const Act& act);
  // Alert mode: realtime reports waiting for their file to go quiet, by root and path.
  struct Settling {
    size_t root = 0;
    std::string rel;
    evidence::Who who;
    int64_t since_ns = 0;   // first seen (reported at the latest kMaxHoldNs after)
    int64_t ctime = 0;      // the inode's ctime at the last look
    int64_t looked_ns = 0;  // when ctime last changed
  };
  static constexpr size_t kMaxSettling = 4096;  // past it, reported at once
  std::unordered_map<std::string, Settling> settling_;
  bool settle_all_ = false;  // capture_due(all): report what waits, quiet or not
  // True when the report of `act` must wait for the file to go quiet (alert mode).
  bool still_settling(size_t root, const std::string& rel, const Place& at,
                      const evidence::Who& who, Trigger trigger, const Act& act);
  // Regular files we just put back, by root and path: (inode, ctime) so the events our
  // own restore raises (inotify) are recognised without hashing. Bounded.
  std::unordered_map<std::string, std::pair<uint64_t, int64_t>> fresh_;
  // Where the baselined regular files are now (inode_index.h).
  InodeIndex index_;
  // Inodes that held baselined code until a restore replaced them, by file handle (which
  // carries the generation: a freed and reused inode number does not match), with the
  // names they had: another name of one (a hard link made just before, whose open was
  // handled first) is still a hard link to baselined code. Bounded like fresh_.
  std::unordered_map<std::string, std::vector<InodeIndex::Name>> replaced_;
  // Baselined files (by path_key) to be replaced by a fresh copy at their next reconcile
  // even when their bytes and metadata match: whoever opened one for writing (or holds
  // it through another name) may still write into that inode, through a descriptor or a
  // shared writable mapping, without another event. A fresh inode leaves those writes
  // in a detached one. Filled and drained within one batch.
  std::unordered_set<std::string> detach_;
  // The files an overflow of opens left to ask, by root; the next overflow starts over.
  std::map<size_t, std::vector<std::string>> probe_;

  struct Capture {
    UniqueFd fd;
    evidence::Item item;  // everything but what add() fills in
    int64_t taken_ns = 0;
    // A baselined inode replaced while its bytes still matched (detach_): once quiet it
    // is hashed, and if its holder wrote into it the change's event becomes a
    // file-restored with that content (kept as evidence when `keep`).
    bool detached = false;
    bool keep = false;
    uint64_t baseline_size = 0;  // a detached inode of another size was written into
    bool scan = false;           // YARA on it once kept (scan_later)
    bool evidence = true;        // false: only scanned (restore mode keeps no copy)
  };
  // Scans `fd` (`rel`'s tampered content) on the scan worker; `act_event`'s event waits
  // for the verdict, which also goes into evidence item `evidence_id`. A full queue:
  // not scanned, said in the event (mamori.scan.skipped).
  void scan_later(const std::string& event_id, UniqueFd fd, const std::string& rel,
                  std::optional<int64_t> evidence_id);
  // Applies the verdicts the scan worker finished.
  void take_scans();
  std::unique_ptr<triage::ScanWorker> scan_worker_;
  struct ScanWait {
    std::string event_id;
    std::optional<int64_t> evidence_id;
  };
  std::unordered_map<uint64_t, ScanWait> scans_;  // by job id: submitted, not yet applied
  uint64_t next_scan_id_ = 0;
  // A capture of `fd` for `act`'s event, not yet queued.
  Capture new_capture(const GuardedRoot& r, const std::string& rel, UniqueFd fd,
                      const std::string& reason, const evidence::Who& who,
                      const baseline::Entry* want, const Act& act) const;
  // Queues `c` (its event waits for it); past kMaxCaptures open descriptors the oldest
  // are taken at once.
  void queue_capture(Capture c, Act& act);
  // Takes one capture off the queue: evidence, or a detached inode's verdict.
  void finish(Capture& c);
  // Adds one capture to the evidence store; nullopt when that failed (an event says why).
  std::optional<evidence::Item> capture(Capture& c);
  // A change's evidence in progress, by the change's event id: the event (once
  // report() made it; none when it went into a summary) is emitted when nothing waits.
  struct Held {
    std::optional<event::Event> event;
    bool summarised = false;
    size_t waiting = 0;
    std::vector<int64_t> ids;
    std::optional<hash::Digest> sha256;   // of the tampered content, once read
    bool written = false;                 // a detached inode was written into after it was replaced
    bool truncated = false;               // some item kept only evidence_max_file_mb
    std::vector<std::string> scan_rules;  // what scan_later() found, all items together
    bool scan_truncated = false;
    bool scan_skipped = false;
  };
  // Records a finished capture (item null when it failed) and emits the event if done.
  void captured(const std::string& event_id, const std::optional<evidence::Item>& item,
                const std::string& reason);
  void release(std::unordered_map<std::string, Held>::iterator h);
  // Paths whose last handling failed, with the attempts so far: tried again each tick,
  // kMaxRetries times, so a lost race does not wait for the next scheduled verify.
  static constexpr int kMaxRetries = 5;
  static constexpr size_t kMaxRetryPaths = 10000;
  std::map<std::pair<size_t, std::string>, int> retries_;
  void retry_later(size_t root, const std::string& rel, Trigger trigger);

  int64_t allowed_reported_until_ns_ = 0;
  std::unordered_map<size_t, int64_t> last_verify_ns_;  // by root: when its last verify began

  std::deque<Capture> captures_;
  std::unordered_map<std::string, Held> held_;  // by event id
};

}  // namespace mamori::guard
