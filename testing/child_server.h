#pragma once
// Test support: a server script of tests/integration/ (smtp_server.py, webhook_server.py)
// run as a child process on a port of its own. The script prints its port as the first
// line of stdout once it listens; the constructor waits for that line (the event itself,
// no sleeping), at most 30 s. The destructor stops the child (SIGTERM) and reaps it.

#include <sys/types.h>

#include <string>
#include <vector>

#include "core/base/unique_fd.h"

namespace mamori::testing {

class ChildServer {
 public:
  // Runs Debian's /usr/bin/python3 (which has python3-aiosmtpd) on
  // MAMORI_SOURCE_DIR/tests/integration/`script` with `args`. On failure the test gets a
  // failure and port() is 0.
  ChildServer(const std::string& script, const std::vector<std::string>& args);
  ~ChildServer();
  ChildServer(const ChildServer&) = delete;
  ChildServer& operator=(const ChildServer&) = delete;

  int port() const { return port_; }
  // SIGTERM, then waits for the exit; true when it exited with status 0.
  bool stop();

 private:
  pid_t pid_ = -1;
  UniqueFd stdout_;
  int port_ = 0;
};

// The source tree (MAMORI_SOURCE_DIR), for scripts and data.
std::string source_dir();

}  // namespace mamori::testing
