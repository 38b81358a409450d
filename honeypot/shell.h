#pragma once
// The emulated system an accepted login sees: a host made from a per-node seed (its name,
// kernel build, users, uptime differ from node to node, so no static tell-tale answers
// fingerprint the honeypot), and a small command set run against it. Nothing runs on the
// real host and the shell fetches nothing: `wget`/`curl` only name their URL (the server
// fetches it in a sandbox when [downloads] fetch is on: fetch.h).
//
// Bounds: a command line longer than Limits::command_bytes is cut (and reported cut); one
// command's output is at most Limits::output_bytes.
//
// Pure and deterministic for a seed: tests pin the output.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mamori::honeypot {

struct FakeSystem {
  std::string hostname;
  std::string kernel_release;  // "6.1.0-18-amd64"
  std::string kernel_version;  // "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)"
  std::string admin_user;      // a human user listed in /etc/passwd
  uint32_t admin_uid = 1000;
  uint32_t uptime_days = 0;
  uint32_t cpus = 2;
};

// The fake system of a node with `seed` (random per node, kept in its state directory);
// `hostname` non-empty overrides the made-up name.
FakeSystem make_fake_system(uint64_t seed, std::string_view hostname = {});

// What one command line did.
struct ShellResult {
  std::string output;                  // CR LF line ends (a terminal's), bounded
  int exit_status = 0;                 // of the last command
  bool exit = false;                   // `exit` / `logout`
  bool truncated = false;              // the line was cut to the limit
  std::vector<std::string> downloads;  // URLs wget/curl were asked for
};

class Shell {
 public:
  Shell(const FakeSystem& system, std::string user, uint32_t command_bytes, uint32_t output_bytes);

  // Runs one line (commands separated by ';', '&&', '||' or newlines; a pipeline runs its
  // first command only).
  ShellResult run(std::string_view line);
  std::string prompt() const;
  const std::string& cwd() const { return cwd_; }

 private:
  void run_one(const std::vector<std::string>& argv, ShellResult& r);
  std::string home() const;

  const FakeSystem& system_;
  std::string user_;
  uint32_t command_bytes_, output_bytes_;
  std::string cwd_;
};

// Splits a command into words: whitespace-separated, with '...' and "..." quoting.
std::vector<std::string> split_words(std::string_view command);

}  // namespace mamori::honeypot
