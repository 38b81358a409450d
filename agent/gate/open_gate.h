#pragma once
// The open gate (docs/open-gate.md): tampered bytes are never served. fanotify
// permission events on every directory of the roots the guard puts back (restore and
// preserve mode, not while a deploy pauses the root) make the kernel ask mamori before
// another process opens or reads a regular file there, and the gate answers from the
// file itself (the event's fd):
//   - mamori's own opens (restores, verifies, evidence) are allowed at once;
//   - an inode whose identity (device, inode, size, mtime, ctime) the gate judged before
//     gets the same answer: ctime cannot be set from user space, so any write, rename or
//     link since makes a new identity, judged again;
//   - otherwise the path's baseline entry (the catalog, through a read-only connection of
//     the gate's own): the catalog's own identity for it, or the same size and SHA-256,
//     is allowed; anything else is denied;
//   - a file the baseline does not have is allowed where the root lets new files stay
//     (exclude, allow_new) and denied where the guard is about to quarantine it, so a
//     dropped web shell never runs.
// A file found to be its baseline's is not asked about again until it is written (an
// ignore mark the kernel clears at the next write or truncate): its reads always, its
// opens too when no other user than root can change what its path serves (locked:
// lockable()); a change of its mode, owner, ACL or name, or of a directory above it,
// reported by the guard's watcher (note_changes), takes the open part back.
// Denied, not held: the open is already bound to the attacker's inode, and the guard
// puts the original back as a new inode that only a new open can reach. The reader gets
// EPERM (nginx answers 403 or 500) for the milliseconds until the restore, never the
// attacker's bytes.
//
// It never hangs the host: permission events come only from the roots' directories
// (inode marks with FAN_EVENT_ON_CHILD, never a filesystem or mount mark); the gate's
// thread opens no path (the event's fd, /proc and the state directory only), so mamori's
// own opens never wait on a decision that waits on them; a watchdog process (watchdog.h)
// answers "allow" when the gate has not within the timeout, and says so; a killed agent
// releases every waiting open (the kernel does when the group closes).
//
// Threads: decisions on the gate's own; the rest from the agent's thread.

#include <sys/stat.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "agent/gate/watchdog.h"
#include "agent/guard/inode_index.h"
#include "agent/guard/who.h"
#include "agent/watch/watcher.h"
#include "core/base/mutex.h"
#include "core/base/result.h"
#include "core/base/unique_fd.h"
#include "core/baseline/catalog.h"
#include "core/fs/glob.h"
#include "core/fs/upload_policy.h"

namespace mamori::gate {

struct GateRoot {
  size_t index = 0;  // the guard's
  std::string path;  // resolved, no trailing '/' (but "/" itself)
  int64_t catalog_id = 0;
  fs::PathMatcher exclude;
  fs::UploadPolicy uploads;
  bool enforcing = true;  // at start (an alert-mode root is not, until set_enforcing)
};

// An open or read the gate refused.
struct Denial {
  size_t root = 0;  // the guard's index
  std::string rel;
  // "tampered" (not the baseline's content), "not-in-baseline" (a new file the root does
  // not let stay), "type" (no longer a regular file)
  std::string reason;
  evidence::Who who;
  int64_t time_ns = 0;
};

struct GateStats {
  uint64_t events = 0;    // permission events answered by the gate
  uint64_t own = 0;       // of them mamori's own
  uint64_t verified = 0;  // judged from the catalog (not from the gate's memory)
  uint64_t denied = 0;
  uint64_t late = 0;           // answered by the watchdog while the gate was deciding
  uint64_t takeovers = 0;      // episodes the watchdog answered for the gate
  uint64_t unchecked = 0;      // events the watchdog allowed
  uint64_t directories = 0;    // directories marked
  uint64_t reads_unasked = 0;  // inodes whose reads stopped being asked about (skip_asking)
  uint64_t opens_unasked = 0;  // of them, inodes whose opens stopped being asked about too
  uint64_t mark_failures = 0;  // directories that could not be marked
  bool watchdog_alive = false;
};

class OpenGate {
 public:
  struct Options {
    uint32_t timeout_ms = 250;  // the watchdog allows what waits longer
  };
  // A group of class FAN_CLASS_CONTENT: FAN_OPEN_PERM for opens, FAN_ACCESS_PERM for
  // each read (a file opened before a write is judged again when read). Fails when there
  // are no permission events (CONFIG_FANOTIFY_ACCESS_PERMISSIONS off, no CAP_SYS_ADMIN);
  // the agent then runs without the gate and says so.
  static Result<std::unique_ptr<OpenGate>> create(const std::string& state_dir, Options options);
  ~OpenGate();
  OpenGate(const OpenGate&) = delete;
  OpenGate& operator=(const OpenGate&) = delete;

  // Before start(). `root_fd` is the root, opened.
  Status add_root(GateRoot root, int root_fd);
  // Starts the watchdog and the thread, then marks every directory of the roots.
  Status start();
  // How reads are checked (mamori status).
  static constexpr std::string_view kReadCheck = "FAN_ACCESS_PERM";

  // Whether root `index` (the guard's) is enforced now: false in alert mode and while a
  // deploy pauses it (everything is allowed there).
  void set_enforcing(size_t index, bool on);
  // New directories (created or moved in) of the roots get their mark; a file whose
  // mode, owner, ACL or name changed, and every file under a directory whose did, is
  // asked about again at its next open (unlock).
  void note_changes(const std::vector<watch::Change>& changes);
  // The denials since the last call (at most kMaxDenials a second; the rest counted in
  // `dropped`).
  std::vector<Denial> take_denials(uint64_t& dropped);
  GateStats stats();
  static constexpr size_t kMaxDenials = 64;  // reported a second; the rest counted

 private:
  OpenGate(UniqueFd group, std::string state_dir, Options options);
  struct Root {
    GateRoot config;
    UniqueFd fd;
  };
  // An identity judged before: its verdict holds while size, mtime and ctime do.
  struct Known {
    off_t size = 0;
    int64_t mtime_ns = 0;
    int64_t ctime_ns = 0;
    bool good = false;
    bool settled = false;          // an allow with a ctime too recent is only trusted for no-name
    bool verified = false;         // the baseline's: asked again, it may be locked (skip_asking)
    uint64_t lock_generation = 0;  // directory_generation_ when skip_asking last ran
    uint32_t root = 0;             // a denial's root position, path and reason, for its report
    std::string rel;
    std::string reason;
  };
  enum class Verdict { kAllow, kDeny };
  struct Judgement {
    Verdict verdict = Verdict::kAllow;
    bool cacheable = false;  // depends on the content only, not on the path or the mode
    bool verified = false;   // the baseline's content for its path
    size_t root = 0;         // position in roots_
    std::string rel;
    std::string reason;
  };

  void run();
  void decide_batch(const char* buf, ssize_t len);
  Verdict decide(int fd, pid_t pid, uint64_t mask);
  // `allowed_before`: this very identity was allowed moments ago.
  Judgement judge(int fd, const struct stat& st, bool allowed_before);
  bool any_enforcing() const;
  // The root position holding absolute `path` and the path relative to it.
  std::optional<size_t> locate(const std::string& path, std::string& rel) const;
  bool same_content(int fd, const struct stat& st, const baseline::Entry& want);
  void remember(const struct stat& st, const Judgement& j, uint64_t lock_generation);
  // The inode open as `fd`, just found to be its baseline's at root position `root`,
  // path `rel`, stops being asked about until it is written: an ignore mark that the
  // kernel clears at the inode's next modification (write, truncate; not a write through
  // a shared mapping, hence the writers check in lockable()), and drops with the inode
  // (FAN_MARK_EVICTABLE, so nothing is pinned). Its reads always; its opens too when
  // lockable() says that no other user than root can change what the path serves.
  void skip_asking(int fd, const struct stat& st, size_t root, const std::string& rel);
  // No process but root's can change the bytes this path serves without a new permission
  // event: a root-owned regular file with no group or other write bit, no ACL, one link
  // (fs.protected_hardlinks on), open for writing nowhere (a read lease can be had), in
  // directories from the root down that are all the same (so nobody else can rename it
  // or put another inode at its path).
  bool lockable(int fd, const struct stat& st, size_t root, const std::string& rel);
  bool directory_locked(size_t root, const std::string& dir);
  // Takes back the open ignore mark of the file at `rel` (a path lookup: nothing is
  // opened), or of every file under directory `rel`.
  void unlock(const Root& root, const std::string& rel, bool tree);
  void report_denial(size_t root, const std::string& rel, const std::string& reason, pid_t pid);
  void mark_tree(const Root& root, const std::string& rel);
  // Walks the directories under `top` (excluded ones skipped): `visit(dir_fd, rel)` for
  // each, and `file(dir_fd, name)` for each entry that is not a directory.
  template <typename Dir, typename File>
  void walk_tree(const Root& root, const std::string& top, Dir visit, File file);

  UniqueFd group_;
  std::string state_dir_;
  Options options_;
  pid_t self_ = 0;
  std::vector<Root> roots_;                         // fixed once started
  std::unique_ptr<std::atomic<bool>[]> enforcing_;  // by position in roots_
  std::atomic<uint64_t> generation_{0};             // bumped by each change of enforcing_
  std::optional<Watchdog> watchdog_;
  UniqueFd stop_;  // eventfd: the thread's end
  std::thread thread_;

  // The gate thread's own.
  std::optional<baseline::Catalog> catalog_;
  std::unordered_map<guard::InodeId, Known, guard::InodeIdHash> known_;
  uint64_t seen_generation_ = 0;
  static constexpr size_t kMaxKnown = 1 << 18;  // cleared when full: only costs re-judging
  std::vector<uint8_t> buf_ = std::vector<uint8_t>(256 * 1024);
  guard::UserNames users_;
  int64_t denial_window_ns_ = 0;
  size_t denials_in_window_ = 0;

  std::atomic<uint64_t> events_{0}, own_{0}, verified_{0}, denied_{0}, late_{0};
  std::atomic<uint64_t> directories_{0}, mark_failures_{0}, reads_skipped_{0};
  std::atomic<uint64_t> opens_skipped_{0};
  bool skip_reads_ = true;  // the gate thread's: false once the kernel refused such a mark
  bool protected_hardlinks_ = false;  // fs.protected_hardlinks = 1, read at start()
  // Bumped (before its unlock) by every change that may make a directory writable by
  // others: the gate's directory verdicts made before it are dropped, and a lock taken
  // while it moved is taken back.
  std::atomic<uint64_t> directory_generation_{0};
  // The gate thread's: directory verdicts by root position and path.
  std::unordered_map<std::string, bool> directories_locked_;
  uint64_t seen_directory_generation_ = 0;
  static constexpr size_t kMaxDirectoryVerdicts = 1 << 16;  // cleared when full

  Mutex mu_;
  std::vector<Denial> denials_ MAMORI_GUARDED_BY(mu_);
  uint64_t dropped_ MAMORI_GUARDED_BY(mu_) = 0;
};

}  // namespace mamori::gate
