#include "agent/guard/inode_index.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <string>

namespace mamori::guard {
namespace {

// SplitMix64's finaliser: spreads nearby numbers (inode numbers, record numbers) over
// the whole table.
uint64_t mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::string dir_key(size_t root, std::string_view dir) {
  // The root's number, NUL, the path: a path holds no NUL, so keys cannot collide.
  std::string k = std::to_string(root);
  k += '\0';
  k += dir;
  return k;
}

// "a/b/c.php" -> ("a/b", "c.php"); "c.php" -> ("", "c.php")
std::pair<std::string_view, std::string_view> split(std::string_view rel) {
  const size_t slash = rel.rfind('/');
  if (slash == std::string_view::npos) return {{}, rel};
  return {rel.substr(0, slash), rel.substr(slash + 1)};
}

}  // namespace

// ---------------------------------------------------------------- Table

void InodeIndex::Table::reset(size_t expect) {
  const size_t want = std::bit_ceil(std::max<size_t>(16, expect * 2));
  if (slots_.size() == want) {
    std::fill(slots_.begin(), slots_.end(), kEmpty);
  } else {
    std::vector<uint32_t>(want, kEmpty).swap(slots_);
  }
  used_ = gone_ = 0;
}

void InodeIndex::Table::grow(const std::function<uint64_t(uint32_t)>& hash_of) {
  // At most 3/4 full, tombstones included (linear probing stays short there); room for
  // twice the records when it grows.
  if ((used_ + gone_ + 1) * 4 <= slots_.size() * 3) return;
  std::vector<uint32_t> old;
  old.swap(slots_);
  const size_t want = std::bit_ceil(std::max<size_t>(16, (used_ + 1) * 2));
  slots_.assign(want, kEmpty);
  gone_ = 0;
  const size_t mask = slots_.size() - 1;
  for (uint32_t s : old) {
    if (s == kEmpty || s == kGone) continue;
    size_t i = hash_of(s) & mask;
    while (slots_[i] != kEmpty) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

void InodeIndex::Table::insert(uint64_t hash, uint32_t id,
                               const std::function<uint64_t(uint32_t)>& hash_of) {
  grow(hash_of);
  const size_t mask = slots_.size() - 1;
  size_t i = hash & mask;
  while (slots_[i] != kEmpty && slots_[i] != kGone) i = (i + 1) & mask;
  if (slots_[i] == kGone) --gone_;
  slots_[i] = id;
  ++used_;
}

void InodeIndex::Table::erase(uint64_t hash, uint32_t id) {
  if (slots_.empty()) return;
  const size_t mask = slots_.size() - 1;
  for (size_t i = hash & mask; slots_[i] != kEmpty; i = (i + 1) & mask) {
    if (slots_[i] == id) {
      slots_[i] = kGone;
      --used_;
      ++gone_;
      return;
    }
  }
  assert(false && "record not in its table");
}

// ---------------------------------------------------------------- InodeIndex

std::string InodeIndex::rel_of(const Rec& r) const {
  const std::string& dir = dirs_[r.dir].path;
  std::string rel;
  rel.reserve(dir.size() + 1 + r.name_len);
  if (!dir.empty()) {
    rel += dir;
    rel += '/';
  }
  rel += name_of(r);
  return rel;
}

uint64_t InodeIndex::path_hash(uint32_t dir, std::string_view name) const {
  return mix(std::hash<std::string_view>()(name) ^ mix(dir));
}

uint64_t InodeIndex::inode_hash(uint32_t dev, uint64_t ino) const {
  return mix(ino * 1000003u ^ dev);
}

uint64_t InodeIndex::handle_hash(std::string_view handle) {
  const uint64_t h = mix(std::hash<std::string_view>()(handle));
  return h == 0 ? 1 : h;  // 0 means "no handle"
}

std::optional<uint32_t> InodeIndex::find_dir(size_t root, std::string_view dir) const {
  auto it = dir_ids_.find(dir_key(root, dir));
  if (it == dir_ids_.end()) return std::nullopt;
  return it->second;
}

uint32_t InodeIndex::intern_dir(size_t root, std::string_view dir) {
  auto [it, added] = dir_ids_.try_emplace(dir_key(root, dir), static_cast<uint32_t>(dirs_.size()));
  if (added) dirs_.push_back({root, std::string(dir)});
  return it->second;
}

uint32_t InodeIndex::intern_dev(dev_t dev) {
  auto it = std::find(devs_.begin(), devs_.end(), dev);
  if (it != devs_.end()) return static_cast<uint32_t>(it - devs_.begin());
  devs_.push_back(dev);
  return static_cast<uint32_t>(devs_.size() - 1);
}

uint32_t InodeIndex::find(size_t root, std::string_view rel) const {
  const auto parts = split(rel);
  const std::string_view name = parts.second;  // not a binding: the lambda captures it
  const auto dir = find_dir(root, parts.first);
  if (!dir) return kFree;
  uint32_t found = kFree;
  by_path_.find(path_hash(*dir, name), [&](uint32_t id) {
    const Rec& r = recs_[id];
    if (found == kFree && r.dir == *dir && name_of(r) == name) found = id;
  });
  return found;
}

void InodeIndex::set(size_t root, const std::string& rel, InodeId id, const std::string& handle) {
  erase(root, rel);
  const auto [dir_path, name] = split(rel);
  Rec r;
  r.ino = static_cast<uint64_t>(id.ino);
  r.dev = intern_dev(id.dev);
  r.handle = handle.empty() ? 0 : handle_hash(handle);
  r.dir = intern_dir(root, dir_path);
  r.name_off = add_name(name);
  r.name_len = static_cast<uint32_t>(name.size());
  uint32_t n;
  if (!free_.empty()) {
    n = free_.back();
    free_.pop_back();
    recs_[n] = r;
  } else {
    n = static_cast<uint32_t>(recs_.size());
    recs_.push_back(r);
  }
  ++live_;
  by_path_.insert(path_hash(r.dir, name), n,
                  [this](uint32_t i) { return path_hash(recs_[i].dir, name_of(recs_[i])); });
  by_inode_.insert(inode_hash(r.dev, r.ino), n,
                   [this](uint32_t i) { return inode_hash(recs_[i].dev, recs_[i].ino); });
  if (r.handle != 0) by_handle_.insert(r.handle, n, [this](uint32_t i) { return recs_[i].handle; });
}

void InodeIndex::remove(uint32_t id) {
  Rec& r = recs_[id];
  by_path_.erase(path_hash(r.dir, name_of(r)), id);
  by_inode_.erase(inode_hash(r.dev, r.ino), id);
  if (r.handle != 0) by_handle_.erase(r.handle, id);
  names_garbage_ += r.name_len;
  r.dir = kFree;
  free_.push_back(id);
  --live_;
  if (names_garbage_ > (1u << 20) && names_garbage_ * 2 > names_bytes_) compact_names();
}

void InodeIndex::erase(size_t root, const std::string& rel) {
  const uint32_t id = find(root, rel);
  if (id != kFree) remove(id);
}

void InodeIndex::clear(size_t root) {
  bool others = false;
  for (auto& r : recs_) {
    if (r.dir == kFree) continue;
    if (dirs_[r.dir].root != root) {
      others = true;
      continue;
    }
    names_garbage_ += r.name_len;
    r.dir = kFree;
    --live_;
  }
  if (!others) {  // nothing left: start again
    recs_.clear();
    free_.clear();
    free_.shrink_to_fit();
    blocks_.clear();
    tail_ = kBlock;
    names_bytes_ = names_garbage_ = 0;
  } else {
    free_.clear();
    for (uint32_t i = 0; i < recs_.size(); ++i)
      if (recs_[i].dir == kFree) free_.push_back(i);
    compact_names();
  }
  rebuild_tables();
}

void InodeIndex::rebuild_tables() {
  by_path_.reset(live_);
  by_inode_.reset(live_);
  by_handle_.reset(live_);
  for (uint32_t i = 0; i < recs_.size(); ++i) {
    const Rec& r = recs_[i];
    if (r.dir == kFree) continue;
    auto none = [](uint32_t) -> uint64_t { return 0; };  // sized by reset(): no growth
    by_path_.insert(path_hash(r.dir, name_of(r)), i, none);
    by_inode_.insert(inode_hash(r.dev, r.ino), i, none);
    if (r.handle != 0) by_handle_.insert(r.handle, i, none);
  }
}

uint32_t InodeIndex::add_name(std::string_view name) {
  assert(name.size() <= kBlock);  // a file name is at most NAME_MAX (255) bytes
  if (kBlock - tail_ < name.size()) {
    blocks_.push_back(std::make_unique_for_overwrite<char[]>(kBlock));
    names_bytes_ += kBlock - tail_;  // the old block's unused tail
    names_garbage_ += kBlock - tail_;
    tail_ = 0;
  }
  const auto at = static_cast<uint32_t>((blocks_.size() - 1) * kBlock + tail_);
  std::copy(name.begin(), name.end(), blocks_.back().get() + tail_);
  tail_ += static_cast<uint32_t>(name.size());
  names_bytes_ += name.size();
  return at;
}

void InodeIndex::compact_names() {
  // Copies the live names into new blocks, then drops the old ones.
  auto old = std::move(blocks_);
  blocks_.clear();
  tail_ = kBlock;
  names_bytes_ = names_garbage_ = 0;
  for (auto& r : recs_) {
    if (r.dir == kFree) continue;
    const std::string_view name(old[r.name_off / kBlock].get() + r.name_off % kBlock, r.name_len);
    r.name_off = add_name(name);
  }
}

std::vector<InodeIndex::Name> InodeIndex::names(InodeId id) const {
  std::vector<Name> out;
  auto dev = std::find(devs_.begin(), devs_.end(), id.dev);
  if (dev == devs_.end()) return out;
  const auto d = static_cast<uint32_t>(dev - devs_.begin());
  const auto ino = static_cast<uint64_t>(id.ino);
  by_inode_.find(inode_hash(d, ino), [&](uint32_t i) {
    const Rec& r = recs_[i];
    if (r.dev == d && r.ino == ino) out.push_back(name_at(r));
  });
  return out;
}

std::vector<InodeIndex::Name> InodeIndex::names_by_handle(const std::string& handle) const {
  std::vector<Name> out;
  if (handle.empty()) return out;
  const uint64_t h = handle_hash(handle);
  by_handle_.find(h, [&](uint32_t i) {
    if (recs_[i].handle == h) out.push_back(name_at(recs_[i]));
  });
  return out;
}

std::optional<InodeId> InodeIndex::of(size_t root, const std::string& rel) const {
  const uint32_t id = find(root, rel);
  if (id == kFree) return std::nullopt;
  const Rec& r = recs_[id];
  return InodeId{devs_[r.dev], static_cast<ino_t>(r.ino)};
}

std::vector<std::string> InodeIndex::paths(size_t root) const {
  std::vector<std::string> out;
  for (const auto& r : recs_)
    if (r.dir != kFree && dirs_[r.dir].root == root) out.push_back(rel_of(r));
  return out;
}

size_t InodeIndex::memory_bytes() const {
  size_t dirs = 0;
  for (const auto& d : dirs_) dirs += sizeof(Dir) + d.path.capacity();
  // An unordered_map node: the key, the value, the next pointer and the cached hash.
  dirs += dir_ids_.size() * (sizeof(std::string) + 8 + 16) + dir_ids_.bucket_count() * 8;
  for (const auto& [k, v] : dir_ids_) dirs += k.capacity() > 15 ? k.capacity() : 0;
  return recs_.size() * sizeof(Rec) + free_.capacity() * 4 + blocks_.size() * kBlock + dirs +
         devs_.capacity() * sizeof(dev_t) + by_path_.bytes() + by_inode_.bytes() +
         by_handle_.bytes();
}

}  // namespace mamori::guard
