#pragma once
// Where the baselined regular files of every guarded root live now: their current
// (device, inode), by path and by inode. The catalog's own inode numbers go stale with
// the first restore (each restore puts a new inode in place, and the agent opens the
// catalog read-only), so the guard keeps this index itself: rebuilt by each verify,
// updated by each restore.
//
// It answers the two questions a hard link raises: "is this new name another name of
// baselined code?" (a write through it would change the baselined file with no event
// naming it) and "is the inode at this baselined path still the one we put there?"
// (if not, its owner and mode are not ours to change: it may be a file from outside the
// root, hard-linked in).
//
// Threads: one owner (the guard's).

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace mamori::guard {

struct InodeId {
  dev_t dev = 0;
  ino_t ino = 0;
  bool operator==(const InodeId&) const = default;
};

struct InodeIdHash {
  size_t operator()(const InodeId& id) const {
    return std::hash<uint64_t>()(static_cast<uint64_t>(id.ino) * 1000003u ^
                                 static_cast<uint64_t>(id.dev));
  }
};

class InodeIndex {
 public:
  struct Name {
    size_t root = 0;
    std::string rel;
  };
  // `rel` in `root` is now the inode `id` (replacing what it was), whose
  // fs::handle_key() is `handle` ("" when unknown).
  void set(size_t root, const std::string& rel, InodeId id, std::string handle = {});
  void erase(size_t root, const std::string& rel);
  // Forgets every path of `root` (before a verify rebuilds it).
  void clear(size_t root);
  // The baselined names of `id`, in every root.
  std::vector<Name> names(InodeId id) const;
  // The same by file handle (what fanotify reports for an open under any name).
  std::vector<Name> names_by_handle(const std::string& handle) const;
  // The inode recorded for `rel`; nullopt when the index knows nothing of it.
  std::optional<InodeId> of(size_t root, const std::string& rel) const;
  size_t size() const { return by_path_.size(); }
  // Every path of `root` in the index.
  std::vector<std::string> paths(size_t root) const;

 private:
  using IdHash = InodeIdHash;
  struct Where {
    InodeId id;
    std::string handle;
  };
  static std::string key(size_t root, const std::string& rel);
  static Name name_of(const std::string& key);
  void unlink(const std::string& key, const Where& w);
  std::unordered_map<std::string, Where> by_path_;                  // key(root, rel) -> inode
  std::unordered_multimap<InodeId, std::string, IdHash> by_inode_;  // inode -> key(root, rel)
  std::unordered_multimap<std::string, std::string> by_handle_;     // handle -> key(root, rel)
};

}  // namespace mamori::guard
