#pragma once
// The SSH listener: one thread, one libssh event loop (ssh_event) for every connection,
// non-blocking throughout, so an idle connection costs its libssh session and a small
// record, not a thread or a process.
//
// A connection's life:
//   accept()      Admission (limits.h) refuses past the session limits at once;
//   peek          the client's version line and KEXINIT are read with MSG_PEEK
//                 (kexinit.h: HASSH) while libssh waits, then the connection event;
//   key exchange  libssh, with OpenSSH's algorithm order and the host's sshd banner;
//   auth          every password and public-key attempt is an event; an accepted
//                 credential gets the emulated shell (shell.h), others are refused;
//                 auth_attempts past the limit disconnects;
//   shell / exec  every command line is an event, wget/curl URLs download events
//                 (fetched by a sandboxed child when [downloads] fetch is on: fetch.h;
//                 the event is written when the fetch is over);
//   end           peer gone, `exit`, session_seconds or session_bytes reached, or
//                 shutdown: a session-ended event with duration and bytes.
//
// Events go to the outbox given (flushed at most every 100 ms, and at stop).
// The daemon's own log (stderr) gets only what an operator acts on: the outbox failing
// and recovering. Security events are never log lines.
//
// Threads: run() on one thread; request_stop() and request_reopen() from a signal handler.

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/base/env.h"
#include "core/base/result.h"
#include "core/base/unique_fd.h"
#include "core/event/origin.h"
#include "core/outbox/outbox.h"
#include "honeypot/config.h"
#include "honeypot/downloads.h"
#include "honeypot/setup.h"
#include "honeypot/shell.h"

namespace mamori::honeypot {

class Server {
 public:
  // What [downloads] fetch = true needs: the honeypot's own binary (opened before the
  // privilege drop: fetch.h execs it) and STATE/downloads.
  struct Fetching {
    UniqueFd exe;
    std::optional<DownloadStore> store;
  };
  // Takes the host keys (their ssh_key objects) and the listening socket.
  static Result<std::unique_ptr<Server>> create(Env& env, const Config& config, std::string banner,
                                                FakeSystem system, std::vector<HostKey> keys,
                                                UniqueFd listen_fd, outbox::Outbox& outbox,
                                                const event::Origin& origin,
                                                Fetching fetching = {});
  ~Server();

  // Serves until request_stop(); ends every open connection before it returns.
  Status run();
  static void request_stop();
  // Reopens the outbox's export file (events.jsonl) on the loop's next round (SIGHUP).
  static void request_reopen();

  struct Conn;
  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mamori::honeypot
