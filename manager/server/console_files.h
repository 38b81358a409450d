#pragma once
// The web console's built files (web/, docs/manager.md "Console"), read once when the
// manager starts and served from memory: nothing a later writer puts in the directory is
// ever served, and a request can only name a file that was loaded. Symlinks, FIFOs and
// devices in the directory are skipped, never followed or opened.
//
// Limits: kMaxConsoleFiles files, kMaxConsoleBytes in all (the real console is ~20 KB).

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/base/result.h"

namespace mamori::manager {

inline constexpr size_t kMaxConsoleFiles = 4096;
inline constexpr size_t kMaxConsoleBytes = 64 * 1024 * 1024;

struct ConsoleFile {
  std::string body;
  std::string_view content_type;
  std::string etag;  // "\"<16 hex digits of the SHA-256>\""
  // Vite names what it emits under assets/ by content: a browser may keep it for good.
  bool immutable = false;
};

class ConsoleFiles {
 public:
  // Everything under `dir`; fails when it cannot be read or holds too much, and when it
  // has no index.html (a console without its page is a packaging mistake worth saying).
  static Result<ConsoleFiles> load(const std::string& dir);

  // The file a GET of `path` (the target without its query) answers with: "/" and the
  // pages' own paths ("/events", "/incident/<id>": no '.' or '%') get index.html, which
  // routes in the browser; nullptr for anything else not loaded.
  const ConsoleFile* find(std::string_view path) const;

  size_t file_count() const { return files_.size(); }

 private:
  std::map<std::string, ConsoleFile, std::less<>> files_;  // by path relative to dir
};

// The headers every console answer carries: a Content-Security-Policy that lets the page
// run only the manager's own scripts and styles and talk only to the manager, and no
// framing, sniffing or referrer.
const std::vector<std::pair<std::string_view, std::string_view>>& console_security_headers();

}  // namespace mamori::manager
