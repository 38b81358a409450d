#include "agent/guard/guard.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <iterator>
#include <unordered_set>
#include <utility>

#include <fmt/format.h>

#include "agent/guard/who.h"
#include "core/base/quote.h"
#include "core/baseline/check.h"
#include "core/baseline/restore.h"
#include "core/fs/beneath.h"
#include "core/fs/handle.h"
#include "core/fs/open_for_writing.h"
#include "core/fs/remove_tree.h"
#include "core/fs/walk.h"
#include "core/fs/xattr.h"
#include "core/proto/actions.h"

namespace mamori::guard {

using baseline::Entry;
using baseline::FileType;
using event::Severity;

// What one reconcile found and did; becomes its event.
struct Guard::Act {
  std::string event_id = event::Event::new_id();
  std::string action;  // event.action; empty: nothing differed
  Severity severity = Severity::kWarning;
  std::string change;  // added | removed | changed
  uint32_t attrs = 0;  // Attr bits, for changed
  std::optional<hash::Digest> now_sha, base_sha;
  size_t captures = 0;             // evidence items queued for this change
  uint64_t not_captured = 0;       // past evidence::kMaxPerIncident: removed, not kept
  std::vector<std::string> links;  // other names of the tampered inode (hard links)
  uint64_t entries = 0;            // entries restored or quarantined (a whole tree counts each)
  std::optional<Error> error;
  // Replace the baselined file by a fresh inode even if its bytes and metadata match
  // (detach_): it was opened for writing, or another name shares its inode.
  bool detach = false;
  bool too_deep = false;  // `rel` was cut to the directory past the depth limit
  std::string reason;     // mamori.reason: why, when the action alone does not say
  // Baselined names of an inode quarantined under another name (a hard link): each is
  // replaced by a fresh copy right after, so the attacker's inode keeps no name here.
  std::vector<InodeIndex::Name> aliases;
  std::optional<fs::Written> written;   // how content was put back, when it was
  std::vector<std::string> scan_rules;  // YARA rules the file matched (core/scan)
  bool scan_truncated = false;          // only its first yara_max_kb were scanned
  bool scanned = false;                 // scan_rules is a verdict (the scan ran)
};

namespace {

constexpr size_t kMaxFresh = 1 << 16;
constexpr size_t kMaxSummaryPaths = 10000;
// A decoy opened again by the same process is reported once a minute; the memory of
// what was reported is bounded (a process per open: forgetting costs a repeat report).
constexpr int64_t kDecoyReportEveryNs = 60'000'000'000;
constexpr size_t kMaxDecoyReports = 4096;

// A root and a path joined by NUL, which neither can hold: keys cannot collide.
std::string path_key(const GuardedRoot& r, std::string_view rel) {
  std::string key = r.path;
  key += '\0';
  key += rel;
  return key;
}

// The digest of the file's first bytes, reading at most `limit` of them: nullopt when the
// file holds more (a file of the baseline's size is read at most that far, so no file an
// attacker grows or makes sparse can hold the guard's thread longer than the baseline's
// own content would).
Result<std::optional<hash::Digest>> hash_fd(int fd, std::string_view display, uint64_t limit) {
  hash::Sha256 h;
  std::vector<uint8_t> buf(1 << 16);
  uint64_t off = 0;
  while (true) {
    if (off == limit) {
      uint8_t more = 0;
      const ssize_t n = ::pread(fd, &more, 1, static_cast<off_t>(off));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fail_errno("read", std::string(display));
      if (n > 0) return std::optional<hash::Digest>();
      break;
    }
    const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), limit - off));
    const ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(off));
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("read", std::string(display));
    }
    if (n == 0) break;
    h.update({buf.data(), static_cast<size_t>(n)});
    off += static_cast<uint64_t>(n);
  }
  return std::optional<hash::Digest>(h.finish());
}

// The entry at `rel` now, as a baseline would record it (content not hashed).
Result<Entry> entry_now(const Place& at, const std::string& rel) {
  Entry e;
  e.path = rel;
  baseline::apply_stat(e, *at.st);
  std::string target, xattrs;
  if (at.name.empty()) {
    xattrs = MAMORI_TRY(fs::read_xattrs_fd(at.dir_fd, "."));
  } else {
    if (S_ISLNK(at.st->st_mode)) target = MAMORI_TRY(fs::read_link_at(at.dir_fd, at.name, rel));
    xattrs = MAMORI_TRY(fs::read_xattrs_at(at.dir_fd, at.name, rel));
  }
  if (!target.empty() || !xattrs.empty()) {
    e.set_link_target(std::move(target));
    e.set_xattrs(std::move(xattrs));
  }
  return e;
}

}  // namespace

Status Place::look(int root_fd, const std::string& rel) {
  if (rel.empty()) {
    struct stat s {};
    if (::fstat(root_fd, &s) != 0) return fail_errno("fstat", ".");
    dir_fd = root_fd;
    st = s;
    return ok();
  }
  parent = MAMORI_TRY(fs::open_parent(root_fd, rel));
  dir_fd = parent->dir.get();
  name = parent->name;
  return refresh(rel);
}

Status Place::refresh(std::string_view rel) {
  struct stat s {};
  st.reset();
  const int rc =
      name.empty() ? ::fstat(dir_fd, &s) : ::fstatat(dir_fd, name.c_str(), &s, AT_SYMLINK_NOFOLLOW);
  if (rc == 0)
    st = s;
  else if (errno != ENOENT)
    return fail_errno("fstatat", std::string(rel));
  return ok();
}

std::string_view trigger_name(Trigger t) {
  switch (t) {
    case Trigger::kRealtime:
      return "realtime";
    case Trigger::kStartup:
      return "startup";
    case Trigger::kScheduled:
      return "scheduled";
    case Trigger::kOverflow:
      return "overflow";
    case Trigger::kResume:
      return "resume";
    case Trigger::kRetry:
      return "retry";
    case Trigger::kStormOver:
      return "storm-over";
    case Trigger::kCommand:
      return "command";
  }
  return "?";
}

Guard::Guard(Env& env, baseline::State& state, evidence::EvidenceStore* evidence,
             Publisher& publisher, Executor& executor, const config::AgentConfig& config)
    : env_(env),
      state_(state),
      evidence_(evidence),
      publisher_(publisher),
      executor_(executor),
      config_(config) {}

void Guard::set_scanner(scan::Scanner* scanner, size_t max_queued) {
  scan_worker_.reset();
  scanner_ = scanner;
  if (scanner_) scan_worker_ = std::make_unique<triage::ScanWorker>(*scanner_, max_queued);
}

size_t Guard::add_root(GuardedRoot root) {
  roots_.push_back(std::move(root));
  return roots_.size() - 1;
}

baseline::ScanContext Guard::scan_context(const GuardedRoot& r) const {
  return {r.fd.get(), r.exclude.empty() ? nullptr : &r.exclude, executor_, env_.clock(), nullptr};
}

bool Guard::allowed_new(const GuardedRoot& r, const std::string& rel) const {
  return r.uploads.allows(r.fd.get(), rel);
}

void Guard::handle(const std::vector<watch::Change>& changes) {
  // Who-data once per process per batch: a storm from one process reads /proc once, and
  // only after the first restore it is for (read_who()): its ~10 system calls and the
  // kernel's formatting of /proc/PID/status are not on the way to putting the file back.
  std::unordered_map<pid_t, evidence::Who> who;
  batch_who_ = &who;
  struct EndBatch {
    Guard& g;
    ~EndBatch() {
      g.batch_who_ = nullptr;
      g.who_unread_.clear();
    }
  } end_batch{*this};
  auto who_for = [&](pid_t pid) -> const evidence::Who& {
    auto it = who.find(pid);
    if (it != who.end()) return it->second;
    evidence::Who w;  // only the pid for now; read_who() reads the rest
    if (pid > 0) {
      w.pid = pid;
      who_unread_.insert(pid);
    }
    return who.emplace(pid, std::move(w)).first->second;
  };
  // Every change in a batch happened before the first is handled, so one look at a path
  // sees its final state: the rest of its events (modify, close, attrib) are redundant.
  std::unordered_set<std::string> seen;
  if (deploy_) deploy_->update();  // forks first: a writer may have exited already
  // A file closed after being opened for writing is replaced even if it matches (see
  // detach_); any of the batch's changes of a path may carry the close.
  for (const auto& c : changes)
    if (c.root < roots_.size() && (c.what & watch::kClosedWrite) && !(c.what & watch::kIsDir))
      detach_.insert(path_key(roots_[c.root], c.rel));
  // A baselined inode that was opened (under any name: the backend may name it by its
  // handle, which a hard link outside the root shares) and is now open for writing:
  // replaced at once (see detach_), so whatever holds it, a descriptor or a shared
  // writable mapping (which raises no event, and no close while the writer lives),
  // writes into a detached inode. Other opens are nothing to look at.
  std::vector<std::pair<InodeIndex::Name, pid_t>> opened;
  std::unordered_set<std::string> probed;
  auto probe = [&](InodeIndex::Name n, pid_t pid) {
    GuardedRoot& r = roots_[n.root];
    // During a deploy, only an opener outside the deploy's process tree is acted on.
    const bool foreign = r.paused && deploy_ && !deploy_->owns(pid);
    if (r.mode == config::Mode::kAlert || (r.paused && !foreign)) return;
    auto key = path_key(r, n.rel);
    if (!probed.insert(key).second) return;
    if (auto w = fs::open_for_writing(r.fd.get(), n.rel); w && *w) {
      detach_.insert(std::move(key));
      opened.emplace_back(std::move(n), pid);
    }
  };
  for (const auto& c : changes) {
    if (c.root >= roots_.size() || !(c.what & watch::kOpened) || c.what & watch::kIsDir) continue;
    if (c.what & watch::kOverflow) {  // opens were lost: ask every baselined file, in slices
      probe_[c.root] = index_.paths(c.root);
      continue;
    }
    std::vector<InodeIndex::Name> names;
    if (!c.handle.empty())
      names = index_.names_by_handle(c.handle);
    else if (index_.of(c.root, c.rel))
      names.push_back({c.root, c.rel});
    for (auto& n : names) {
      if (!decoys_.empty() && decoys_.contains(path_key(roots_[n.root], n.rel)))
        decoy_opened(n, c.pid, who);
      probe(std::move(n), c.pid);
    }
  }
  for (const auto& [n, pid] : opened) {
    if (!seen.insert(path_key(roots_[n.root], n.rel)).second) continue;
    foreign_write_ = roots_[n.root].paused && deploy_ && !deploy_->owns(pid);
    reconcile(n.root, n.rel, who_for(pid), Trigger::kRealtime);
    foreign_write_ = false;
  }
  // Rescans after lost events come after the batch's own changes: a tamper read in the
  // same batch as an overflow is put back first, not after a verify of the whole root.
  std::vector<size_t> rescan;
  for (const auto& c : changes) {
    if (c.root >= roots_.size()) continue;
    if (c.what & watch::kOpened) continue;  // handled above
    if (c.what & watch::kOverflow) {
      if (std::find(rescan.begin(), rescan.end(), c.root) == rescan.end()) rescan.push_back(c.root);
      continue;
    }
    if (!seen.insert(path_key(roots_[c.root], c.rel)).second) continue;
    foreign_write_ = roots_[c.root].paused && deploy_ && !deploy_->owns(c.pid);
    const evidence::Who& w = who_for(c.pid);
    reconcile(c.root, c.rel, w, Trigger::kRealtime);
    if ((c.what & watch::kCreated) && (c.what & watch::kIsDir)) {
      read_who(w);  // nothing may have been done to the directory itself
      look_inside(c.root, c.rel, w, Trigger::kRealtime, seen);
    }
    foreign_write_ = false;
  }
  for (const size_t root : rescan) {
    emit(std::move(
        event::Event(proto::action::kWatchOverflow, Severity::kWarning, env_.clock().now_ns())
            .set("mamori.root", roots_[root].path)
            .message("the kernel dropped events; rescanning the root")));
    start_rescan(root, Trigger::kOverflow);
  }
  // A slice of the rescans, after the batch's own changes: the next batch is read after
  // one slice, not after the whole root.
  rescan_slice();
  // A slice of the files lost opens left to ask, after the batch's own changes too (a
  // slice is ~4 system calls a file: a tamper must not wait behind it), and bounded in
  // time as well as in files. A file found open for writing is replaced even if this
  // batch already looked at it.
  opened.clear();
  const int64_t slice_end = env_.clock().monotonic_ns() + kOpenProbeSliceNs;
  for (size_t budget = kOpenProbeSlice; budget > 0 && !probe_.empty();) {
    auto it = probe_.begin();
    auto& left = it->second;
    while (budget > 0 && !left.empty()) {
      probe({it->first, std::move(left.back())}, -1);
      left.pop_back();
      --budget;
      if (budget % 64 == 0 && env_.clock().monotonic_ns() >= slice_end) budget = 0;
    }
    if (left.empty()) probe_.erase(it);
  }
  for (const auto& [n, pid] : opened) {
    seen.insert(path_key(roots_[n.root], n.rel));
    foreign_write_ = roots_[n.root].paused && deploy_ && !deploy_->owns(pid);
    reconcile(n.root, n.rel, who_for(pid), Trigger::kRealtime);
    foreign_write_ = false;
  }
  detach_.clear();  // every path of the batch was looked at once
}

void Guard::look_inside(size_t root, const std::string& rel, const evidence::Who& who,
                        Trigger trigger, std::unordered_set<std::string>& seen) {
  // A directory that appeared (made, renamed in, or swapped for a baseline one) may
  // already hold entries no event described. Only listed here, not hashed: reconcile
  // reads what it must.
  GuardedRoot& r = roots_[root];
  auto st = fs::stat_beneath(r.fd.get(), rel);
  if (!st || !S_ISDIR(st->st_mode)) return;  // quarantined, or gone again
  auto tree = baseline::read_tree(scan_context(r), rel);
  if (!tree) return;
  std::vector<std::string> paths;
  for (const auto& e : tree->entries) paths.push_back(e.path);
  // And what the baseline has there: a swapped-in copy may lack files. A catalog that
  // cannot be read is counted; what is on disk is still reconciled, and the next verify
  // reads the catalog again for the rest.
  auto listed = state_.catalog.for_each(r.catalog_id, rel, [&](Entry&& e) -> Status {
    paths.push_back(std::move(e.path));
    return ok();
  });
  if (!listed) ++counters_.failures;
  std::sort(paths.begin(), paths.end());  // a directory before what it holds
  for (const auto& p : paths)
    if (p != rel && seen.insert(path_key(r, p)).second) reconcile(root, p, who, trigger);
}

Status Guard::verify(size_t root, Trigger trigger) {
  GuardedRoot& r = roots_[root];
  ++counters_.verifies;
  summarise_allowed();  // the verify counts its own window
  struct Summarise {
    Guard& g;
    ~Summarise() { g.summarise_allowed(); }
  } at_end{*this};
  const int64_t started = env_.clock().now_ns();
  // Nothing outside the baseline is hashed: it is quarantined or allowed by its name
  // (check.h's hash policy), so a verify costs at most the baseline's own content.
  baseline::CheckOptions options;
  options.max_unknown_hash_bytes = 0;
  auto report =
      MAMORI_TRY(baseline::check_root(state_.catalog, r.catalog_id, scan_context(r), "", options));
  // Where the baselined files are now, before anything is judged: a new name found below
  // may be a hard link to one of them. A catalog that cannot be read fails the verify (as
  // check_root would have): an index short of some files would miss writes through their
  // other names.
  index_.clear(root);
  std::vector<std::string> shared, linked;
  MAMORI_TRY(index_prefix(root, "", shared, linked));
  judge_linked(root, std::move(linked), shared);
  int64_t reported_until = allowed_cutoff(root, trigger, started);
  // A rescan under way is done by this verify: what it would have reported allowed still is.
  if (auto pending = rescans_.find(root); pending != rescans_.end()) {
    reported_until = std::min(reported_until, pending->second.reported_until_ns);
    rescans_.erase(pending);
  }
  last_verify_ns_[root] = started;
  act_on(root, std::move(report), std::move(shared), trigger, reported_until);
  return ok();
}

int64_t Guard::allowed_cutoff(size_t root, Trigger trigger, int64_t started) const {
  // Allowed new entries already reported (guard.h): not reported again at every start,
  // resume or scheduled verify.
  const auto last = last_verify_ns_.find(root);
  return trigger == Trigger::kStartup || last == last_verify_ns_.end() ? allowed_reported_until_ns_
         : trigger == Trigger::kOverflow                               ? last->second
                                                                       : started;
}

void Guard::act_on(size_t root, baseline::CheckReport report, std::vector<std::string> shared,
                   Trigger trigger, int64_t reported_until) {
  GuardedRoot& r = roots_[root];
  std::vector<std::string> detach_keys;
  for (auto& p : shared) {
    detach_keys.push_back(path_key(r, p));
    detach_.insert(detach_keys.back());
    report.changes.push_back({baseline::ChangeKind::kChanged, 0, Entry{}, Entry{}, {}});
    report.changes.back().before.path = std::move(p);
  }
  for (const auto& e : report.errors) {
    // Directories past the depth limit are acted on below, not merely reported.
    if (std::binary_search(report.too_deep.begin(), report.too_deep.end(), e.path)) continue;
    emit(std::move(
        event::Event(proto::action::kFileUnreadable, Severity::kWarning, env_.clock().now_ns())
            .set("mamori.root", r.path)
            .set("file.path", r.path + "/" + e.path)
            .set("error.message", e.message())));
  }
  // Sorted by path: a directory comes back before what it holds.
  std::sort(
      report.changes.begin(), report.changes.end(),
      [](const baseline::Change& a, const baseline::Change& b) { return a.path() < b.path(); });
  for (const auto& c : report.changes) {
    // Only ones allowed now: a tightened deny_new still acts.
    if (c.kind == baseline::ChangeKind::kAdded && c.after.ctime_ns < reported_until &&
        allowed_new(r, c.path()))
      continue;
    reconcile(root, c.path(), {}, trigger);
  }
  // What the walk did not enter: quarantined (reconcile() cuts at the limit).
  for (const auto& p : report.too_deep) reconcile(root, p, {}, trigger);
  for (const auto& k : detach_keys) detach_.erase(k);  // a path that vanished meanwhile
}

Status Guard::index_prefix(size_t root, std::string_view prefix, std::vector<std::string>& shared,
                           std::vector<std::string>& linked) {
  GuardedRoot& r = roots_[root];
  return state_.catalog.for_each(r.catalog_id, prefix, [&](Entry&& e) -> Status {
    if (e.type != FileType::kRegular) return ok();
    auto st = fs::stat_beneath(r.fd.get(), e.path);
    if (!st || !S_ISREG(st->st_mode)) {  // a change the check reported
      index_.erase(root, e.path);
      return ok();
    }
    index_.set(root, e.path, {st->st_dev, st->st_ino}, handle_of(root, e.path));
    // Several links: one may lie outside the baseline, which only every name indexed
    // tells (judge_linked()); rare, so only those wait. One link: judged now, whether
    // held open for writing (perhaps through a shared writable mapping made while we
    // were not looking: its writes raise no event).
    if (st->st_nlink > 1)
      linked.push_back(std::move(e.path));
    else if (fs::open_for_writing(r.fd.get(), e.path).value_or(false))
      shared.push_back(std::move(e.path));
    return ok();
  });
}

void Guard::judge_linked(size_t root, std::vector<std::string> linked,
                         std::vector<std::string>& shared) {
  GuardedRoot& r = roots_[root];
  std::sort(linked.begin(), linked.end());  // a rescan that went over a name twice
  linked.erase(std::unique(linked.begin(), linked.end()), linked.end());
  for (auto& rel : linked) {
    // More links than baselined names: some name of the inode lies outside the baseline
    // (a hard link made while we were not looking, perhaps outside the root), and a write
    // through it changes this file with no event naming it. Or held open for writing.
    auto st = fs::stat_beneath(r.fd.get(), rel);
    if (!st || !S_ISREG(st->st_mode)) continue;  // changed since: its own event says so
    if ((st->st_nlink > 1 && st->st_nlink > index_.names({st->st_dev, st->st_ino}).size()) ||
        fs::open_for_writing(r.fd.get(), rel).value_or(false))
      shared.push_back(std::move(rel));
  }
}

void Guard::start_rescan(size_t root, Trigger trigger) {
  const int64_t now = env_.clock().now_ns();
  const int64_t cutoff = allowed_cutoff(root, trigger, now);
  auto [it, fresh] = rescans_.try_emplace(root);
  Rescan& s = it->second;
  if (fresh) {
    ++counters_.verifies;
    s.trigger = trigger;
    s.reported_until_ns = cutoff;
    s.started_ns = now;
    return;
  }
  s.again = true;
  if (trigger == Trigger::kOverflow) s.trigger = trigger;
  s.reported_until_ns = std::min(s.reported_until_ns, cutoff);
}

void Guard::rescan_slice() {
  if (rescans_.empty()) return;  // the usual case: nothing read from the clock per batch
  const int64_t slice_end = env_.clock().monotonic_ns() + kRescanSliceNs;
  uint64_t entries = 0;
  while (!rescans_.empty()) {
    auto it = rescans_.begin();
    const size_t root = it->first;
    auto done = rescan_step(root, it->second, entries);
    if (!done) {
      // Its names cannot be listed (a catalog that cannot be read): dropped and counted,
      // as a failed verify is; the next scheduled verify goes over it all.
      rescans_.erase(it);
      ++counters_.failures;
    } else if (*done) {
      Rescan& s = it->second;
      std::vector<std::string> shared;
      judge_linked(root, std::exchange(s.linked, {}), shared);
      act_on(root, {}, std::move(shared), s.trigger, s.reported_until_ns);
      if (s.again) {
        ++counters_.verifies;
        s.again = false;
        s.relist = true;
        s.started_ns = env_.clock().now_ns();
      } else {
        last_verify_ns_[root] = s.started_ns;
        rescans_.erase(it);
      }
    }
    if (entries >= kRescanSliceEntries || env_.clock().monotonic_ns() >= slice_end) break;
  }
}

Result<bool> Guard::rescan_step(size_t root, Rescan& s, uint64_t& entries) {
  GuardedRoot& r = roots_[root];
  if (s.relist) {
    // The baseline's names and the ones there now (what check_root goes through), and
    // the root's own entry first.
    auto top = MAMORI_TRY(baseline::read_tree(scan_context(r), "", 0));
    // A root that cannot be listed: said; the baseline's names are still compared.
    for (const auto& e : top.errors)
      if (e.path.empty())
        emit(std::move(
            event::Event(proto::action::kFileUnreadable, Severity::kWarning, env_.clock().now_ns())
                .set("mamori.root", r.path)
                .set("file.path", r.path)
                .set("error.message", e.message())));
    std::vector<std::string> names = MAMORI_TRY(state_.catalog.top_names(r.catalog_id));
    for (size_t i = 1; i < top.entries.size(); ++i) names.push_back(top.entries[i].path);
    names.emplace_back();
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    entries += names.size();
    s.names.clear();
    for (auto& n : names) s.names.push_back({std::move(n), true, false});
    s.relist = false;
    return false;
  }
  if (s.names.empty()) return true;
  Rescan::Unit unit = std::move(s.names.front());
  s.names.pop_front();
  const std::string& name = unit.path;
  ++entries;
  if (!name.empty() && r.exclude.matches(name)) return false;  // what reconcile() leaves alone
  if (name.empty() || !unit.whole) {  // a directory's own entry (the root's: "")
    reconcile(root, name, {}, s.trigger);
    return false;
  }
  if (!unit.planned) {
    auto units = MAMORI_TRY(plan_rescan(root, name, entries));
    if (units.size() > 1) {
      s.names.insert(s.names.begin(), std::make_move_iterator(units.begin()),
                     std::make_move_iterator(units.end()));
      return false;
    }
  }
  baseline::CheckOptions options;
  options.max_unknown_hash_bytes = 0;  // as verify()
  auto report = baseline::check_root(state_.catalog, r.catalog_id, scan_context(r), name, options);
  if (!report) {
    // A top-level directory that cannot be read beneath: said, as a verify of the whole
    // root does, and its own entry compared; what lies beneath is unknown, not removed.
    emit(std::move(
        event::Event(proto::action::kFileUnreadable, Severity::kWarning, env_.clock().now_ns())
            .set("mamori.root", r.path)
            .set("file.path", r.path + "/" + name)
            .set("error.message", report.error().message())));
    reconcile(root, name, {}, s.trigger);
    return false;
  }
  entries += report->entries + report->changes.size();
  // This name's part of the index is brought up to date before its changes are judged
  // (a new name may be a hard link to a file of it); the other names' parts keep what the
  // real-time path last recorded, which is what it would have recorded anyway.
  std::vector<std::string> shared;
  MAMORI_TRY(index_prefix(root, name, shared, s.linked));
  act_on(root, std::move(*report), std::move(shared), s.trigger, s.reported_until_ns);
  return false;
}

Result<std::vector<Guard::Rescan::Unit>> Guard::plan_rescan(size_t root, const std::string& top,
                                                            uint64_t& entries) {
  GuardedRoot& r = roots_[root];
  // Small (most are): compared whole. Counting stops past the limit.
  uint64_t count = 0;
  auto counted = state_.catalog.for_each(r.catalog_id, top, [&](Entry&&) -> Status {
    if (++count > kRescanSliceEntries) return fail("rescan", top, ECANCELED, "large");
    return ok();
  });
  if (counted) return std::vector<Rescan::Unit>{{top, true, false}};
  if (count <= kRescanSliceEntries) return tl::unexpected(std::move(counted).error());
  // Large: the size of every directory's subtree and its children, in one read of the
  // catalog (sorted by bytes, so not depth first: "a/b-c" comes before "a/b/c").
  std::unordered_map<std::string, uint64_t> size;
  std::unordered_map<std::string, std::vector<std::string>> children;
  MAMORI_TRY(state_.catalog.for_each(r.catalog_id, top, [&](Entry&& e) -> Status {
    ++entries;
    if (e.type == FileType::kDirectory) ++size[e.path];
    if (e.path == top) return ok();
    for (size_t slash = e.path.find('/', top.size()); slash != std::string::npos;
         slash = e.path.find('/', slash + 1))
      ++size[e.path.substr(0, slash)];
    children[std::string(fs::dirname(e.path))].push_back(std::move(e.path));
    return ok();
  }));
  std::vector<Rescan::Unit> units;
  // Depth first, in path order; the baseline's depth is bounded by the walk's
  // (fs::kMaxWalkDepth), and what is only on disk is never split.
  std::function<void(const std::string&)> plan = [&](const std::string& dir) {
    const auto n = size.find(dir);
    if (n == size.end() || n->second <= kRescanSliceEntries || r.exclude.matches(dir)) {
      units.push_back({dir, true, true});
      return;
    }
    units.push_back({dir, false, true});
    std::vector<std::string> kids = std::move(children[dir]);
    // And what is there now that the baseline lacks (compared whole: its entries are
    // quarantined or allowed by name, never hashed).
    if (auto now = baseline::read_tree(scan_context(r), dir, 0))
      for (auto& e : now->entries)
        if (e.path != dir) kids.push_back(std::move(e.path));
    std::sort(kids.begin(), kids.end());
    kids.erase(std::unique(kids.begin(), kids.end()), kids.end());
    for (const auto& k : kids) plan(k);
  };
  plan(top);
  return units;
}

std::string Guard::handle_of(size_t root, const std::string& rel) {
  struct statfs sfs {};
  if (::fstatfs(roots_[root].fd.get(), &sfs) != 0) return {};
  return fs::handle_key_of(roots_[root].fd.get(), rel, sfs.f_fsid).value_or(std::string());
}

std::string Guard::handle_at(size_t root, int fd, const char* name, int flags) {
  auto& fsid = fsids_[root];
  if (!fsid) {
    struct statfs sfs {};
    if (::fstatfs(roots_[root].fd.get(), &sfs) != 0) return {};
    fsid = sfs.f_fsid;
  }
  struct {
    file_handle h;
    unsigned char bytes[MAX_HANDLE_SZ];
  } buf{};
  buf.h.handle_bytes = MAX_HANDLE_SZ;
  int mount_id = 0;
  if (::name_to_handle_at(fd, name, &buf.h, &mount_id, flags) != 0) return {};
  return fs::handle_key(*fsid, buf.h.handle_type,
                        {reinterpret_cast<const uint8_t*>(buf.h.f_handle), buf.h.handle_bytes});
}

bool Guard::read_who(const evidence::Who& who) {
  if (who.pid <= 0 || !batch_who_ || !who_unread_.contains(static_cast<pid_t>(who.pid)))
    return false;
  auto it = batch_who_->find(static_cast<pid_t>(who.pid));
  if (it == batch_who_->end() || &it->second != &who) return false;  // not the batch's
  who_unread_.erase(static_cast<pid_t>(who.pid));
  it->second = who_of(static_cast<pid_t>(who.pid), users_);
  return true;
}

void Guard::note_inode(size_t root, const std::string& rel) {
  auto st = fs::stat_beneath(roots_[root].fd.get(), rel);
  if (!st || !S_ISREG(st->st_mode)) {
    index_.erase(root, rel);
    return;
  }
  index_.set(root, rel, {st->st_dev, st->st_ino}, handle_of(root, rel));
  // Ours: the close inotify reports for the restore's own file is not a writer's.
  if (fresh_.size() >= kMaxFresh) fresh_.clear();
  fresh_[path_key(roots_[root], rel)] = {
      static_cast<uint64_t>(st->st_ino),
      st->st_ctim.tv_sec * 1'000'000'000LL + st->st_ctim.tv_nsec};
}

std::optional<std::string> Guard::too_deep_prefix(const std::string& rel) {
  // A walk enters directories up to kMaxWalkDepth components deep, so it sees entries
  // of kMaxWalkDepth + 1 components: a directory that deep, or anything deeper, is past
  // the limit, and the cut is its ancestor (or itself) of that many components.
  size_t components = 0, cut = std::string::npos;
  for (size_t i = 0; i <= rel.size(); ++i) {
    if (i == rel.size() || rel[i] == '/') {
      if (++components == fs::kMaxWalkDepth + 1) cut = i;
    }
  }
  if (rel.empty() || components <= fs::kMaxWalkDepth) return std::nullopt;
  return rel.substr(0, cut);
}

void Guard::reconcile(size_t root, std::string rel, const evidence::Who& who, Trigger trigger,
                      bool follow_links) {
  GuardedRoot& r = roots_[root];
  Act act;
  act.detach = detach_.erase(path_key(r, rel)) > 0;
  if (!rel.empty() && r.exclude.matches(rel)) return;
  // Past the depth limit no walk would see the entry again: it is judged as part of the
  // directory at the limit, which is quarantined whole.
  if (auto cut = too_deep_prefix(rel)) {
    bool dir = false;
    if (*cut == rel) {
      auto st = fs::stat_beneath(r.fd.get(), rel);
      dir = st && S_ISDIR(st->st_mode);
    }
    if (*cut != rel || dir) {
      rel = std::move(*cut);
      act.too_deep = true;
    }
  }
  // One lookup of the entry's directory. When that fails, the highest ancestor that is
  // not a directory any more is what changed: a deleted tree, or a directory swapped for
  // a symlink. Nothing beneath it can be reached.
  Place at;
  if (auto looked = at.look(r.fd.get(), rel); !looked) {
    for (size_t slash = rel.find('/'); slash != std::string::npos;
         slash = rel.find('/', slash + 1)) {
      auto up = fs::stat_beneath(r.fd.get(), std::string_view(rel).substr(0, slash));
      if (!up || !S_ISDIR(up->st_mode)) {
        rel.resize(slash);
        break;
      }
    }
    at = Place{};
    if (auto again = at.look(r.fd.get(), rel); !again) {
      ++counters_.failures;
      retry_later(root, rel, trigger);
      return;  // raced away again: tried again at the next tick
    }
  }
  const auto key = std::make_pair(root, rel);
  if (auto st = reconcile_entry(r, rel, at, who, act); !st) {
    act.error = std::move(st).error();
    ++counters_.failures;
    if (act.action.empty()) act.action = proto::action::kFileRestoreFailed;
    retry_later(root, rel, trigger);
  } else if (!retries_.empty()) {
    retries_.erase(key);
  }
  if (act.action.empty()) {
    if (!alerted_.empty()) alerted_.erase(path_key(r, rel));  // as its baseline again
    if (!settling_.empty()) settling_.erase(path_key(r, rel));
    return;
  }
  // The entry is back (or moved out): now who changed it, for the event and the evidence
  // queued meanwhile with only the pid.
  if (read_who(who) && act.captures > 0)
    for (auto c = captures_.rbegin(); c != captures_.rend() && c->item.event_id == act.event_id;
         ++c)
      c->item.who = who;
  if (still_settling(root, rel, at, who, trigger, act)) return;  // reported once quiet
  if (already_alerted(r, rel, at, act)) return;
  ++counters_.changes;
  // Alert mode leaves the file in place: what it now holds (a changed file's content, a
  // new file) is scanned where it is, off this thread; the report waits for the verdict.
  // A deploy's own writes are not triage's business.
  if (scan_worker_ && r.mode == config::Mode::kAlert && !r.paused && !act.error && !act.scanned &&
      at.st && S_ISREG(at.st->st_mode) &&
      ((act.action == proto::action::kFileChanged && (act.attrs & baseline::kAttrContent)) ||
       act.action == proto::action::kFileCreated))
    if (auto fd = fs::open_beneath(r.fd.get(), rel, O_RDONLY | O_NONBLOCK); fd)
      scan_later(act.event_id, std::move(*fd), rel, std::nullopt);
  report(r, rel, who, trigger, act);
  // A write through one name of a hard-linked file changed every name; no event said so.
  if (follow_links)
    for (const auto& other : act.links)
      if (other != rel) reconcile(root, other, who, trigger, false);
  // The inode quarantined under a new name is baselined code under its other names:
  // each gets a fresh inode, so the attacker's (and any descriptor on it) is out.
  for (const auto& alias : act.aliases) {
    if (alias.root >= roots_.size()) continue;
    detach_.insert(path_key(roots_[alias.root], alias.rel));
    reconcile(alias.root, alias.rel, who, trigger, false);
  }
}

Status Guard::reconcile_entry(GuardedRoot& r, const std::string& rel, Place& at,
                              const evidence::Who& who, Act& act) {
  // During a deploy only the deploy's own writes are left alone.
  const bool repair = r.mode != config::Mode::kAlert && (!r.paused || foreign_write_);
  auto want = MAMORI_TRY(state_.catalog.get(r.catalog_id, rel));
  const auto& st = at.st;
  const bool exists = st.has_value();
  if (!want && !exists) return ok();
  if (want && want->type == FileType::kRegular) act.base_sha = want->sha256;

  const size_t root = static_cast<size_t>(&r - roots_.data());
  if (act.too_deep && want && exists && want->type == FileType::kDirectory &&
      S_ISDIR(st->st_mode) && !at.name.empty()) {
    // The baseline holds the directory at the limit (a walk reports it, never enters
    // it), so nothing beneath it was ever verified: what is there now goes, the
    // directory stays.
    act.reason = "nested-too-deep";
    act.change = "added";
    if (!repair) return ok();
    fs::RemoveTreeOptions options;
    options.keep_top = true;
    options.before_unlink = [&](int d, const std::string& n, const struct stat& s,
                                const std::string& path) {
      ++act.entries;
      ++counters_.quarantined;
      if (UniqueFd content = content_of(d, n, s, path); content.valid())
        defer_capture(r, path, std::move(content), "quarantined", who, nullptr, act);
    };
    fs::RemoveTreeReport removed;
    auto emptied = fs::remove_tree(at.dir_fd, at.name, rel, options, removed);
    counters_.quarantined += removed.directories;
    if (removed.files + removed.directories > 0 || !emptied)
      act.action = proto::action::kFileQuarantined;
    return emptied;
  }
  if (!want) {
    act.change = "added";
    if (act.too_deep && S_ISDIR(st->st_mode)) {
      // Nothing deeper is ever walked (fs::kMaxWalkDepth): left in place, it would be
      // served and never verified. Not even allow_new keeps it.
      act.reason = "nested-too-deep";
      if (!repair) {
        act.action = proto::action::kFileCreated;
        return ok();
      }
      return quarantine(r, rel, who, act);
    }
    // A new name of baselined code (a hard link) is never an allowed upload: a write
    // through it changes the baselined file, and no event would name that file.
    if (S_ISREG(st->st_mode)) {
      const InodeId id{st->st_dev, st->st_ino};
      if (st->st_nlink > 1) act.aliases = index_.names(id);
      if (act.aliases.empty() && !replaced_.empty())
        if (auto old = replaced_.find(handle_of(root, rel)); old != replaced_.end())
          act.aliases = old->second;
      if (!act.aliases.empty()) {
        act.reason = "hard-link-to-baselined-file";
        if (!repair) {
          act.action = proto::action::kFileCreated;
          return ok();
        }
        return quarantine(r, rel, who, act);
      }
    }
    if (allowed_new(r, rel)) {
      // Allowed by its name and first bytes; a web shell or an injected script by its
      // content (YARA) is not, whatever it is called.
      if (scanner_ && S_ISREG(st->st_mode))
        if (auto fd = fs::open_beneath(r.fd.get(), rel, O_RDONLY | O_NONBLOCK); fd)
          act.scan_rules = scan_rules(fd->get(), rel, act);
      if (act.scan_rules.empty()) {
        act.action = proto::action::kFileAllowed;
        act.severity = Severity::kInfo;
        return ok();
      }
      act.reason = "yara";
      act.severity = Severity::kCritical;
      if (!repair) {
        act.action = proto::action::kFileCreated;
        return ok();
      }
      return quarantine(r, rel, who, act);
    }
    if (!repair) {
      act.action = proto::action::kFileCreated;
      return ok();
    }
    return quarantine(r, rel, who, act);
  }

  if (!exists) {
    act.change = "removed";
    if (!repair) {
      act.action = proto::action::kFileDeleted;
      return ok();
    }
    if (want->type == FileType::kDirectory) return restore_subtree(r, rel, who, act);
    MAMORI_TRY(
        baseline::restore_entry(env_, *state_.store, r.fd.get(), *want, true, fs::Sync::kDeferred));
    rewritten_.push_back({r.fd.get(), rel});
    note_inode(root, rel);
    act.action = proto::action::kFileRestored;
    act.entries = 1;
    ++counters_.restored;
    return ok();
  }

  Entry now = MAMORI_TRY(entry_now(at, rel));
  uint32_t attrs = baseline::diff_metadata(*want, now);
  UniqueFd tampered;  // the tampered inode, kept open so it can be preserved after the swap
  if (want->type == FileType::kRegular && now.type == FileType::kRegular) {
    const auto fresh = fresh_.find(path_key(r, rel));
    const bool ours = fresh != fresh_.end() && fresh->second.first == now.ino &&
                      fresh->second.second == now.ctime_ns;
    if (!(attrs & baseline::kAttrContent) && !ours && !baseline::stat_cache_matches(*want, now)) {
      auto fd = fs::open_beneath(r.fd.get(), rel, O_RDONLY | O_NONBLOCK);
      if (fd) {
        act.now_sha = MAMORI_TRY(hash_fd(fd->get(), rel, want->size));
        if (!act.now_sha || *act.now_sha != want->sha256) attrs |= baseline::kAttrContent;
        tampered = std::move(*fd);
      }
    }
    // Another name shares this inode beyond the baseline's own names (a hard link, maybe
    // outside the root): whoever holds it can write into this file unseen.
    if (st->st_nlink > 1 && st->st_nlink > index_.names({st->st_dev, st->st_ino}).size()) {
      act.detach = true;
      act.reason = "inode-shared";
    } else if (act.detach) {
      act.reason = "opened-for-writing";
    }
    if (ours) act.detach = false;  // our own restore's close (inotify)
  } else {
    act.detach = false;
  }
  if (attrs == 0 && (!act.detach || !repair)) return ok();
  if (now.type == FileType::kRegular && st->st_nlink > 1 && (attrs & baseline::kAttrContent))
    act.links = MAMORI_TRY(state_.catalog.paths_with_inode(r.catalog_id, now.ino));
  act.change = "changed";
  act.attrs = attrs;
  if (!repair) {
    act.action = proto::action::kFileChanged;
    return ok();
  }
  bool rebuild = act.detach || (attrs & (baseline::kAttrType | baseline::kAttrContent |
                                         baseline::kAttrLinkTarget | baseline::kAttrDevice));
  // Owner and mode are changed only on the baseline's own inode with no other name: on
  // a file hard-linked in from outside the root they would change that file (a root
  // 0600 secret made www-data's). Anything else is replaced from the store instead.
  if (!rebuild && now.type != FileType::kDirectory) {
    const auto own = index_.of(root, rel);
    if (st->st_nlink > 1 || (own && !(*own == InodeId{st->st_dev, st->st_ino}))) {
      rebuild = true;
      act.reason = st->st_nlink > 1 ? "inode-shared" : "inode-replaced";
    }
  }
  if (rebuild && (now.type == FileType::kDirectory || want->type == FileType::kDirectory)) {
    // A directory where a file was, or the reverse: what stands there goes to quarantine
    // whole, then the baseline's entry (and, for a directory, its tree) comes back.
    MAMORI_TRY(quarantine(r, rel, who, act));
    if (want->type == FileType::kDirectory) return restore_subtree(r, rel, who, act);
    MAMORI_TRY(
        baseline::restore_entry(env_, *state_.store, r.fd.get(), *want, true, fs::Sync::kDeferred));
    rewritten_.push_back({r.fd.get(), rel});
    note_inode(root, rel);
    act.action = proto::action::kFileRestored;
    ++counters_.restored;
    return ok();
  }
  const bool keep =
      r.mode == config::Mode::kPreserve && rebuild && attrs != 0 && now.type == FileType::kRegular;
  // A detached inode is watched after the swap (Capture::detached): its holder may be
  // writing into it right now.
  const bool watch_detached = act.detach && attrs == 0 && now.type == FileType::kRegular;
  // The tampered content is scanned once it is out of the tree (docs/scan.md): the
  // restore opens it (as preserve mode does), never waits for the scan.
  const bool scan = scan_worker_ && rebuild && (attrs & baseline::kAttrContent) &&
                    now.type == FileType::kRegular && want->type == FileType::kRegular;
  if ((keep || watch_detached || scan) && !tampered.valid()) {
    auto fd = fs::open_beneath(r.fd.get(), rel, O_RDONLY | O_NONBLOCK);
    if (fd) tampered = std::move(*fd);
  }
  // Freeing the tampered inode's blocks is the slow part of renaming over it (ext4 does
  // it inside the rename): a reference held across the rename defers that to after.
  UniqueFd pin;
  if (rebuild && !tampered.valid() && !at.name.empty())
    pin.reset(::openat(at.dir_fd, at.name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  const bool regular = want->type == FileType::kRegular && now.type == FileType::kRegular;
  // The tampered inode's handle is read after the rename, through the descriptor held on
  // it (the same inode): not one more lookup before the file is back.
  const int held = tampered.valid() ? tampered.get() : pin.get();
  std::string old_handle =
      rebuild && regular && held < 0 ? handle_at(root, at.dir_fd, at.name.c_str(), 0) : "";
  // Into the directory `at` holds open (looked up for this very entry moments ago).
  act.written = MAMORI_TRY(at.name.empty()
                               ? baseline::restore_entry_how(env_, *state_.store, r.fd.get(), *want,
                                                             rebuild, fs::Sync::kDeferred)
                               : baseline::restore_entry_in(env_, *state_.store, at.dir_fd, at.name,
                                                            *want, rebuild, fs::Sync::kDeferred));
  if (rebuild && regular && held >= 0) old_handle = handle_at(root, held, "", AT_EMPTY_PATH);
  // Rewritten in place (no inode for a temporary): the tampered inode is the restored
  // one now, so there is nothing left to keep as evidence.
  if (act.written == fs::Written::kRewrittenInPlace) tampered.reset();
  if (rebuild) rewritten_.push_back({r.fd.get(), rel});
  if (!old_handle.empty()) {
    if (replaced_.size() >= kMaxFresh) replaced_.clear();
    replaced_[old_handle].push_back({root, rel});
  }
  act.action = !rebuild     ? proto::action::kFileRepaired
               : attrs == 0 ? proto::action::kFileReplaced
                            : proto::action::kFileRestored;
  act.entries = 1;
  ++counters_.restored;
  if (want->type == FileType::kRegular && at.refresh(rel) && at.st) {
    if (S_ISREG(at.st->st_mode))
      index_.set(root, rel, {at.st->st_dev, at.st->st_ino},
                 handle_at(root, at.dir_fd, at.name.c_str(), 0));
    // A file rewritten in place keeps its inode, and a writer still holding it may write
    // again within the same coarse ctime tick: never taken for our own (fresh_) then, so
    // its next event is compared by content.
    if (act.written == fs::Written::kRewrittenInPlace) {
      fresh_.erase(path_key(r, rel));
    } else {
      if (fresh_.size() >= kMaxFresh) fresh_.clear();
      fresh_[path_key(r, rel)] = {static_cast<uint64_t>(at.st->st_ino),
                                  at.st->st_ctim.tv_sec * 1'000'000'000LL + at.st->st_ctim.tv_nsec};
    }
  }
  // The event names the tampered content's hash once the capture has read it whole.
  // Preserve mode scans what it kept, once kept; restore mode keeps nothing and scans
  // the detached inode. Both wait for its writer to go quiet first, as evidence does:
  // `echo x > f` truncates, then writes, and the restore may come in between, so the
  // inode held right after it may still be empty.
  if (keep && tampered.valid() && evidence_) {
    defer_capture(r, rel, std::move(tampered), "modified", who, &*want, act, scan);
  } else if (scan && tampered.valid()) {
    Capture c = new_capture(r, rel, std::move(tampered), "modified", who, &*want, act);
    c.scan = true;
    c.evidence = false;
    queue_capture(std::move(c), act);
  } else if (watch_detached && tampered.valid()) {
    Capture c = new_capture(r, rel, std::move(tampered), "detached", who, &*want, act);
    c.detached = true;
    c.keep = r.mode == config::Mode::kPreserve;
    c.baseline_size = want->size;
    queue_capture(std::move(c), act);
  }
  return ok();
}

bool Guard::still_settling(size_t root, const std::string& rel, const Place& at,
                           const evidence::Who& who, Trigger trigger, const Act& act) {
  const GuardedRoot& r = roots_[root];
  const std::string key = path_key(r, rel);
  if (r.mode != config::Mode::kAlert || act.error || trigger != Trigger::kRealtime || !at.st ||
      !S_ISREG(at.st->st_mode)) {
    if (!settling_.empty()) settling_.erase(key);
    return false;
  }
  // Quiet is judged on our own clock: the inode's ctime unchanged for kQuietNs between
  // two looks (file timestamps come from a coarser clock than ours).
  const int64_t now = env_.clock().now_ns();
  const int64_t ctime = at.st->st_ctim.tv_sec * 1'000'000'000LL + at.st->st_ctim.tv_nsec;
  auto it = settling_.find(key);
  if (it == settling_.end()) {
    if (settle_all_ || settling_.size() >= kMaxSettling) return false;
    settling_.emplace(key, Settling{root, rel, who, now, ctime, now});
    return true;  // capture_due() looks again
  }
  Settling& s = it->second;
  if (!settle_all_ && now - s.since_ns < kMaxHoldNs) {
    if (ctime != s.ctime) {
      s.ctime = ctime;  // written again since the last look
      s.looked_ns = now;
      return true;
    }
    if (now - s.looked_ns < kQuietNs) return true;
  }
  settling_.erase(it);
  return false;
}

bool Guard::already_alerted(const GuardedRoot& r, const std::string& rel, const Place& at,
                            const Act& act) {
  // Only alert mode leaves a difference in place; a failure is always reported.
  if (r.mode != config::Mode::kAlert || act.error) return false;
  std::string sig = fmt::format("{}|{}|{}", act.action, act.change, act.attrs);
  if (at.st) {
    const struct stat& s = *at.st;
    sig += fmt::format("|{:o}|{}:{}|{}|{}|{}.{}|{}.{}", s.st_mode, s.st_uid, s.st_gid, s.st_ino,
                       s.st_size, s.st_mtim.tv_sec, s.st_mtim.tv_nsec, s.st_ctim.tv_sec,
                       s.st_ctim.tv_nsec);
  }
  if (act.now_sha) sig += "|" + act.now_sha->hex();
  const std::string key = path_key(r, rel);
  if (auto it = alerted_.find(key); it != alerted_.end() && it->second == sig) return true;
  if (alerted_.size() >= kMaxAlerted) alerted_.clear();
  alerted_[key] = std::move(sig);
  return false;
}

void Guard::defer_capture(GuardedRoot& r, const std::string& rel, UniqueFd fd,
                          const std::string& reason, const evidence::Who& who, const Entry* want,
                          Act& act, bool scan) {
  if (!evidence_) return;
  // One change (a quarantined directory) keeps at most kMaxPerIncident items: reading a
  // 77-file burst, each up to evidence_max_file_mb, would hold the guard's thread and
  // flush everything else. The rest is counted in the event (mamori.evidence.not_kept).
  // A directory is removed in its own order, so a script found past the cap still has an
  // allowance of its own: a web shell hidden among junk is what the evidence is for.
  const size_t cap =
      evidence::script_name(rel) ? 2 * evidence::kMaxPerIncident : evidence::kMaxPerIncident;
  if (act.captures >= cap) {
    ++act.not_captured;
    return;
  }
  Capture c = new_capture(r, rel, std::move(fd), reason, who, want, act);
  c.scan = scan;
  queue_capture(std::move(c), act);
}

Guard::Capture Guard::new_capture(const GuardedRoot& r, const std::string& rel, UniqueFd fd,
                                  const std::string& reason, const evidence::Who& who,
                                  const Entry* want, const Act& act) const {
  Capture c;
  c.fd = std::move(fd);
  c.taken_ns = env_.clock().now_ns();
  c.item.event_id = act.event_id;
  c.item.root = r.path;
  c.item.path = rel;
  c.item.reason = reason;
  c.item.who = who;
  if (want && want->type == FileType::kRegular) c.item.baseline_sha256 = want->sha256;
  // A quarantined file scanned before it was kept (quarantine()): its verdict goes with it.
  if (act.scanned && reason == "quarantined")
    c.item.scan = evidence::ScanResult{act.scan_rules, act.scan_truncated};
  return c;
}

void Guard::queue_capture(Capture c, Act& act) {
  ++act.captures;
  ++held_[act.event_id].waiting;
  captures_.push_back(std::move(c));
  // Too many writers holding files open: take the oldest now rather than hold more fds.
  while (captures_.size() > kMaxCaptures) {
    Capture oldest = std::move(captures_.front());
    captures_.pop_front();
    finish(oldest);
  }
}

void Guard::finish(Capture& c) {
  if (!c.detached) {
    const auto item = c.evidence ? capture(c) : std::nullopt;
    // Scanned from the same descriptor, after it was kept: the verdict is the item's.
    if (c.scan && c.fd.valid())
      scan_later(c.item.event_id, std::move(c.fd), c.item.path,
                 item ? std::optional<int64_t>(item->id) : std::nullopt);
    c.fd.reset();
    captured(c.item.event_id, item, c.item.reason);
    return;
  }
  auto h = held_.find(c.item.event_id);
  // Read only as much as the baseline holds: a holder that grew the inode (to 15 TB, say)
  // wrote into it, and reading it through would stall the guard.
  struct stat st {};
  const bool grown =
      ::fstat(c.fd.get(), &st) == 0 && static_cast<uint64_t>(st.st_size) != c.baseline_size;
  std::optional<hash::Digest> sha;
  if (!grown)
    if (auto d = hash_fd(c.fd.get(), c.item.path, c.baseline_size); d && *d) sha = **d;
  std::optional<evidence::Item> item;
  if (grown || (sha && c.item.baseline_sha256 && *sha != *c.item.baseline_sha256)) {
    if (h != held_.end()) {
      h->second.written = true;
      if (sha) h->second.sha256 = *sha;
    }
    if (c.keep && evidence_) {
      c.item.reason = "modified";
      item = capture(c);
      if (item && h != held_.end()) {
        h->second.ids.push_back(item->id);
        // A grown inode was not hashed above; the kept copy's digest is its content's.
        if (!sha && !item->truncated) h->second.sha256 = item->sha256;
        if (item->truncated) h->second.truncated = true;
      }
    }
  }
  c.fd.reset();
  if (h != held_.end() && --h->second.waiting == 0) release(h);
}

void Guard::captured(const std::string& event_id, const std::optional<evidence::Item>& item,
                     const std::string& reason) {
  auto h = held_.find(event_id);
  if (h == held_.end()) return;
  if (item) {
    h->second.ids.push_back(item->id);
    // A truncated item's digest is its kept prefix's, not the file's: never named as such.
    if (!item->truncated && (reason == "modified" || !h->second.sha256))
      h->second.sha256 = item->sha256;
    if (item->truncated) h->second.truncated = true;
  }
  if (--h->second.waiting == 0) release(h);
}

void Guard::release(std::unordered_map<std::string, Held>::iterator h) {
  Held& held = h->second;
  if (held.waiting > 0 || (!held.event && !held.summarised)) return;  // report() comes later
  if (held.event) {
    if (held.written) {
      // What was written through the descriptor or mapping landed in the detached inode:
      // the site never served it, but it was a change of the file, reported as one.
      nlohmann::json fields = held.event->fields();
      fields["event"]["action"] = proto::action::kFileRestored;
      fields["mamori"]["attrs"] = nlohmann::json::array({"content"});
      event::Event e(held.event->id(), proto::action::kFileRestored, Severity::kWarning, 0);
      for (auto& [k, v] : fields.items()) e.set(k, v);
      e.message(
          fmt::format("file-restored {} (written through a descriptor or mapping held open: "
                      "the writes went into the detached old inode)",
                      quote(fields["file"]["path"].get<std::string>())));
      held.event = std::move(e);
    }
    if (held.sha256) held.event->set("file.hash.sha256", held.sha256->hex());
    if (!held.scan_rules.empty()) {
      held.event->set("mamori.scan.rules", held.scan_rules);
      if (held.scan_truncated) held.event->set("mamori.scan.truncated", true);
    }
    if (held.scan_skipped) held.event->set("mamori.scan.skipped", true);
    if (held.truncated) held.event->set("mamori.evidence.truncated", true);
    if (!held.ids.empty()) {
      held.event->set("mamori.evidence.id", held.ids.front());
      if (held.ids.size() > 1) held.event->set("mamori.evidence.ids", held.ids);
    }
    emit(std::move(*held.event));
  }
  held_.erase(h);
}

std::optional<evidence::Item> Guard::capture(Capture& c) {
  struct stat st {};
  if (::fstat(c.fd.get(), &st) == 0) {
    c.item.mode = st.st_mode;
    c.item.uid = st.st_uid;
    c.item.gid = st.st_gid;
    c.item.mtime_ns = st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec;
  }
  c.item.time_ns = env_.clock().now_ns();
  std::vector<evidence::Item> pruned;
  auto added = evidence_->add(c.item, c.fd.get(), &pruned);
  if (!added) {
    ++counters_.failures;
    emit(std::move(
        event::Event(proto::action::kEvidenceFailed, Severity::kWarning, env_.clock().now_ns())
            .set("mamori.root", c.item.root)
            .set("file.path", c.item.root + "/" + c.item.path)
            .set("error.message", added.error().message())));
    return std::nullopt;
  }
  // The new item itself may be the least important one (evidence.h): then it is not kept.
  const bool kept = std::none_of(pruned.begin(), pruned.end(),
                                 [&](const evidence::Item& p) { return p.id == added->id; });
  if (kept && !added->duplicate) ++counters_.evidence;
  if (!pruned.empty()) {
    // What was not kept, named (bounded: a burst must not make one huge event).
    constexpr size_t kMaxNamed = 100;
    nlohmann::json ids = nlohmann::json::array(), paths = nlohmann::json::array();
    for (const auto& p : pruned) {
      ids.push_back(p.id);
      if (paths.size() < kMaxNamed) paths.push_back(p.root + "/" + p.path);
    }
    emit(std::move(
        event::Event(proto::action::kEvidencePruned, Severity::kNotice, env_.clock().now_ns())
            .set("mamori.evidence.pruned_ids", ids)
            .set("mamori.evidence.pruned_paths", paths)
            .set("mamori.evidence.new_item_kept", kept)
            .message(fmt::format("evidence quota reached: {} item(s) not kept, the least "
                                 "important first (bursts, then ordinary, then first of an "
                                 "incident; scripts last){}",
                                 pruned.size(), kept ? "" : ", including the newest"))));
  }
  if (!kept) return std::nullopt;
  return std::move(*added);
}

void Guard::capture_due(bool all) {
  take_scans();
  if (!settling_.empty()) {
    // Alert-mode reports waiting for their file to go quiet: looked at again (each stays
    // in settling_ while it is still being written).
    std::vector<Settling> waiting;
    for (const auto& [key, s] : settling_) waiting.push_back(s);
    settle_all_ = all;
    for (auto& s : waiting) reconcile(s.root, s.rel, s.who, Trigger::kRealtime);
    settle_all_ = false;
  }
  const int64_t now = env_.clock().now_ns();
  for (auto it = captures_.begin(); it != captures_.end();) {
    struct stat st {};
    bool due = all || now - it->taken_ns >= kMaxHoldNs || ::fstat(it->fd.get(), &st) != 0;
    if (!due) {
      // ctime moves with every write and every metadata change of the inode.
      const int64_t last = st.st_ctim.tv_sec * 1'000'000'000LL + st.st_ctim.tv_nsec;
      due = now - last >= kQuietNs;
    }
    if (!due) {
      ++it;
      continue;
    }
    Capture c = std::move(*it);
    it = captures_.erase(it);
    finish(c);
  }
  if (all && scan_worker_ && !scans_.empty()) scan_worker_->wait_idle();
  take_scans();
}

void Guard::scan_later(const std::string& event_id, UniqueFd fd, const std::string& rel,
                       std::optional<int64_t> evidence_id) {
  Held& held = held_[event_id];
  const uint64_t id = ++next_scan_id_;
  if (!scan_worker_ || !scan_worker_->submit({id, std::move(fd), rel})) {
    // Bounded (scan_worker.h): a flood of tampered files is restored all the same, and
    // what could not be scanned is said.
    ++counters_.scans_skipped;
    held.scan_skipped = true;
    return;
  }
  ++held.waiting;
  scans_[id] = {event_id, evidence_id};
}

void Guard::take_scans() {
  if (!scan_worker_ || scans_.empty()) return;
  for (auto& done : scan_worker_->take_done()) {
    auto s = scans_.find(done.id);
    if (s == scans_.end()) continue;
    const ScanWait wait = std::move(s->second);
    scans_.erase(s);
    auto h = held_.find(wait.event_id);
    // A scan that failed or gave up (timed_out) is no verdict: nothing is recorded.
    if (!done.verdict || done.verdict->timed_out) {
      ++counters_.failures;
    } else {
      const scan::Verdict& v = *done.verdict;
      evidence::ScanResult result;
      for (const auto& m : *v.matches) result.rules.push_back(m.rule);
      result.truncated = v.truncated;
      if (wait.evidence_id && evidence_)
        if (auto st = evidence_->set_scan(*wait.evidence_id, result);
            !st && st.error().errnum != ENOENT)  // ENOENT: pruned meanwhile
          ++counters_.failures;
      if (h != held_.end()) {
        Held& held = h->second;
        for (auto& rule : result.rules)
          if (std::find(held.scan_rules.begin(), held.scan_rules.end(), rule) ==
              held.scan_rules.end())
            held.scan_rules.push_back(std::move(rule));
        if (!result.rules.empty() && v.truncated) held.scan_truncated = true;
        // The whole content's digest, when nothing else named it (restore mode keeps no
        // copy; a file of another size than its baseline was not hashed).
        if (!held.sha256 && !v.truncated) held.sha256 = v.sha256;
      }
    }
    if (h != held_.end() && --h->second.waiting == 0) release(h);
  }
}

std::optional<int64_t> Guard::next_capture_ns() const {
  // A verdict is a few milliseconds away: the event that waits for it should not wait
  // for quiet's pace.
  if (!scans_.empty()) return env_.clock().now_ns() + kScanPollNs;
  if (captures_.empty() && settling_.empty()) return std::nullopt;
  // Polled often enough to notice quiet soon after it starts.
  return env_.clock().now_ns() + kQuietNs;
}

UniqueFd Guard::content_of(int dir, const std::string& name, const struct stat& st,
                           const std::string& rel) {
  UniqueFd content;
  if (S_ISREG(st.st_mode)) {
    const int fd = ::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) content.reset(fd);
  } else if (S_ISLNK(st.st_mode)) {
    // The link's target is its content.
    if (auto target = fs::read_link_at(dir, name, rel)) {
      const int mfd = ::memfd_create("mamori-link", MFD_CLOEXEC);
      if (mfd >= 0) {
        content.reset(mfd);
        if (!write_all(env_, mfd,
                       {reinterpret_cast<const uint8_t*>(target->data()), target->size()}, rel))
          content.reset();
      }
    }
  }
  return content;
}

Status Guard::quarantine(GuardedRoot& r, const std::string& rel, const evidence::Who& who,
                         Act& act) {
  if (rel.empty())
    return fail("quarantine", r.path, EINVAL, "the root itself is never quarantined");
  auto parent = MAMORI_TRY(fs::open_parent(r.fd.get(), rel));
  const int dir = parent.dir.get();
  const char* name = parent.name.c_str();
  struct stat st {};
  if (::fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return ok();  // gone already
    return fail_errno("fstatat", rel);
  }
  act.action = proto::action::kFileQuarantined;
  // A regular file with other names: those that are baselined are replaced right after
  // (reconcile()), so the inode leaves the tree, not only this name.
  auto note_aliases = [&](const struct stat& s) {
    if (!S_ISREG(s.st_mode) || s.st_nlink < 2) return;
    for (auto& n : index_.names({s.st_dev, s.st_ino})) {
      const bool known = std::any_of(act.aliases.begin(), act.aliases.end(), [&](const auto& a) {
        return a.root == n.root && a.rel == n.rel;
      });
      if (!known) act.aliases.push_back(std::move(n));
    }
  };
  if (S_ISDIR(st.st_mode)) {
    // Iteratively, with one descriptor, however deep (fs/remove_tree.h); each file kept.
    fs::RemoveTreeOptions options;
    options.before_unlink = [&](int d, const std::string& n, const struct stat& s,
                                const std::string& path) {
      note_aliases(s);
      ++act.entries;
      ++counters_.quarantined;
      // Each file kept is scanned too (the event names every rule any of them matched).
      if (UniqueFd content = content_of(d, n, s, path); content.valid())
        defer_capture(r, path, std::move(content), "quarantined", who, nullptr, act,
                      scan_worker_ != nullptr && S_ISREG(s.st_mode));
    };
    fs::RemoveTreeReport removed;
    auto st_tree = fs::remove_tree(dir, parent.name, rel, options, removed);
    counters_.quarantined += removed.directories;
    if (removed.max_depth + 1 > fs::kMaxWalkDepth) act.too_deep = true;
    return st_tree;
  }
  note_aliases(st);
  UniqueFd content = content_of(dir, parent.name, st, rel);
  // Out of the tree first (the web server must stop serving it now), kept afterwards
  // from the open descriptor.
  if (::unlinkat(dir, name, 0) != 0 && errno != ENOENT) return fail_errno("unlink", rel);
  ++counters_.quarantined;
  ++act.entries;
  // What it was, now that it is out of the tree: scanned once kept, on the scan worker
  // (an upload refused by YARA was scanned already). Not here: a flood of new files to
  // quarantine must not cost the guard a scan each.
  const bool scan = scan_worker_ && content.valid() && S_ISREG(st.st_mode) && !act.scanned;
  if (content.valid() && evidence_)
    defer_capture(r, rel, std::move(content), "quarantined", who, nullptr, act, scan);
  else if (scan)
    scan_later(act.event_id, std::move(content), rel, std::nullopt);
  return ok();
}

std::vector<std::string> Guard::scan_rules(int fd, const std::string& rel, Act& act) {
  if (!scanner_) return {};
  auto v = scanner_->scan_fd(fd, rel);
  if (!v) {
    ++counters_.failures;
    return {};
  }
  act.scan_truncated = v->truncated;
  act.scanned = !v->timed_out;
  std::vector<std::string> rules;
  for (const auto& m : *v->matches) rules.push_back(m.rule);
  return rules;
}

Status Guard::restore_subtree(GuardedRoot& r, const std::string& rel, const evidence::Who& who,
                              Act& act) {
  auto report = MAMORI_TRY(baseline::restore(env_, state_.catalog, *state_.store, r.catalog_id,
                                             scan_context(r), rel, false));
  act.action = proto::action::kFileRestored;
  act.entries += report.restored.size();
  counters_.restored += report.restored.size();
  const size_t root = static_cast<size_t>(&r - roots_.data());
  for (const auto& done : report.restored) note_inode(root, done.path);
  for (const auto& added : report.not_in_baseline) {
    if (allowed_new(r, added)) continue;
    MAMORI_TRY(quarantine(r, added, who, act));
    act.action = proto::action::kFileRestored;
  }
  if (!report.errors.empty()) return tl::unexpected(report.errors.front());
  return ok();
}

void Guard::report(GuardedRoot& r, const std::string& rel, const evidence::Who& who,
                   Trigger trigger, Act& act) {
  const bool deploying = r.paused && deploy_ && trigger == Trigger::kRealtime;
  if (deploying) {
    auto& paths = foreign_write_ ? deploy_paths_.foreign : deploy_paths_.deploy;
    size_t total = 0;
    for (const auto& [_, p] : deploy_paths_.deploy) total += p.size();
    for (const auto& [_, p] : deploy_paths_.foreign) total += p.size();
    if (total < kMaxDeployPaths)
      paths[static_cast<size_t>(&r - roots_.data())].insert(rel);
    else
      deploy_paths_.complete = false;
  }
  if (act.action == proto::action::kFileAllowed && !act.error) {
    AllowedWindow& w = allowed_[&r - roots_.data()];
    if (++w.events > config_.allowed_events_per_second) {
      ++w.summarised;
      ++counters_.summarised;
      w.trigger = trigger;
      if (w.paths.size() < kMaxAllowedWindowPaths)
        w.paths.insert(rel);
      else if (!w.paths.contains(rel))
        w.paths_complete = false;
      return;
    }
  }
  // Put back or moved out: what PHP compiled of it goes too (agent/opcache), whether
  // its own event or a summary reports it.
  const bool acted =
      acted_hook_ && !act.error &&
      (act.action == proto::action::kFileRestored || act.action == proto::action::kFileReplaced ||
       act.action == proto::action::kFileQuarantined);
  // Rate accounting: a path repaired again and again, or a storm of changes, is
  // reported in bulk; the actions themselves were all taken. Allowed new files are
  // uploads, not tampering: they never start a storm nor join one (its summary counts
  // toward the healer's tamper rate, and a busy upload day must not drain the node).
  const bool allowed = act.action == proto::action::kFileAllowed;
  if (!allowed) ++window_changes_;
  const uint64_t per_path = allowed ? 0 : ++path_counts_[path_key(r, rel)];
  // An overflow rescan during a storm finds the storm's changes: summarise them too.
  const bool realtime =
      !allowed && (trigger == Trigger::kRealtime || trigger == Trigger::kOverflow);
  if (realtime && !storm_active_ && window_changes_ > config_.storm_changes_per_second) {
    storm_active_ = true;
    storm_changes_ = 0;  // tick() adds each second's changes, this one's first
    ++counters_.storms;
    emit(std::move(
        event::Event(proto::action::kTamperStorm, Severity::kCritical, env_.clock().now_ns())
            .set("mamori.root", r.path)
            .set("mamori.storm.threshold", config_.storm_changes_per_second)
            .message(fmt::format("more than {} changes in one second: reporting in bulk",
                                 config_.storm_changes_per_second))));
  }
  if (realtime && (storm_active_ || per_path > config_.path_restores_per_second)) {
    ++counters_.summarised;
    summarised_paths_.emplace(&r - roots_.data(), rel);
    ++summarised_changes_[&r - roots_.data()];
    if (acted) acted_hook_(r.path, rel, act.action, "");
    if (auto h = held_.find(act.event_id); h != held_.end()) {
      h->second.summarised = true;
      release(h);
    }
    return;
  }

  if (acted) acted_hook_(r.path, rel, act.action, act.event_id);
  const std::string abs = rel.empty() ? r.path : r.path + "/" + rel;
  event::Event e(act.event_id, act.action, act.error ? Severity::kCritical : act.severity,
                 env_.clock().now_ns());
  e.set("event.category", nlohmann::json::array({"file", "intrusion_detection"}));
  e.set("event.type", nlohmann::json::array({act.change == "added"     ? "creation"
                                             : act.change == "removed" ? "deletion"
                                                                       : "change"}));
  e.outcome(act.error ? "failure" : "success");
  e.set("file.path", abs);
  e.set("mamori.root", r.path);
  e.set("mamori.path", rel);
  e.set("mamori.change", act.change);
  e.set("mamori.mode",
        std::string(r.paused && !foreign_write_ ? "deploy" : config::mode_name(r.mode)));
  e.set("mamori.trigger", std::string(trigger_name(trigger)));
  if (deploying) {
    e.set("mamori.deploy.writer", std::string(foreign_write_ ? "foreign" : "deploy"));
    e.set("mamori.deploy.pid", deploy_->root());
  }
  if (trigger == Trigger::kStartup) e.set("mamori.changed_while_down", true);
  if (act.attrs) {
    nlohmann::json attrs = nlohmann::json::array();
    for (auto a : baseline::attr_names(act.attrs)) attrs.push_back(std::string(a));
    e.set("mamori.attrs", attrs);
  }
  if (act.now_sha) e.set("file.hash.sha256", act.now_sha->hex());
  if (act.base_sha) e.set("mamori.baseline.sha256", act.base_sha->hex());
  if (act.entries > 1) e.set("mamori.entries", act.entries);
  if (act.not_captured) e.set("mamori.evidence.not_kept", act.not_captured);
  if (act.written) e.set("mamori.restore.method", std::string(fs::written_name(*act.written)));
  if (!act.scan_rules.empty()) {
    e.set("mamori.scan.rules", act.scan_rules);
    if (act.scan_truncated) e.set("mamori.scan.truncated", true);
  }
  if (auto p = who_json(who); !p.empty()) e.set("process", p);
  if (who.uid >= 0) {
    e.set("user.id", std::to_string(who.uid));
    if (!who.user.empty()) e.set("user.name", who.user);
  }
  if (act.error) e.set("error.message", act.error->message());
  if (!act.reason.empty()) e.set("mamori.reason", act.reason);
  if (!act.aliases.empty()) {
    nlohmann::json names = nlohmann::json::array();
    for (const auto& a : act.aliases)
      names.push_back(a.root < roots_.size() ? roots_[a.root].path + "/" + a.rel : a.rel);
    e.set("mamori.hard_links", names);
  }
  std::string why;
  if (act.reason == "nested-too-deep")
    why = fmt::format(" (nested deeper than {} directories: never verified, so not kept)",
                      fs::kMaxWalkDepth);
  else if (act.reason == "hard-link-to-baselined-file")
    why = " (a hard link to baselined code: every baselined name got a fresh copy)";
  else if (act.reason == "opened-for-writing")
    why =
        " (opened for writing: a fresh copy, so a descriptor or mapping still held writes "
        "into a detached inode)";
  else if (act.reason == "inode-shared")
    why = " (its inode has other names: replaced, never chmod/chown'ed)";
  else if (act.reason == "inode-replaced")
    why = " (not the inode mamori put there: replaced, never chmod/chown'ed)";
  e.message(fmt::format("{} {}{}{}{}", act.action, quote(abs), why,
                        trigger == Trigger::kStartup ? " (changed while the agent was down)" : "",
                        deploying && foreign_write_
                            ? " (written during a deploy by a process outside the deploy)"
                            : ""));
  if (auto h = held_.find(act.event_id); h != held_.end()) {
    // Emitted once its evidence is taken, with the ids and the tampered content's hash.
    h->second.event = std::move(e);
    release(h);
    return;
  }
  emit(std::move(e));
}

void Guard::add_decoy(size_t root, const std::string& rel, const std::string& token) {
  if (root < roots_.size()) decoys_[path_key(roots_[root], rel)] = token;
}

void Guard::decoy_opened(const InodeIndex::Name& n, pid_t pid,
                         std::unordered_map<pid_t, evidence::Who>& who) {
  if (pid <= 0 || pid == ::getpid()) return;
  auto it = who.find(pid);
  if (it == who.end()) it = who.emplace(pid, who_of(pid, users_)).first;
  read_who(it->second);  // a placeholder handle() made for a change of this batch
  const evidence::Who& w = it->second;
  // The web server opens it to serve a request, which the access log's rule judges. By
  // its full path, where only root installs: a tool copied to /tmp/nginx is no server.
  // Started in a mount namespace of its own (ip netns exec, a chroot's), its path reads
  // differently from here: then by the binary's inode.
  static constexpr std::string_view kWebServers[] = {"/usr/sbin/nginx", "/usr/sbin/apache2",
                                                     "/usr/sbin/httpd", "/usr/sbin/lighttpd",
                                                     "/usr/bin/caddy",  "/usr/local/sbin/nginx"};
  if (std::find(std::begin(kWebServers), std::end(kWebServers), w.executable) !=
          std::end(kWebServers) ||
      runs_one_of(pid, kWebServers))
    return;
  const GuardedRoot& r = roots_[n.root];
  const int64_t now = env_.clock().monotonic_ns();
  const std::string key = path_key(r, n.rel) + '\0' + std::to_string(pid);
  if (auto at = decoy_reported_ns_.find(key);
      at != decoy_reported_ns_.end() && now - at->second < kDecoyReportEveryNs)
    return;
  if (decoy_reported_ns_.size() >= kMaxDecoyReports) decoy_reported_ns_.clear();
  decoy_reported_ns_[key] = now;
  const std::string path = r.path + "/" + n.rel;
  event::Event e(proto::action::kDecoyOpened, Severity::kCritical, env_.clock().now_ns());
  e.set("file.path", path).set("mamori.root", r.path).set("mamori.path", n.rel);
  if (auto t = decoys_.find(path_key(r, n.rel)); t != decoys_.end() && !t->second.empty())
    e.set("mamori.decoy.token", t->second);
  if (auto p = who_json(w); !p.empty()) e.set("process", p);
  if (w.uid >= 0) {
    e.set("user.id", std::to_string(w.uid));
    if (!w.user.empty()) e.set("user.name", w.user);
  }
  e.message(fmt::format("decoy {} opened by {} (pid {}{}{})", quote(path),
                        w.executable.empty() ? std::string("a process") : quote(w.executable), pid,
                        w.user.empty() ? "" : ", user ", w.user));
  emit(std::move(e));
}

void Guard::emit(event::Event e) {
  ++counters_.events;
  pending_.push_back(std::move(e));
  if (pending_.size() >= kPublishEvery) (void)flush();  // a failure is the writer's to report
}

void Guard::summarise_allowed() {
  for (auto& [root, w] : std::exchange(allowed_, {})) {
    if (w.summarised == 0) continue;
    const GuardedRoot& r = roots_[root];
    nlohmann::json first = nlohmann::json::array();
    for (const auto& p : w.paths) {
      if (first.size() >= kMaxAllowedSummaryPaths) break;
      first.push_back(p);
    }
    emit(std::move(
        event::Event(proto::action::kFileAllowedSummary, Severity::kInfo, env_.clock().now_ns())
            .set("event.category", nlohmann::json::array({"file"}))
            .set("mamori.root", r.path)
            .set("mamori.mode", std::string(r.paused ? "deploy" : config::mode_name(r.mode)))
            .set("mamori.trigger", std::string(trigger_name(w.trigger)))
            .set("mamori.summary.path_count", w.paths.size())
            .set("mamori.summary.change_count", w.summarised)
            .set("mamori.summary.paths", first)
            .set("mamori.summary.truncated", !w.paths_complete || w.paths.size() > first.size())
            .message(fmt::format("{} more change(s) to {}{} new entries allowed in {} (allow_new) "
                                 "beyond {} reported one by one; the first {} are named",
                                 w.summarised, w.paths_complete ? "" : "more than ", w.paths.size(),
                                 quote(r.path), config_.allowed_events_per_second, first.size()))));
  }
}

void Guard::retry_later(size_t root, const std::string& rel, Trigger trigger) {
  if (roots_[root].mode == config::Mode::kAlert || retries_.size() >= kMaxRetryPaths) return;
  const auto key = std::make_pair(root, rel);
  int& attempts = retries_[key];
  if (trigger != Trigger::kRetry) attempts = 0;
  if (++attempts > kMaxRetries) retries_.erase(key);
}

void Guard::tick() {
  summarise_allowed();
  for (auto pending = std::exchange(retries_, {}); auto& [key, attempts] : pending) {
    retries_[key] = attempts;  // kept only if this attempt fails too (reconcile erases)
    reconcile(key.first, key.second, {}, Trigger::kRetry);
    // A directory put back while the attacker swapped it away half way through its
    // restore is itself right now, and what it should hold may not be there.
    std::unordered_set<std::string> seen;
    look_inside(key.first, key.second, {}, Trigger::kRetry, seen);
  }
  if (!summarised_paths_.empty()) {
    // One summary per root, naming every path (up to a limit) so nothing goes unreported.
    std::map<size_t, std::vector<std::string>> by_root;
    for (const auto& [root, rel] : summarised_paths_) by_root[root].push_back(rel);
    for (auto& [root, paths] : by_root) {
      nlohmann::json list = nlohmann::json::array();
      for (size_t i = 0; i < paths.size() && i < kMaxSummaryPaths; ++i) list.push_back(paths[i]);
      event::Event e(
          storm_active_ ? proto::action::kTamperStormSummary : proto::action::kFileRestoreRepeated,
          Severity::kWarning, env_.clock().now_ns());
      e.set("mamori.root", roots_[root].path);
      e.set("mamori.mode", std::string(config::mode_name(roots_[root].mode)));
      e.set("mamori.summary.paths", list);
      e.set("mamori.summary.path_count", paths.size());
      e.set("mamori.summary.truncated", paths.size() > kMaxSummaryPaths);
      const uint64_t changes = summarised_changes_[root];
      e.set("mamori.summary.change_count", changes);
      e.message(fmt::format("{} change(s) to {} path(s) in the last second; every one was handled",
                            changes, paths.size()));
      emit(std::move(e));
    }
    summarised_paths_.clear();
    summarised_changes_.clear();
  }
  // Every change of the storm counts, the ones before it was declared included.
  if (storm_active_) storm_changes_ += window_changes_;
  if (storm_active_ && window_changes_ <= config_.storm_changes_per_second) {
    storm_active_ = false;
    emit(std::move(
        event::Event(proto::action::kTamperStormEnded, Severity::kNotice, env_.clock().now_ns())
            .set("mamori.storm.changes", storm_changes_)
            .message(fmt::format("tamper storm over after {} changes", storm_changes_))));
    storm_changes_ = 0;
    // A storm's changes raced the restores of one another (a directory swapped away in
    // the middle of its restore): one verify of everything finds what the race left.
    storm_verify_due_ = true;
  }
  const int64_t now = env_.clock().now_ns();
  if (storm_verify_due_ && !storm_active_ &&
      (!storm_verified_ns_ || now - *storm_verified_ns_ >= kStormVerifyEveryNs)) {
    storm_verify_due_ = false;
    storm_verified_ns_ = now;
    for (size_t root = 0; root < roots_.size(); ++root) start_rescan(root, Trigger::kStormOver);
  }
  window_changes_ = 0;
  path_counts_.clear();
}

Status Guard::flush() {
  return publisher_.publish(std::exchange(pending_, {}), std::exchange(rewritten_, {}));
}

// What alert mode reported is forgotten on any change of mode: the next look reports
// (or repairs) afresh.
Status Guard::restore_now(size_t root, const std::string& rel) {
  GuardedRoot& r = roots_[root];
  if (r.paused)
    return fail("restore", r.path, EBUSY,
                "a deploy is running on this root: its end (resume) verifies it");
  const config::Mode mode = std::exchange(r.mode, config::Mode::kPreserve);
  reconcile(root, rel, {}, Trigger::kCommand);
  std::unordered_set<std::string> seen;
  look_inside(root, rel, {}, Trigger::kCommand, seen);
  r.mode = mode;
  alerted_.clear();  // alert mode reports the path again if it changes again
  return flush();
}

void Guard::set_mode(size_t root, config::Mode mode) {
  roots_[root].mode = mode;
  alerted_.clear();
  settling_.clear();  // the verify that follows a mode change looks at everything
  enforcing_changed(root);
}
void Guard::set_paused(size_t root, bool paused) {
  roots_[root].paused = paused;
  alerted_.clear();
  enforcing_changed(root);
}
void Guard::enforcing_changed(size_t root) {
  const GuardedRoot& r = roots_[root];
  if (enforcing_hook_) enforcing_hook_(root, !r.paused && r.mode != config::Mode::kAlert);
}

Status Guard::begin_deploy(pid_t root_pid) {
  if (deploy_)
    return fail("deploy", "", EBUSY,
                fmt::format("a deploy is already running (pid {})", deploy_->root()));
  deploy_ = MAMORI_TRY(DeployTree::start(root_pid));
  deploy_paths_ = {};
  return ok();
}

void Guard::end_deploy() {
  deploy_.reset();
  deploy_paths_ = {};
}

}  // namespace mamori::guard
