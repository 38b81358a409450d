#pragma once
// A fresh directory under $TMPDIR for one test, removed with everything in it afterwards.

#include <string>

namespace mamori::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

  // Test helpers on paths inside the directory; each aborts the test on failure.
  void write(const std::string& rel, const std::string& content, int mode = 0644) const;
  std::string read(const std::string& rel) const;
  void mkdir(const std::string& rel, int mode = 0755) const;

 private:
  std::string path_;
};

}  // namespace mamori::testing
