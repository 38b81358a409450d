#pragma once
// Fetching a URL an attacker named ([downloads] fetch = true; docs/honeypot.md,
// "Downloads"), in a child process that can do little else.
//
// The parent (the server's loop) forks and at once execs the honeypot's own binary
// (opened as /proc/self/exe before the privilege drop, so it is the same file) with
// --fetch-child: nothing of the parent's memory (host keys, sessions) survives the exec,
// and only three descriptors do: stdin /dev/null, stdout a memfd the body is written to,
// fd 3 a pipe for one JSON status line. The child then, before it parses a byte from the
// network: caps its CPU time, file size (the memfd: the kernel stops a write past
// max_kb), open files, address space and core size with rlimits, keeps
// PR_SET_NO_NEW_PRIVS (inherited from the dropped honeypot), and installs a seccomp
// filter that kills it on execve, fork, ptrace, mount, namespaces, module and kexec
// calls (threads stay: libcurl resolves names on one). libcurl then fetches with http
// and https only (redirects too, at most 5), no proxy from the environment (the
// environment is empty), a time limit, a write callback that stops at max_kb, and an
// open-socket callback that refuses every address that is not public (SSRF: a name
// resolving to 127.0.0.1 or a redirect to 169.254.169.254 is refused at connect). What
// was fetched is never executed, opened as anything but bytes, or trusted: the parent
// reads the memfd itself (at most max_kb), hashes it itself, and bounds every field of
// the status line.
//
// The parent kills a child still running timeout + 2 s after it started.

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/base/result.h"
#include "core/base/unique_fd.h"

namespace mamori::honeypot {

struct FetchRequest {
  std::string url;
  uint64_t max_bytes = 0;
  uint32_t timeout_s = 30;
  bool allow_private = false;
};

// What a finished child said and left, bounded and checked by the parent.
struct FetchOutcome {
  std::string result;        // kResultFetched, kResultRefused or kResultFailed (downloads.h)
  std::string policy;        // the policy that refused, cut or failed it; "" none
  std::string error;         // why it failed (libcurl's text, an HTTP status), at most 256 bytes
  std::string content_type;  // the response's, at most 128 bytes
  long http_status = 0;
  bool truncated = false;
  std::string body;  // at most max_bytes
};

// The child side: runs the fetch with the sandbox above and exits. argv parsing is
// main.cc's; this never returns.
[[noreturn]] void fetch_child_main(const FetchRequest& req);

// One running child.
class FetchProcess {
 public:
  // Forks and execs `exe_fd` with --fetch-child and the request's arguments.
  static Result<FetchProcess> spawn(int exe_fd, const FetchRequest& req);
  FetchProcess(FetchProcess&&) noexcept;
  FetchProcess& operator=(FetchProcess&&) noexcept;
  ~FetchProcess();  // kills and reaps a child still running

  // The outcome once the child has exited (never blocks); nullopt while it runs.
  std::optional<FetchOutcome> poll();
  // SIGKILL and reap; the outcome is a failure with `policy`.
  FetchOutcome kill(std::string_view policy, std::string_view why);
  pid_t pid() const { return pid_; }

 private:
  FetchProcess() = default;
  FetchOutcome collect(int status);

  pid_t pid_ = -1;
  UniqueFd body_;    // the memfd
  UniqueFd status_;  // the pipe's read end
  uint64_t max_bytes_ = 0;
};

}  // namespace mamori::honeypot
