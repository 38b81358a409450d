#include "agent/gate/watchdog.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/fanotify.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <new>
#include <utility>

namespace mamori::gate {
namespace {

constexpr uid_t kNobody = 65534;

// The child runs after a fork of a threaded process: only async-signal-safe calls from
// here on (no allocation, no locks, no stdio), hence the raw clock.
int64_t monotonic_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void allow(int group, int fd) {
  const fanotify_response r{fd, FAN_ALLOW};
  (void)!::write(group, &r, sizeof r);
}

[[noreturn]] void run(int group, SharedPage& page, int64_t timeout_ns, int tick_ms, pid_t parent) {
  // Nothing of the agent's but the group: no socket, no state file stays open in here.
  if (::dup2(group, 3) < 0) ::_exit(1);
  group = 3;
  ::close_range(4, ~0U, 0);
  ::fcntl(group, F_SETFD, FD_CLOEXEC);
  if (::setgroups(0, nullptr) != 0 || ::setresgid(kNobody, kNobody, kNobody) != 0 ||
      ::setresuid(kNobody, kNobody, kNobody) != 0)
    ::_exit(1);
  // After the uid change, which clears it; then make sure the agent did not die before.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(0);
  ::prctl(PR_SET_NAME, "mamori-gatewd");

  alignas(fanotify_event_metadata) char buf[4096];
  bool episode = false;
  for (;;) {
    const int64_t now = monotonic_ns();
    const int64_t busy = page.busy_since_ns.load();
    const int64_t alive = page.alive_ns.load();
    const bool stalled = busy != 0 ? now - busy > timeout_ns : now - alive > timeout_ns;
    if (!stalled) {
      episode = false;
      ::poll(nullptr, 0, tick_ms);
      continue;
    }
    if (!episode) {
      episode = true;
      page.takeovers.fetch_add(1);
    }
    for (auto& slot : page.slots) {
      uint32_t pending = SharedPage::kPending;
      if (!slot.state.compare_exchange_strong(pending, SharedPage::kClaimed)) continue;
      page.answered.fetch_add(1);  // before the answer: whoever it releases sees it counted
      allow(group, slot.fd.load());
      slot.state.store(SharedPage::kAnswered);
    }
    ssize_t len;
    while ((len = ::read(group, buf, sizeof buf)) > 0) {
      for (auto* m = reinterpret_cast<const fanotify_event_metadata*>(buf); FAN_EVENT_OK(m, len);
           m = FAN_EVENT_NEXT(m, len)) {
        if (m->fd < 0) continue;
        page.answered.fetch_add(1);
        allow(group, m->fd);
        ::close(m->fd);
      }
    }
    pollfd p{group, POLLIN, 0};
    ::poll(&p, 1, tick_ms);  // the next event, or the gate's return
  }
}

}  // namespace

Result<Watchdog> Watchdog::start(int fanotify_fd, uint32_t timeout_ms) {
  void* mem = ::mmap(nullptr, sizeof(SharedPage), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return fail_errno("mmap", "the gate's watchdog page");
  auto* page = new (mem) SharedPage();
  page->alive_ns.store(monotonic_ns());
  const int64_t timeout_ns = static_cast<int64_t>(timeout_ms) * 1'000'000;
  const int tick = tick_ms(timeout_ms);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    ::munmap(mem, sizeof(SharedPage));
    errno = e;
    return fail_errno("fork", "the gate's watchdog");
  }
  if (pid == 0) run(fanotify_fd, *page, timeout_ns, tick, parent);
  return Watchdog(page, pid);
}

int Watchdog::tick_ms(uint32_t timeout_ms) {
  return static_cast<int>(std::clamp<uint32_t>(timeout_ms / 4, 1, 50));
}

Watchdog::Watchdog(Watchdog&& other) noexcept
    : page_(std::exchange(other.page_, nullptr)), pid_(std::exchange(other.pid_, -1)) {}

Watchdog::~Watchdog() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  if (page_) ::munmap(page_, sizeof(SharedPage));
}

bool Watchdog::alive() {
  if (pid_ <= 0) return false;
  if (::waitpid(pid_, nullptr, WNOHANG) == 0) return true;
  pid_ = -1;
  return false;
}

}  // namespace mamori::gate
