#pragma once
// The evidence store: tampered contents and files quarantined out of a protected tree,
// kept with who changed them and when, under STATE/evidence/. Each item is one zstd
// blob named by its id plus one row in STATE/evidence/index.db (SQLite, WAL); the blob
// is fsync()ed before its row commits, so a row never points at missing bytes. A size
// quota keeps the directory bounded: adding past it prunes the least important items (see Priority)
// first and says which. Format: docs/formats/evidence.md.
//
// Threads: one owner (the agent's guard thread); readers in other processes (the CLI)
// open their own EvidenceStore with Access::kRead. One writer at a time: kWrite takes
// an exclusive flock() on STATE/evidence/lock (EBUSY when another process holds it) and
// removes what a crashed writer left behind (blobs no row names).

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/env.h"
#include "core/base/result.h"
#include "core/hash/sha256.h"

namespace mamori::evidence {

// Who made a change, as far as the kernel told us (fanotify gives the pid; the rest is
// read from /proc at once). Fields the kernel did not give are empty / -1.
struct Who {
  int64_t pid = -1;
  std::string executable;    // /proc/PID/exe
  std::string command_line;  // /proc/PID/cmdline, NULs as spaces
  int64_t uid = -1;          // real uid
  std::string user;          // its name, or "" when unknown
  int64_t ppid = -1;
  std::string parent_executable;
};

// What YARA said about an item's content.
struct ScanResult {
  std::vector<std::string> rules;  // the rules that matched, in match order; empty: none
  bool truncated = false;          // only the content's first bytes were scanned
  bool operator==(const ScanResult&) const = default;
};

struct Item {
  int64_t id = 0;          // assigned by add(); increasing
  int64_t time_ns = 0;     // when mamori took it (add() fills it in when 0)
  std::string event_id;    // the event that reported it (core/event)
  std::string root;        // absolute root path
  std::string path;        // relative to root (may hold any byte but NUL)
  std::string reason;      // "modified" | "created" | "replaced" ...: why it was taken
  hash::Digest sha256;     // of the content kept: all of it, or the prefix when truncated
  uint64_t size = 0;       // full content size (the file's size when truncated)
  bool truncated = false;  // content longer than the per-item limit: only a prefix kept
  uint32_t mode = 0;       // st_mode of the tampered inode (type and permissions)
  uint32_t uid = 0;
  uint32_t gid = 0;
  int64_t mtime_ns = 0;
  Who who;
  std::optional<hash::Digest> baseline_sha256;  // what the file should have held, if known
  // YARA's verdict on the content (core/scan), once it was scanned: in add()'s `meta`, or
  // later through set_scan() (the agent scans a tampered file off its restore path).
  // nullopt: not scanned (no rules configured, the scan failed, or an older store).
  std::optional<ScanResult> scan;
  // Not stored: set by add() when the same content was kept already. The item returned
  // is then that earlier one (its id, path and who); nothing new was written.
  bool duplicate = false;
};

// Pruning order under the quota: lowest priority first, oldest first within one. What
// matters in an incident is what the attacker can run and how it started; a burst (a
// quarantined directory of 77 files, one event) must not flush everything else.
inline constexpr int kPriorityExecutable = 3;  // a script or program: "<?php", "#!", ELF,
                                               // an exec bit, a script extension
inline constexpr int kPriorityFirst = 2;       // among the first items of its event
inline constexpr int kPriorityOrdinary = 1;    // the rest, up to kMaxPerIncident per event
inline constexpr int kPriorityBurst = 0;       // beyond kMaxPerIncident items of one event
inline constexpr size_t kFirstPerIncident = 4;
// True when the name ends in a script or program extension (.php, .phtml, .sh, .js, ...;
// any case): what an attacker runs. Part of the executable class above.
bool script_name(std::string_view path);
inline constexpr size_t kMaxPerIncident = 16;

struct Options {
  uint64_t quota_bytes = 1ull << 30;      // stored (compressed) bytes, all items
  uint64_t max_item_bytes = 64ull << 20;  // content beyond this is not kept (truncated=true)
};

class EvidenceStore {
 public:
  enum class Access { kRead, kWrite };
  // Opens (kWrite: creates, mode 0700) STATE/evidence. kRead fails with ENOENT when
  // nothing was ever kept.
  static Result<std::unique_ptr<EvidenceStore>> open(Env& env, const std::string& state_dir,
                                                     Access access, Options options = {});
  ~EvidenceStore();

  // Copies the content of `fd` (read from offset 0 with pread, whatever its position)
  // into a new item described by `meta` (id, sha256, size and truncated are filled in
  // here). At most max_item_bytes are read, plus one byte to tell whether there is more:
  // a larger file is kept truncated, its size taken from fstat, its sha256 that of the
  // kept prefix, so no file (however large or sparse) costs more than the limit. A content
  // already kept (same sha256, not truncated) is stored once: the earlier item is returned
  // with `duplicate` set. Then prunes, in the same transaction, by priority then age (the
  // new item included: when it is the least important, it is the one dropped and appears
  // in `pruned`) while the store is over its quota; `pruned` (replaced, not appended to)
  // receives the items dropped. An item alone is kept, even over the quota. Fails cleanly (nothing
  // half-added, nothing pruned) on ENOSPC, EIO or an unreadable fd; EROFS for a kRead store.
  Result<Item> add(Item meta, int fd, std::vector<Item>* pruned = nullptr);

  // Newest first; at most `limit` (0 = all).
  Result<std::vector<Item>> list(size_t limit = 0);
  Result<std::optional<Item>> get(int64_t id);
  // Records YARA's verdict on item `id` (replacing any earlier one); ENOENT for an
  // unknown id (pruned meanwhile), EROFS for a kRead store.
  Status set_scan(int64_t id, const ScanResult& scan);
  // Streams the kept content to `sink` in chunks; ENOENT for an unknown id; EBADMSG if
  // the blob is damaged or missing. The sink may have seen bad bytes by then, so it must
  // only make its output visible once read() returns success.
  Status read(int64_t id, const std::function<Status(std::span<const uint8_t>)>& sink);

  struct Usage {
    uint64_t items = 0;
    uint64_t stored_bytes = 0;
  };
  Result<Usage> usage();

 private:
  struct Impl;
  explicit EvidenceStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mamori::evidence
