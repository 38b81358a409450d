#pragma once
// Where the web servers' configuration files come from. The readers (nginx.h, apache.h,
// php_fpm.h) ask a ConfSource for a file's text and for the files an include's glob
// names, so tests and the fuzzer give them files from memory and `mamori setup` gives
// them the machine's.
//
// The files are root's (/etc/nginx, /etc/apache2, /etc/php), yet a reader must still
// survive odd ones: an include of a directory, of a FIFO, of a 2 GB file, of itself.
// Every read is bounded (kMaxConfFileBytes) and never blocks on a FIFO.

#include <map>
#include <string>
#include <vector>

#include "core/base/result.h"
#include "core/webconf/conf.h"

namespace mamori::webconf {

inline constexpr size_t kMaxConfFileBytes = 4 << 20;  // one file
inline constexpr size_t kMaxGlobMatches = 1000;       // files one include may name

class ConfSource {
 public:
  virtual ~ConfSource() = default;
  // The whole text of the regular file `path` (symlinks followed: sites-enabled/ is
  // links); EFBIG past kMaxConfFileBytes.
  virtual Result<std::string> read(const std::string& path) = 0;
  // The paths `pattern` (glob(3): *, ?, [..]) names, sorted; a pattern without
  // wildcards names itself, whether or not it exists. At most kMaxGlobMatches.
  virtual Result<std::vector<std::string>> glob(const std::string& pattern) = 0;
};

// The machine's files.
class RealConfSource final : public ConfSource {
 public:
  Result<std::string> read(const std::string& path) override;
  Result<std::vector<std::string>> glob(const std::string& pattern) override;
};

// Files held in memory (tests, the fuzzer): a path not in the map is ENOENT.
class MemConfSource final : public ConfSource {
 public:
  std::map<std::string, std::string> files;
  Result<std::string> read(const std::string& path) override;
  Result<std::vector<std::string>> glob(const std::string& pattern) override;
};

// What every reader does around an include: the files a pattern names (none, with a
// Problem, past max_include_depth or when the glob fails), then before each one a
// verdict: skip a file being read already (a loop; the chain is named), stop past
// max_files or max_total_bytes. read() reads a file and counts it.
class IncludeGuard {
 public:
  IncludeGuard(ConfSource& source, const ConfLimits& limits, std::vector<std::string>& files,
               std::vector<Problem>& problems)
      : source_(source), limits_(limits), files_(files), problems_(problems) {}

  std::vector<std::string> files_for(const Origin& from, const std::string& pattern,
                                     uint32_t depth);
  enum class Verdict { kRead, kSkip, kStop };
  Verdict check(const Origin& from, const std::string& file);
  Result<std::string> read(const std::string& file);

  std::vector<std::string> stack;  // the files being read, outermost first

 private:
  ConfSource& source_;
  const ConfLimits& limits_;
  std::vector<std::string>& files_;
  std::vector<Problem>& problems_;
  uint64_t total_ = 0;
};

// Where a parse error points: its Error::path is "file:line".
Origin error_origin(const Error& e);

bool has_glob_chars(const std::string& s);
// `path` made absolute against `dir` (unchanged when it starts with '/').
std::string resolve_against(const std::string& dir, const std::string& path);
// Everything before the last '/' ("/" for "/x").
std::string parent_dir(const std::string& path);

}  // namespace mamori::webconf
