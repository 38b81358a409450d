#pragma once
// The canonical bytes of a record to hash: fixed-width integers (little-endian) and
// length-prefixed strings, so that no two different records give the same bytes. The
// catalog's root hash (catalog.cc) and the site digests (site.cc) hash entries this way.

#include <cstdint>
#include <string>
#include <string_view>

namespace mamori::baseline {

class CanonicalRecord {
 public:
  explicit CanonicalRecord(char tag) { rec_.push_back(tag); }
  CanonicalRecord& u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) rec_.push_back(static_cast<char>(v >> (8 * i)));
    return *this;
  }
  CanonicalRecord& bytes(std::string_view s) {
    u64(s.size());
    rec_.append(s);
    return *this;
  }
  // Bytes of a fixed length (a digest).
  CanonicalRecord& fixed(std::string_view s) {
    rec_.append(s);
    return *this;
  }
  std::string_view view() const { return rec_; }

 private:
  std::string rec_;
};

}  // namespace mamori::baseline
