#include "agent/exec/run_command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/base/env.h"
#include "core/base/unique_fd.h"

extern char** environ;

namespace mamori::exec {
namespace {

// This process's environment with `extra` ("NAME=value") added or replacing.
std::vector<std::string> child_environment(const std::vector<std::string>& extra) {
  auto name_of = [](std::string_view kv) { return kv.substr(0, kv.find('=')); };
  std::vector<std::string> out;
  for (char** e = environ; e && *e; ++e) {
    const std::string_view kv(*e);
    if (std::none_of(extra.begin(), extra.end(),
                     [&](const std::string& x) { return name_of(x) == name_of(kv); }))
      out.emplace_back(kv);
  }
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Reads what `fd` has now, keeping up to `limit` bytes in `out` (the rest is read and
// dropped, so a chatty command never blocks on a full pipe). False at EOF or on an error.
bool drain(int fd, std::string& out, size_t limit, bool& truncated) {
  char buf[4096];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      const size_t keep = std::min(static_cast<size_t>(n), limit - std::min(limit, out.size()));
      out.append(buf, keep);
      if (keep < static_cast<size_t>(n)) truncated = true;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return n < 0 && errno == EAGAIN;
  }
}

std::optional<pid_t> spawn(const std::vector<std::string>& argv,
                           const std::vector<std::string>& extra_env, int stdin_fd, int output_fd,
                           CommandResult& result) {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_adddup2(&actions, stdin_fd, 0);
  posix_spawn_file_actions_adddup2(&actions, output_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, output_fd, 2);
  // Descriptors without O_CLOEXEC (a library's) must not leak into the command either.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  // Its own process group, so the timeout reaches whatever the command started; default
  // dispositions and no blocked signals (the agent blocks SIGTERM for its signalfd, and
  // a blocked SIGTERM would survive exec).
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);

  std::vector<std::string> args = argv;
  std::vector<std::string> env = child_environment(extra_env);
  auto c_argv = c_strings(args);
  auto c_env = c_strings(env);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, argv[0].c_str(), &actions, &attr, c_argv.data(), c_env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    result.error = Error{"posix_spawn", argv[0], rc, {}};
    return std::nullopt;
  }
  return pid;
}

}  // namespace

std::string CommandResult::describe() const {
  if (error) return error->message();
  if (timed_out) return fmt::format("timed out after {} ms", duration_ms);
  std::string text = signal ? fmt::format("killed by signal {}", *signal)
                            : fmt::format("exited {}", exit_code.value_or(-1));
  std::string_view out = output;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.remove_suffix(1);
  if (!out.empty()) text += fmt::format(": {}", out);
  return text;
}

CommandResult run_command(const std::vector<std::string>& argv, std::string_view input,
                          const std::vector<std::string>& env, std::chrono::milliseconds timeout,
                          int stop_fd) {
  CommandResult r;
  r.argv0 = argv.empty() ? "" : argv[0];
  // A command runs in real time, whatever clock the caller's code is driven by.
  const SystemClock clock;
  const auto t0 = clock.monotonic();
  auto finish = [&] {
    r.duration_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(clock.monotonic() - t0).count();
    return std::move(r);
  };
  if (argv.empty()) {
    r.error = Error{"hook", "", EINVAL, "no command configured"};
    return finish();
  }
  int sv[2], out[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    r.error = Error{"socketpair", r.argv0, errno, {}};
    return finish();
  }
  UniqueFd stdin_ours(sv[0]), stdin_theirs(sv[1]);
  if (::pipe2(out, O_CLOEXEC) != 0) {
    r.error = Error{"pipe2", r.argv0, errno, {}};
    return finish();
  }
  UniqueFd output_ours(out[0]), output_theirs(out[1]);
  const auto pid = spawn(argv, env, stdin_theirs.get(), output_theirs.get(), r);
  stdin_theirs.reset();
  output_theirs.reset();
  if (!pid) return finish();

  // Through syscall(): Debian 12's <sys/pidfd.h> lacks extern "C" for C++.
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, *pid, 0)));
  if (!pidfd.valid()) {
    r.error = Error{"pidfd_open", r.argv0, errno, {}};
    ::kill(-*pid, SIGKILL);
    ::waitpid(*pid, nullptr, 0);
    return finish();
  }
  ::fcntl(stdin_ours.get(), F_SETFL, O_NONBLOCK);
  ::fcntl(output_ours.get(), F_SETFL, O_NONBLOCK);
  size_t sent = 0;
  if (input.empty()) stdin_ours.reset();

  auto term_at = t0 + timeout;
  std::optional<std::chrono::nanoseconds> kill_at;
  bool exited = false;
  while (!exited) {
    pollfd fds[4] = {{pidfd.get(), POLLIN, 0},
                     {stop_fd, POLLIN, 0},
                     {output_ours.get(), POLLIN, 0},
                     {stdin_ours.get(), POLLOUT, 0}};  // fd -1 is skipped by poll()
    const auto next = kill_at ? *kill_at : term_at;
    const auto wait_ms = std::chrono::ceil<std::chrono::milliseconds>(next - clock.monotonic());
    if (::poll(fds, 4, static_cast<int>(std::max<int64_t>(0, wait_ms.count()))) < 0 &&
        errno != EINTR) {
      // Cannot wait any more: do not leave the command running unobserved.
      ::kill(-*pid, SIGKILL);
      kill_at = clock.monotonic();
    }
    if (fds[0].revents) exited = true;
    if (fds[1].revents && !r.error) {  // the caller is stopping
      ::kill(-*pid, SIGKILL);
      r.error = Error{"hook", r.argv0, 0, "killed: the agent is stopping"};
    }
    if (fds[2].revents && !drain(output_ours.get(), r.output, kMaxOutput, r.output_truncated))
      output_ours.reset();
    if (fds[3].revents) {
      const ssize_t n = ::send(stdin_ours.get(), input.data() + sent, input.size() - sent,
                               MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) sent += static_cast<size_t>(n);
      // Done, or the command closed its stdin (EPIPE): either way it gets no more.
      if (sent == input.size() || (n < 0 && errno != EAGAIN && errno != EINTR)) stdin_ours.reset();
    }
    const auto now = clock.monotonic();
    if (!exited && !kill_at && now >= term_at) {
      r.timed_out = true;
      ::kill(-*pid, SIGTERM);
      kill_at = now + kKillGrace;
    } else if (!exited && kill_at && now >= *kill_at) {
      ::kill(-*pid, SIGKILL);
      kill_at = now + kKillGrace;  // poll again; the pidfd reports the exit
    }
  }
  // What the command wrote before it exited; not waiting for EOF, which a background
  // child holding the pipe could postpone for ever.
  if (output_ours.valid()) drain(output_ours.get(), r.output, kMaxOutput, r.output_truncated);
  int status = 0;
  while (::waitpid(*pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  return finish();
}

}  // namespace mamori::exec
