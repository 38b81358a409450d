#include "agent/guard/inode_index.h"

#include <string>

namespace mamori::guard {

std::string InodeIndex::key(size_t root, const std::string& rel) {
  // The root's number, NUL, the path: a path holds no NUL, so keys cannot collide.
  std::string k = std::to_string(root);
  k += '\0';
  k += rel;
  return k;
}

InodeIndex::Name InodeIndex::name_of(const std::string& k) {
  const size_t nul = k.find('\0');
  return {std::stoul(k.substr(0, nul)), k.substr(nul + 1)};
}

void InodeIndex::set(size_t root, const std::string& rel, InodeId id, std::string handle) {
  erase(root, rel);
  std::string k = key(root, rel);
  by_inode_.emplace(id, k);
  if (!handle.empty()) by_handle_.emplace(handle, k);
  by_path_.emplace(std::move(k), Where{id, std::move(handle)});
}

void InodeIndex::unlink(const std::string& k, const Where& w) {
  for (auto [b, e] = by_inode_.equal_range(w.id); b != e; ++b) {
    if (b->second == k) {
      by_inode_.erase(b);
      break;
    }
  }
  if (w.handle.empty()) return;
  for (auto [b, e] = by_handle_.equal_range(w.handle); b != e; ++b) {
    if (b->second == k) {
      by_handle_.erase(b);
      break;
    }
  }
}

void InodeIndex::erase(size_t root, const std::string& rel) {
  auto it = by_path_.find(key(root, rel));
  if (it == by_path_.end()) return;
  unlink(it->first, it->second);
  by_path_.erase(it);
}

void InodeIndex::clear(size_t root) {
  const std::string prefix = key(root, "");
  for (auto it = by_path_.begin(); it != by_path_.end();) {
    if (it->first.starts_with(prefix)) {
      unlink(it->first, it->second);
      it = by_path_.erase(it);
    } else {
      ++it;
    }
  }
}

std::vector<InodeIndex::Name> InodeIndex::names(InodeId id) const {
  std::vector<Name> out;
  for (auto [b, e] = by_inode_.equal_range(id); b != e; ++b) out.push_back(name_of(b->second));
  return out;
}

std::vector<InodeIndex::Name> InodeIndex::names_by_handle(const std::string& handle) const {
  std::vector<Name> out;
  for (auto [b, e] = by_handle_.equal_range(handle); b != e; ++b) out.push_back(name_of(b->second));
  return out;
}

std::vector<std::string> InodeIndex::paths(size_t root) const {
  const std::string prefix = key(root, "");
  std::vector<std::string> out;
  for (const auto& [k, w] : by_path_)
    if (k.starts_with(prefix)) out.push_back(k.substr(prefix.size()));
  return out;
}

std::optional<InodeId> InodeIndex::of(size_t root, const std::string& rel) const {
  auto it = by_path_.find(key(root, rel));
  if (it == by_path_.end()) return std::nullopt;
  return it->second.id;
}

}  // namespace mamori::guard
