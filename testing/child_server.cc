#include "testing/child_server.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string_view>

#include <gtest/gtest.h>

#include "core/base/env.h"

extern char** environ;

namespace mamori::testing {

std::string source_dir() { return MAMORI_SOURCE_DIR; }

ChildServer::ChildServer(const std::string& script, const std::vector<std::string>& args) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << std::strerror(errno);
    return;
  }
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  std::vector<std::string> argv_text = {"/usr/bin/python3",
                                        source_dir() + "/tests/integration/" + script};
  argv_text.insert(argv_text.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_text) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDOUT_FILENO);
  const int rc = ::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    pid_ = -1;
    ADD_FAILURE() << "posix_spawn " << argv[0] << ": " << std::strerror(rc);
    return;
  }
  write_end.reset();  // so a child that dies ends our read with EOF
  stdout_ = std::move(read_end);

  // The first line is the port. The deadline only bounds a server that hangs.
  std::string line;
  const SystemClock clock;
  const auto deadline = clock.monotonic() + std::chrono::seconds(30);
  while (line.find('\n') == std::string::npos) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock.monotonic());
    pollfd p{stdout_.get(), POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      ADD_FAILURE() << script << " did not print its port within 30 s";
      return;
    }
    char buf[64];
    const ssize_t n = ::read(stdout_.get(), buf, sizeof buf);
    if (n <= 0) {
      ADD_FAILURE() << script << " exited before it listened (see its stderr above)";
      return;
    }
    line.append(buf, static_cast<size_t>(n));
  }
  port_ = std::atoi(line.c_str());
  if (port_ <= 0) ADD_FAILURE() << script << " printed no port: " << line;
}

bool ChildServer::stop() {
  if (pid_ <= 0) return false;
  ::kill(pid_, SIGTERM);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

ChildServer::~ChildServer() { stop(); }

}  // namespace mamori::testing
