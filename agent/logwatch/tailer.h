#pragma once
// Follows web access logs (files mamori does not write) line by line, in real time,
// through rotation, and resumes where it stopped after a restart.
//
// No thread of its own and no timer: the owner polls fd() and calls read(), which hands
// complete lines to a callback, at most `max_lines` per call so that one busy log cannot
// starve the loop (call again while it says more is pending). Time (Env's clock) only
// decides when a rotated file may be closed. Not thread-safe: one owner thread.
//
// What it sees, through inotify on each log's DIRECTORY (the writer sends us no signal):
// - Appends. A last line without its '\n' is held until the '\n' arrives.
// - Rotation by rename + create (logrotate's default). The renamed file keeps being read
//   (nginx writes to it until it reopens its logs on USR1, worker by worker) and its
//   lines come before the new file's when both have data. It is closed once it is read
//   to its end, has not grown for `rotate_wait_ms`, and the file now at the path has data
//   (the writers have moved over); a partial line it held is then delivered, marked
//   `unterminated`. Until then nothing is lost or read twice; a line written to it after
//   it was closed is lost. Closing happens in read(), so an owner that wants the fd back
//   promptly calls read() now and then (e.g. with save()), not only on fd() events.
// - Truncation in place (copytruncate): a file shorter than our offset, or whose bytes
//   before our offset are no longer those we read (fs::FileCursor's fingerprint: new content
//   longer than the old is caught too), is read again from its start; a partial line it
//   held is delivered, marked `unterminated`.
// - Deletion ("a log deleted under us"): the open file is read to its end and followed
//   (its writer may still append to it) until a new file at the path has data, then
//   closed like a renamed one.
// - Creation: a path that does not exist (nor its directories: the closest existing
//   ancestor is watched until they appear) is followed once created, from its first byte.
// - A lost inotify event (queue overflow) makes every path be looked at again.
// A renamed file that left the directory (logrotate's olddir) is read only when its path
// sees activity, or on read() calls.
//
// Where reading starts:
// - A saved position (see save()) for the same inode whose fingerprint still matches: at
//   that offset (no gap, no double count). Truncated since, or the inode number reused
//   by another file: from 0.
// - A saved position for another inode: the rotated file (PATH.1 with the saved device
//   and inode) is finished first, then the file at the path is read from 0. The saved
//   file gone: the file at the path is new, read from 0.
// - No saved position, a file already there when the tailer starts (also one that can
//   only be opened later): at its END (unless `from_start`), because a first start must
//   not ban anyone on a year of history. A file created while the tailer runs: from 0.
//
// Limits (counted in stats()): a line longer than max_line_bytes is never skipped: its
// first max_line_bytes are delivered, marked `truncated`, once its '\n' arrives, and the
// rest is read past in bounded memory (never buffered whole): in an access log the
// client address and the request come first, and padding a header must not hide them;
// at most max_files paths; at most kMaxStreamsPerPath
// open files per path (rotated faster than read: the oldest is given up, counted).
// Bytes are bytes: binary garbage and invalid UTF-8 are passed on as they are.
//
// Paths: the last component must be a regular file and is never followed if it is a
// symlink (an error naming the path: configure the file it points to), so that a log
// directory writable by a web user cannot point mamori at another file, and a rotation
// is always seen in the directory we watch. Directories on the way are followed. A path
// that cannot be opened (permissions, symlink, FIFO) is an error for that path only,
// reported through on_error and tried again on the next event in its directory.

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/base/env.h"
#include "core/base/result.h"
#include "core/base/unique_fd.h"
#include "core/fs/tail_cursor.h"

namespace mamori::logwatch {

struct TailerOptions {
  std::vector<std::string> paths;  // file_index in callbacks is the index here
  // Where positions are kept (STATE/logwatch/positions.json); empty = never resume.
  std::string positions_path;
  bool from_start = false;  // read files that exist at start from their first byte
  size_t max_line_bytes = 16 << 10;
  size_t max_files = 256;
  int64_t rotate_wait_ms = 5000;
  // false: save() writes where the owner's last commit() points, not where the last
  // delivered line ends; for owners that process lines after on_line returns.
  bool commit_on_delivery = true;
  // A path's problem began, changed (`error` set) or ended (nullopt). kPositions for
  // the positions file (unreadable or corrupt: every file is treated as never seen).
  std::function<void(size_t file_index, const std::optional<Error>& error)> on_error;
};

// Where a delivered line is, for evidence and for commit().
struct LinePos {
  uint64_t offset = 0;        // of the line's first byte, in the file next.dev/next.ino
  fs::FileCursor next;        // just past the line (and its '\n'): where reading resumes
  bool unterminated = false;  // a last line without '\n', cut short by rotation or truncation
  bool truncated = false;     // only the first max_line_bytes of a longer line
};

struct TailerStats {
  uint64_t lines = 0;            // delivered, unterminated ones included
  uint64_t bytes = 0;            // of delivered lines, with their '\n'
  uint64_t too_long = 0;         // lines longer than max_line_bytes (delivered truncated)
  uint64_t truncated_tails = 0;  // unterminated lines delivered
  uint64_t rotations = 0;        // a path came to name another file, or none
  uint64_t truncations = 0;      // files found truncated, read again from 0
  uint64_t reopen_errors = 0;    // failed attempts to open a path
  uint64_t unread_dropped = 0;   // rotated files closed unread (kMaxStreamsPerPath)
  uint64_t overflows = 0;        // inotify queue overflows (every path is looked at again)
};

class Tailer {
 public:
  using LineFn = std::function<void(size_t file_index, std::string_view line, const LinePos& pos)>;
  static constexpr size_t kPositions = SIZE_MAX;
  static constexpr size_t kMaxStreamsPerPath = 4;  // the file at the path + rotated ones

  // Fails on invalid options (too many or duplicate paths) or if inotify is not
  // available; a missing or unreadable log is not a failure (see on_error). `env` gives
  // the clock and the atomic write of the positions file; it must outlive the tailer.
  static Result<std::unique_ptr<Tailer>> create(Env& env, TailerOptions options);
  ~Tailer();  // does not save()

  // Readable when read() has something to do.
  int fd() const { return inotify_.get(); }

  // Handles what inotify reported, then delivers up to `max_lines` new lines (oldest
  // file of a path first). `on_line` must not call the tailer, except commit(); `line`
  // is valid during the call only. Returns whether lines are left for another call.
  // An error means inotify itself failed; a file's problem is never one.
  Result<bool> read(const LineFn& on_line, size_t max_lines);

  // With commit_on_delivery = false: the owner has processed the line at `pos`.
  void commit(size_t file_index, const LinePos& pos);

  // Writes every path's position to positions_path atomically (0600; its directory is
  // made if missing), unless nothing moved since the last save. Call it about once a
  // second; on failure the previous file stays. The format (JSON, one line):
  //   {"version":1,"files":[{"path":P,"dev":D,"ino":I,"offset":O,"tail_len":L,
  //                          "tail_hash":H}]}
  // `offset` is where reading resumes in the file dev/ino, and tail_len/tail_hash the
  // fingerprint of the bytes before it (fs::FileCursor). Paths not followed any more are
  // dropped; a path that is not UTF-8 is stored mangled and so not resumed. Positions are
  // those of the last line delivered (commit_on_delivery) or commit()ed, per path.
  Status save();

  const TailerStats& stats() const { return stats_; }
  const std::optional<Error>& file_error(size_t file_index) const {
    return files_[file_index].error;
  }
  const std::string& path(size_t file_index) const { return files_[file_index].path; }

 private:
  struct Stream {
    UniqueFd fd;
    struct stat st {};
    fs::FileCursor at;        // past the last line delivered or skipped
    uint64_t read_off = 0;    // past the bytes consumed: `at`, then `partial` or a skipped part
    std::string partial;      // a line whose '\n' is not there yet (while skipping: its start)
    bool skipping = false;    // inside a line longer than max_line_bytes
    uint64_t long_start = 0;  // where that line began
    bool progressed = false;  // `at` moved since the stream was opened
    int64_t last_growth_ns = 0;
  };
  struct File {
    std::string path, name;
    size_t dir = 0;
    std::vector<Stream> streams;              // oldest first
    bool has_current = false;                 // streams.back() is the file at the path
    bool started = false;                     // opened, or found missing, once (the end-or-0 rule)
    bool created = false;                     // a file was created at the path since we started
    bool check = false;                       // look at the path again
    bool dirty = false;                       // a stream may have unread bytes
    std::optional<fs::FileCursor> saved;      // the position when no stream is open
    std::optional<fs::FileCursor> committed;  // commit_on_delivery = false
    std::optional<Error> error;
  };
  struct Dir {
    std::string path;
    int wd = -1;
    bool self = false;      // watching the directory itself, not an ancestor
    bool reattach = false;  // its watch must be set up again
    std::vector<size_t> files;
  };
  struct Probe;

  Tailer(Env& env, TailerOptions options, UniqueFd inotify);
  void load_positions();
  void attach(size_t dir);
  void detach(size_t dir);
  Status handle_events();
  void on_event(int wd, uint32_t mask, std::string_view name);
  static Probe probe(const std::string& path, const Stream* current);
  void check_path(size_t file);
  void first_open(size_t file, Probe& probe);
  Stream open_stream(Probe& probe, uint64_t offset);
  void push_stream(size_t file, Stream stream, bool current);
  void demote_current(size_t file);
  void read_file(size_t file, const LineFn& on_line, size_t& budget);
  bool read_stream(size_t file, Stream& s, const LineFn& on_line, size_t& budget);
  bool may_close(const File& f, size_t stream) const;
  void deliver(size_t file, Stream& s, std::string_view line, uint64_t start, uint64_t end,
               std::string_view tail, bool unterminated, bool truncated, const LineFn& on_line);
  void flush_partial(size_t file, Stream& s, const LineFn& on_line);
  void set_error(size_t file, std::optional<Error> error);
  std::optional<fs::FileCursor> position(const File& f) const;
  int64_t now_ns() const { return env_.clock().now_ns(); }

  Env& env_;
  TailerOptions options_;
  UniqueFd inotify_;
  std::vector<File> files_;
  std::vector<Dir> dirs_;
  std::unordered_map<int, std::vector<size_t>> watches_;  // wd -> dirs using it
  size_t next_file_ = 0;  // where the next read() starts, for fairness
  std::string last_saved_;
  TailerStats stats_;
  std::vector<char> buf_;         // file bytes
  std::vector<char> events_buf_;  // inotify events
};

}  // namespace mamori::logwatch
