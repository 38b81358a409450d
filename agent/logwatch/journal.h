#pragma once
// Follows sshd's messages in the systemd journal ([[log]] source = "journal",
// docs/formats/other-logs.md), where a local user cannot forge them.
//
// Anyone on the host can write "sshd[1]: Failed password for root from A" to syslog
// (`logger -t sshd`), and rsyslog files it in auth.log like sshd's own: reading auth.log,
// mamori would ban whatever address a local user names. The journal records, beside the
// message, fields the sender cannot choose: _UID comes from the socket's credentials
// (SCM_CREDENTIALS, checked by the kernel), _PID and _COMM with it. A message tagged
// sshd is sshd's only when its _UID is 0: sshd logs as root (the monitor relays its
// unprivileged child's messages), and a process of another user that names itself sshd
// is a forgery, reported (`on_forged`) and never judged.
//
// Each of sshd's messages is handed on as the line rsyslog would have written
// (`2026-12-07T11:33:29.123456+00:00 HOST sshd[PID]: MESSAGE`, RFC 3339, which the sshd
// format reads), with control characters in MESSAGE made spaces: one entry is one line.
//
// Where reading starts: after the saved cursor (save()) when there is one; otherwise at
// the journal's end, as a first start must not ban anyone on history. Not thread-safe:
// one owner, which polls fd() and calls read().

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/base/env.h"
#include "core/base/result.h"

struct sd_journal;

namespace mamori::logwatch {

struct JournalOptions {
  std::string directory;    // a journal directory; empty = the local system journal
  std::string cursor_path;  // where the position is kept; empty = never resume
};

// A message tagged sshd that sshd did not send.
struct ForgedEntry {
  uid_t uid = 0;
  pid_t pid = 0;
  std::string comm;  // _COMM, _EXE: empty when the sender was gone before journald looked
  std::string exe;
  std::string message;
  int64_t time_ns = 0;
};

class JournalReader {
 public:
  using Line = std::function<void(std::string_view line)>;
  using Forged = std::function<void(const ForgedEntry&)>;

  static Result<std::unique_ptr<JournalReader>> open(Env& env, JournalOptions options);
  ~JournalReader();
  JournalReader(const JournalReader&) = delete;
  JournalReader& operator=(const JournalReader&) = delete;

  // To poll for POLLIN; read() after it fires (and now and then: the journal's files
  // rotate under it).
  int fd() const { return fd_; }
  // Up to `max` entries; true when more are waiting.
  Result<bool> read(const Line& line, const Forged& forged, size_t max);
  // Keeps the position (atomically replaced file); a no-op when nothing was read since.
  Status save();

  uint64_t entries() const { return entries_; }
  uint64_t forged() const { return forged_; }

  // Entries tagged with these SYSLOG_IDENTIFIERs are sshd's candidates (OpenSSH 9.8+ logs
  // from sshd-session).
  static constexpr std::string_view kIdentifiers[] = {"sshd", "sshd-session"};
  static constexpr size_t kMaxMessage = 16 * 1024;  // longer: cut (the sshd format skips it)

 private:
  JournalReader(Env& env, sd_journal* journal, JournalOptions options);
  std::string field(std::string_view name);

  Env& env_;
  sd_journal* journal_ = nullptr;
  JournalOptions options_;
  int fd_ = -1;
  std::string cursor_;  // of the last entry read; empty until one is
  bool dirty_ = false;
  bool current_unread_ = false;  // resumed on an entry after the saved one
  uint64_t entries_ = 0, forged_ = 0;
};

}  // namespace mamori::logwatch
