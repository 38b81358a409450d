#pragma once
// Verdicts by SHA-256 of the content, bounded, least recently used out first: the same
// plugin file on a thousand sites, or the same dropper re-planted every minute, is
// scanned once. What an entry holds is the list of matching rules (empty: clean).
//
// Threads: every method may be called from any thread (one lock).

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/base/mutex.h"
#include "core/hash/sha256.h"

namespace mamori::scan {

struct Match {
  std::string rule;  // "mamori_php_eval_decoded"
  std::string ns;    // "mamori" for the builtin rules, else the rule file's path
  std::vector<std::string> tags;
  std::string description;  // meta "description", when the rule has one
  std::string severity;     // meta "severity", when the rule has one
};

using Matches = std::shared_ptr<const std::vector<Match>>;

class VerdictCache {
 public:
  // `capacity` 0 caches nothing.
  explicit VerdictCache(size_t capacity) : capacity_(capacity) {}

  // The matches recorded for `key` (made the most recent), or nullopt.
  std::optional<Matches> find(const hash::Digest& key) MAMORI_EXCLUDES(mu_);
  // Records `matches` for `key`, dropping the least recently used entry when full.
  void insert(const hash::Digest& key, Matches matches) MAMORI_EXCLUDES(mu_);

  size_t size() const MAMORI_EXCLUDES(mu_);
  size_t capacity() const { return capacity_; }

 private:
  using Entry = std::pair<hash::Digest, Matches>;
  const size_t capacity_;
  mutable Mutex mu_;
  std::list<Entry> order_ MAMORI_GUARDED_BY(mu_);  // most recent first
  std::unordered_map<hash::Digest, std::list<Entry>::iterator, hash::DigestHash> index_
      MAMORI_GUARDED_BY(mu_);
};

}  // namespace mamori::scan
