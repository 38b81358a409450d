#include "agent/gate/open_gate.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "core/base/env.h"
#include "core/fs/admin_files.h"
#include "core/fs/beneath.h"
#include "core/fs/handle.h"
#include "core/fs/walk.h"
#include "core/hash/sha256.h"

namespace mamori::gate {
namespace {

// Reads are checked with FAN_ACCESS_PERM, not Linux 6.14's FAN_PRE_ACCESS: a directory's
// mark takes FAN_PRE_ACCESS | FAN_EVENT_ON_CHILD without error, but no read of a child
// raises it (measured on 6.18: tests/integration/open_gate_test.sh read tampered bytes
// through an open made before the write), and a mark per file would cost a mark for each
// of a million files.
constexpr uint64_t kMask = FAN_OPEN_PERM | FAN_ACCESS_PERM | FAN_EVENT_ON_CHILD;
// A file just written may still be written within the same tick of the filesystem's
// timestamps without its ctime moving (coarse timestamps): a verdict is only kept for an
// identity whose ctime is older than this.
constexpr int64_t kSettledNs = 50'000'000;
constexpr int64_t kClaimWaitNs = 100'000'000;
constexpr int64_t kSpinNs = 50'000;

const SystemClock& real_clock() {
  static const SystemClock clock;
  return clock;
}

// A POSIX access ACL can grant another user write; an error other than "none" counts as
// one (not known to be locked).
bool has_acl(ssize_t got) { return got >= 0 || (errno != ENODATA && errno != EOPNOTSUPP); }

int64_t ns_of(const timespec& t) {
  return static_cast<int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

}  // namespace

Result<std::unique_ptr<OpenGate>> OpenGate::create(const std::string& state_dir, Options options) {
  const int fd = ::fanotify_init(FAN_CLOEXEC | FAN_NONBLOCK | FAN_CLASS_CONTENT,
                                 O_RDONLY | O_LARGEFILE | O_CLOEXEC);
  if (fd < 0) return fail_errno("fanotify_init (permission events)", "");
  return std::unique_ptr<OpenGate>(new OpenGate(UniqueFd(fd), state_dir, options));
}

OpenGate::OpenGate(UniqueFd group, std::string state_dir, Options options)
    : group_(std::move(group)),
      state_dir_(std::move(state_dir)),
      options_(options),
      self_(::getpid()) {}

OpenGate::~OpenGate() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    (void)!::write(stop_.get(), &one, sizeof one);
    thread_.join();
  }
  watchdog_.reset();
  // Closing the group (group_'s destructor) allows whatever still waits.
}

Status OpenGate::add_root(GateRoot root, int root_fd) {
  const int dup = ::fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return fail_errno("dup", root.path);
  roots_.push_back({std::move(root), UniqueFd(dup)});
  return ok();
}

Status OpenGate::start() {
  // Read before the marks: with it off, any user may link a file they cannot write.
  if (auto v = fs::read_small_file("/proc/sys/fs/protected_hardlinks", 16))
    protected_hardlinks_ = v->starts_with('1');
  catalog_.emplace(MAMORI_TRY(baseline::Catalog::open(state_dir_, db::Db::Mode::kReadOnly)));
  enforcing_ = std::make_unique<std::atomic<bool>[]>(roots_.size());
  for (size_t i = 0; i < roots_.size(); ++i) enforcing_[i].store(roots_[i].config.enforcing);
  const int stop = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop < 0) return fail_errno("eventfd", "");
  stop_.reset(stop);
  watchdog_.emplace(MAMORI_TRY(Watchdog::start(group_.get(), options_.timeout_ms)));
  thread_ = std::thread([this] { run(); });
  // Marks last: from the first one on, opens there wait for the thread.
  for (const auto& r : roots_) mark_tree(r, "");
  if (directories_.load() == 0)
    return fail("open gate", roots_.empty() ? "" : roots_[0].config.path, EINVAL,
                "no directory could be marked for permission events");
  return ok();
}

template <typename Dir, typename File>
void OpenGate::walk_tree(const Root& root, const std::string& top, Dir visit, File file) {
  std::vector<std::string> todo{top};
  while (!todo.empty()) {
    std::string rel = std::move(todo.back());
    todo.pop_back();
    if (!rel.empty() && root.config.exclude.matches(rel)) continue;
    if (static_cast<size_t>(std::count(rel.begin(), rel.end(), '/')) >= fs::kMaxWalkDepth) continue;
    auto dir = fs::open_beneath(root.fd.get(), rel, O_RDONLY | O_DIRECTORY);
    if (!dir) continue;  // gone or swapped for a non-directory meanwhile
    if (!visit(dir->get(), rel)) continue;
    DIR* d = ::fdopendir(dir->release());
    if (!d) continue;
    while (const dirent* e = ::readdir(d)) {
      const std::string_view name = e->d_name;
      if (name == "." || name == "..") continue;
      bool is_dir = e->d_type == DT_DIR;
      if (e->d_type == DT_UNKNOWN) {
        struct stat st {};
        is_dir =
            ::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
      }
      if (is_dir)
        todo.push_back(fs::join(rel, name));
      else
        file(::dirfd(d), e->d_name);
    }
    ::closedir(d);
  }
}

void OpenGate::mark_tree(const Root& root, const std::string& top) {
  walk_tree(
      root, top,
      [this](int dir_fd, const std::string&) {
        if (::fanotify_mark(group_.get(), FAN_MARK_ADD, kMask, dir_fd, nullptr) != 0) {
          ++mark_failures_;
          return false;
        }
        ++directories_;
        return true;
      },
      [](int, const char*) {});
}

void OpenGate::unlock(const Root& root, const std::string& rel, bool tree) {
  // By path lookup (fanotify_mark with a name), not by an open: the agent's own open of
  // a file would wait on the gate, and there is nothing to open for a file not locked.
  // No such mark (ENOENT) is the common case. Only the open bit goes: reads stay unasked
  // until the next write, as for any file found to be its baseline's.
  auto take_back = [this](int dir_fd, const char* name) {
    (void)::fanotify_mark(group_.get(),
                          FAN_MARK_REMOVE | FAN_MARK_IGNORED_MASK | FAN_MARK_DONT_FOLLOW,
                          FAN_OPEN_PERM, dir_fd, name);
  };
  if (!tree) {
    if (!rel.empty()) take_back(root.fd.get(), rel.c_str());
    return;
  }
  walk_tree(
      root, rel, [](int, const std::string&) { return true; }, take_back);
}

void OpenGate::set_enforcing(size_t index, bool on) {
  for (size_t i = 0; i < roots_.size(); ++i)
    if (roots_[i].config.index == index && enforcing_[i].exchange(on) != on) ++generation_;
}

void OpenGate::note_changes(const std::vector<watch::Change>& changes) {
  for (const auto& c : changes) {
    if (c.what & watch::kOpened) continue;  // an open changes nothing (lost opens neither)
    // A lost change may have been any of the below: every file of the root is asked again.
    const bool lost = c.what & watch::kOverflow;
    if (!lost && !(c.what & (watch::kCreated | watch::kAttrib))) continue;
    const bool dir = lost || (c.what & watch::kIsDir);
    for (const auto& r : roots_) {
      if (r.config.index != c.root) continue;
      if (!dir) {  // its mode, owner or ACL, or a new name (rename, link)
        unlock(r, c.rel, false);
        continue;
      }
      // A directory's mode, owner or ACL, or a directory moved or created: who may rename
      // what beneath it may have changed. The generation moves first (skip_asking()).
      ++directory_generation_;
      if (c.what & watch::kCreated) mark_tree(r, c.rel);
      unlock(r, lost ? std::string() : c.rel, true);
    }
  }
}

void OpenGate::run() {
  auto& page = watchdog_->page();
  const int tick = Watchdog::tick_ms(options_.timeout_ms);
  // The largest batch whose every event has a slot (no event is smaller than its
  // metadata): an event read without a slot would be answered by nobody.
  std::vector<char> batch(SharedPage::kSlots * sizeof(fanotify_event_metadata));
  while (true) {
    pollfd fds[2] = {{group_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    const int n = ::poll(fds, 2, tick);
    page.alive_ns.store(real_clock().monotonic_ns());
    if (n < 0 && errno != EINTR) break;
    if (fds[1].revents & POLLIN) break;
    if (!(fds[0].revents & POLLIN)) continue;
    // A reader's next open follows its last answer within microseconds, and waking a
    // sleeping thread costs tens of them (more on a VM): after a batch the gate keeps
    // reading for kSpinNs before it sleeps again.
    int64_t last = real_clock().monotonic_ns();
    while (true) {
      page.busy_since_ns.store(real_clock().monotonic_ns());
      const ssize_t len = ::read(group_.get(), batch.data(), batch.size());
      if (len > 0) decide_batch(batch.data(), len);
      page.busy_since_ns.store(0);
      const int64_t now = real_clock().monotonic_ns();
      page.alive_ns.store(now);
      if (len > 0) last = now;
      if (now - last > kSpinNs) break;
    }
  }
}

void OpenGate::decide_batch(const char* buf, ssize_t len) {
  auto& page = watchdog_->page();
  // Every event gets its slot before the first decision, so that the watchdog can answer
  // all of them if that decision is the one that hangs.
  struct Pending {
    const fanotify_event_metadata* meta;
    SharedPage::Slot* slot;
  };
  Pending pending[SharedPage::kSlots];
  size_t count = 0;
  for (auto* m = reinterpret_cast<const fanotify_event_metadata*>(buf);
       FAN_EVENT_OK(m, len) && count < SharedPage::kSlots; m = FAN_EVENT_NEXT(m, len)) {
    if (m->vers != FANOTIFY_METADATA_VERSION || m->fd < 0) continue;
    auto& slot = page.slots[count];
    slot.fd.store(m->fd);
    slot.state.store(SharedPage::kPending);
    pending[count++] = {m, &slot};
  }
  for (size_t i = 0; i < count; ++i) {
    const int fd = pending[i].meta->fd;
    const Verdict v = decide(fd, pending[i].meta->pid, pending[i].meta->mask);
    auto& slot = *pending[i].slot;
    uint32_t expected = SharedPage::kPending;
    if (slot.state.compare_exchange_strong(expected, SharedPage::kFree)) {
      const fanotify_response r{fd,
                                static_cast<__u32>(v == Verdict::kAllow ? FAN_ALLOW : FAN_DENY)};
      (void)!::write(group_.get(), &r, sizeof r);
    } else {
      // The watchdog answers for us: wait for its write before the fd number can be
      // reused. A watchdog killed between its claim and its write would leave the opener
      // waiting for ever: past kClaimWaitNs the gate answers itself (the kernel ignores a
      // second answer).
      const int64_t claimed = real_clock().monotonic_ns();
      while (slot.state.load() != SharedPage::kAnswered) {
        if (real_clock().monotonic_ns() - claimed > kClaimWaitNs) {
          const fanotify_response r{fd, FAN_ALLOW};
          (void)!::write(group_.get(), &r, sizeof r);
          break;
        }
        ::sched_yield();
      }
      slot.state.store(SharedPage::kFree);
      ++late_;
    }
    ::close(fd);
  }
}

OpenGate::Verdict OpenGate::decide(int fd, pid_t pid, uint64_t mask) {
  ++events_;
  if (pid == self_) {
    ++own_;
    return Verdict::kAllow;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return Verdict::kAllow;
  if (const uint64_t g = generation_.load(); g != seen_generation_) {
    known_.clear();  // a root's enforcement changed: what was judged under it is not
    seen_generation_ = g;
  }
  bool allowed_before = false;  // this identity was allowed, too recently to trust its times
  if (auto it = known_.find({st.st_dev, st.st_ino}); it != known_.end()) {
    Known& k = it->second;
    if (k.size == st.st_size && k.mtime_ns == ns_of(st.st_mtim) &&
        k.ctime_ns == ns_of(st.st_ctim)) {
      if (!k.good) {
        report_denial(k.root, k.rel, k.reason, pid);
        return Verdict::kDeny;
      }
      if (k.settled) {
        // Asked to open it again: not locked. A directory above it may have been made
        // writable by others (unlocked) and locked again since: try once per change.
        if (k.verified && (mask & FAN_OPEN_PERM) &&
            k.lock_generation != directory_generation_.load()) {
          k.lock_generation = directory_generation_.load();
          std::string rel;
          if (const std::string path = fs::path_of_fd(fd); !path.empty())
            if (const auto root = locate(path, rel)) skip_asking(fd, st, *root, rel);
        }
        return Verdict::kAllow;
      }
      allowed_before = true;
    }
  }
  const uint64_t lock_generation = directory_generation_.load();
  Judgement j = judge(fd, st, allowed_before);
  remember(st, j, lock_generation);
  if (j.verified) skip_asking(fd, st, j.root, j.rel);
  if (j.verdict == Verdict::kDeny) {
    if (j.reason == "no-name")
      ++denied_;  // no root, no path to report it under
    else
      report_denial(j.root, j.rel, j.reason, pid);
  }
  return j.verdict;
}

OpenGate::Judgement OpenGate::judge(int fd, const struct stat& st, bool allowed_before) {
  Judgement j;
  const std::string path = fs::path_of_fd(fd);
  if (path.empty()) {
    // No name left: the inode the guard just renamed the original over (its reader
    // opened it before the write), or a file unlinked while open. Only what was allowed
    // as it is now may still be read.
    if (!allowed_before && any_enforcing()) {
      j.verdict = Verdict::kDeny;
      j.reason = "no-name";
    }
    return j;
  }
  const auto root = locate(path, j.rel);
  if (!root) return j;  // a marked directory moved out of its root
  j.root = *root;
  const Root& r = roots_[*root];
  if (!enforcing_[*root].load()) return j;
  j.cacheable = true;  // judged on the inode alone: a rename or link moves its ctime
  if (r.config.exclude.matches(j.rel)) return j;
  ++verified_;
  auto entry = catalog_->get(r.config.catalog_id, j.rel);
  if (!entry) {
    j.cacheable = false;
    return j;  // the catalog cannot answer: allow (the watchdog's rule, sooner)
  }
  if (!*entry) {
    if (!r.config.uploads.allows_open_file(fd, j.rel)) {
      j.verdict = Verdict::kDeny;
      j.reason = "not-in-baseline";
    }
    return j;
  }
  const baseline::Entry& want = **entry;
  if (want.type != baseline::FileType::kRegular) {
    j.verdict = Verdict::kDeny;
    j.reason = "type";
  } else if (!same_content(fd, st, want)) {
    j.verdict = Verdict::kDeny;
    j.reason = "tampered";
  } else {
    j.verified = true;
  }
  return j;
}

bool OpenGate::same_content(int fd, const struct stat& st, const baseline::Entry& want) {
  if (static_cast<uint64_t>(st.st_size) != want.size) return false;
  // The inode init or accept hashed, untouched since (ctime cannot be set back).
  if (want.ino == st.st_ino && want.ctime_ns == ns_of(st.st_ctim) &&
      want.mtime_ns == ns_of(st.st_mtim))
    return true;
  hash::Sha256 sha;
  off_t at = 0;
  while (true) {
    const ssize_t n = ::pread(fd, buf_.data(), buf_.size(), at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;  // unreadable: not known to be the baseline's
    if (n == 0) break;
    sha.update(std::span<const uint8_t>(buf_.data(), static_cast<size_t>(n)));
    at += n;
  }
  return static_cast<uint64_t>(at) == want.size && sha.finish() == want.sha256;
}

void OpenGate::remember(const struct stat& st, const Judgement& j, uint64_t lock_generation) {
  if (!j.cacheable) return;
  if (known_.size() >= kMaxKnown) known_.clear();
  Known k;
  k.size = st.st_size;
  k.mtime_ns = ns_of(st.st_mtim);
  k.ctime_ns = ns_of(st.st_ctim);
  k.good = j.verdict == Verdict::kAllow;
  k.verified = j.verified;
  k.lock_generation = lock_generation;
  // Denials are kept whatever the times; an allow is trusted alone only once its ctime is
  // older than the filesystem's timestamp granularity.
  k.settled = !k.good || k.ctime_ns <= real_clock().now_ns() - kSettledNs;
  k.root = static_cast<uint32_t>(j.root);
  if (!k.good) {
    k.rel = j.rel;
    k.reason = j.reason;
  }
  known_[guard::InodeId{st.st_dev, st.st_ino}] = std::move(k);
}

void OpenGate::skip_asking(int fd, const struct stat& st, size_t root, const std::string& rel) {
  // Only once the times can be trusted (kSettledNs), as for the verdicts kept, and while
  // the kernel takes evictable ignore marks (5.19+); each costs one of the user's marks.
  if (!skip_reads_ || ns_of(st.st_ctim) > real_clock().now_ns() - kSettledNs) return;
  const uint64_t generation = directory_generation_.load();
  const bool opens = lockable(fd, st, root, rel);
  const uint64_t mask = FAN_ACCESS_PERM | (opens ? FAN_OPEN_PERM : 0);
  if (::fanotify_mark(group_.get(), FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | FAN_MARK_EVICTABLE, mask,
                      fd, nullptr) != 0) {
    if (errno == EINVAL || errno == ENOSPC)
      skip_reads_ = false;  // no such marks here, or no marks left: everything is asked
    return;
  }
  // A write, chmod, rename or link between the fstat the verdict rests on and the mark
  // moved the times (a write after the mark clears it itself); a directory change may
  // have been unlocked before the mark was there: take the mark back.
  struct stat now {};
  if (::fstat(fd, &now) != 0 || now.st_size != st.st_size ||
      ns_of(now.st_mtim) != ns_of(st.st_mtim) || ns_of(now.st_ctim) != ns_of(st.st_ctim) ||
      (opens && directory_generation_.load() != generation)) {
    (void)::fanotify_mark(group_.get(), FAN_MARK_REMOVE | FAN_MARK_IGNORED_MASK, mask, fd, nullptr);
    return;
  }
  ++reads_skipped_;
  if (opens) ++opens_skipped_;
}

bool OpenGate::lockable(int fd, const struct stat& st, size_t root, const std::string& rel) {
  // Another user could write it, or link it where another content belongs (without
  // fs.protected_hardlinks, anyone may link a file they cannot write).
  if (!protected_hardlinks_ || st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0 ||
      st.st_nlink != 1)
    return false;
  if (has_acl(::fgetxattr(fd, "system.posix_acl_access", nullptr, 0))) return false;
  // Open for writing somewhere: its writer may have a shared mapping, whose writes the
  // kernel does not count as modifications (the ignore mark would stay). A read lease is
  // refused while the file is open for writing (fs/open_for_writing.h); a writer opening
  // it in the microseconds the lease is held makes the kernel send SIGIO, which the agent
  // ignores.
  if (::fcntl(fd, F_SETLEASE, F_RDLCK) != 0) return false;
  (void)::fcntl(fd, F_SETLEASE, F_UNLCK);
  if (!directory_locked(root, "")) return false;
  for (size_t slash = rel.find('/'); slash != std::string::npos; slash = rel.find('/', slash + 1))
    if (!directory_locked(root, rel.substr(0, slash))) return false;
  return true;
}

bool OpenGate::directory_locked(size_t root, const std::string& dir) {
  if (const uint64_t g = directory_generation_.load(); g != seen_directory_generation_) {
    directories_locked_.clear();
    seen_directory_generation_ = g;
  }
  std::string key = std::to_string(root) + '/' + dir;
  if (auto it = directories_locked_.find(key); it != directories_locked_.end()) return it->second;
  // By path (fstatat, getxattr): no directory is opened on the gate's thread.
  const int root_fd = roots_[root].fd.get();
  struct stat st {};
  bool locked = ::fstatat(root_fd, dir.c_str(), &st,
                          AT_SYMLINK_NOFOLLOW | (dir.empty() ? AT_EMPTY_PATH : 0)) == 0 &&
                S_ISDIR(st.st_mode) && st.st_uid == 0 && (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
  if (locked) {
    // The root itself through its /proc link (followed: lgetxattr would ask the link).
    std::string path = "/proc/self/fd/" + std::to_string(root_fd);
    if (dir.empty())
      locked = !has_acl(::getxattr(path.c_str(), "system.posix_acl_access", nullptr, 0));
    else
      locked =
          !has_acl(::lgetxattr((path + "/" + dir).c_str(), "system.posix_acl_access", nullptr, 0));
  }
  if (directories_locked_.size() >= kMaxDirectoryVerdicts) directories_locked_.clear();
  directories_locked_.emplace(std::move(key), locked);
  return locked;
}

bool OpenGate::any_enforcing() const {
  for (size_t i = 0; i < roots_.size(); ++i)
    if (enforcing_[i].load()) return true;
  return false;
}

std::optional<size_t> OpenGate::locate(const std::string& path, std::string& rel) const {
  for (size_t i = 0; i < roots_.size(); ++i) {
    if (auto within = fs::relative_to(roots_[i].config.path, path)) {
      rel = std::move(*within);
      return i;
    }
  }
  return std::nullopt;
}

void OpenGate::report_denial(size_t root, const std::string& rel, const std::string& reason,
                             pid_t pid) {
  ++denied_;
  const int64_t now = real_clock().now_ns();
  if (now - denial_window_ns_ >= 1'000'000'000) {
    denial_window_ns_ = now;
    denials_in_window_ = 0;
  }
  if (++denials_in_window_ > kMaxDenials) {
    MutexLock lock(mu_);
    ++dropped_;
    return;
  }
  Denial d{roots_[root].config.index, rel, reason, guard::who_of(pid, users_), now};
  MutexLock lock(mu_);
  denials_.push_back(std::move(d));
}

std::vector<Denial> OpenGate::take_denials(uint64_t& dropped) {
  MutexLock lock(mu_);
  dropped = std::exchange(dropped_, 0);
  return std::exchange(denials_, {});
}

GateStats OpenGate::stats() {
  GateStats s;
  s.events = events_.load();
  s.own = own_.load();
  s.verified = verified_.load();
  s.denied = denied_.load();
  s.late = late_.load();
  s.directories = directories_.load();
  s.mark_failures = mark_failures_.load();
  s.reads_unasked = reads_skipped_.load();
  s.opens_unasked = opens_skipped_.load();
  if (watchdog_) {
    s.takeovers = watchdog_->page().takeovers.load();
    s.unchecked = watchdog_->page().answered.load();
    s.watchdog_alive = watchdog_->alive();
  }
  return s;
}

}  // namespace mamori::gate
