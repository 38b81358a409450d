#pragma once
// Where the real-time guard learns that something changed: one interface, three
// backends chosen at run time (agent/watch/fanotify, inotify, replay). A watcher only
// says *where* to look and *who* did it when the kernel says; the guard compares what
// it finds there with the baseline, so a merged, duplicated or reordered event never
// changes the outcome, and a lost one is covered by the rescan an overflow triggers.
//
// Threads: one owner (the guard's thread); fd() is polled there.

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/result.h"

namespace mamori::watch {

enum What : uint32_t {
  kContent = 1u << 0,   // written (modify, close after write)
  kAttrib = 1u << 1,    // mode, owner, xattrs, times
  kCreated = 1u << 2,   // a name appeared (create, moved to)
  kRemoved = 1u << 3,   // a name went away (delete, moved from)
  kIsDir = 1u << 4,     // the entry is a directory
  kOverflow = 1u << 5,  // the kernel dropped events: rescan the root (rel is "")
  // A file opened for writing was closed (also set with kContent). Whoever opened it may
  // still write through a shared mapping made before the close, with no event at all.
  kClosedWrite = 1u << 6,
  // A file was opened (any mode; backends that can report it). The guard checks whether
  // a baselined file is now open for writing: a shared writable mapping writes unseen.
  // With kOverflow: opens were lost; every baselined file of the root is asked.
  kOpened = 1u << 7,
};

struct Change {
  size_t root = 0;    // index given to add_root()
  std::string rel;    // path relative to the root; "" is the root itself
  uint32_t what = 0;  // What bits
  pid_t pid = -1;     // who, when the backend knows (fanotify); -1 otherwise
  // With kOpened from a backend that names the file by its handle rather than a path
  // (rel is then ""): fs::handle_key() of the inode opened, under whatever name, inside
  // the root or not (a hard link elsewhere on the filesystem).
  std::string handle;
};

class Watcher {
 public:
  virtual ~Watcher() = default;
  virtual std::string_view name() const = 0;
  // Starts watching the tree at `path` (absolute, already resolved; `root_fd` is it,
  // opened) as root number `index`. Fails with a message saying what to change when a
  // kernel limit is in the way.
  virtual Status add_root(size_t index, const std::string& path, int root_fd) = 0;
  // A descriptor that polls readable when read() has something.
  virtual int fd() const = 0;
  // Appends what happened since the last call, without blocking.
  virtual Status read(std::vector<Change>& out) = 0;
  // Events caused by this process (our own restores) are dropped by backends that can
  // tell; the guard's comparison makes the rest harmless.
  // Counters for `mamori status`.
  virtual uint64_t overflows() const = 0;
};

}  // namespace mamori::watch
