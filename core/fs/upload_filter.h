#pragma once
// The content half of the upload filter: allow_new lets new files stay by name, and a
// name is the attacker's choice. A file that would be allowed is refused (quarantined)
// when the first kSniffBytes of it are code a server or a browser would run:
//   - "<?php" in any case, in any file: PHP runs it from any name once the file is
//     included (a local-file inclusion of an "image") or mapped to the handler;
//   - "<?=" (PHP's always-on short echo tag) in a text file (no NUL byte in the sniffed
//     part): in binary images three random bytes would refuse one photo in a few hundred;
//   - "<script" in any case in a document a browser renders as markup from the site's
//     origin (.svg, .html, .htm, .xhtml, .xml, .shtml): stored cross-site scripting.
// Only the start is read (one pread, bounded whatever the file's size): a payload placed
// later is not seen, which is why script names are refused by deny_new regardless.

#include <cstddef>
#include <string_view>

namespace mamori::fs {

inline constexpr size_t kSniffBytes = 64 << 10;

// `head` is the file's first bytes (at most kSniffBytes), `rel` its path (for the suffix).
bool looks_like_script(std::string_view head, std::string_view rel);

// Reads the first kSniffBytes of the open regular file `fd` and judges them. A read
// error counts as a script (refuse what cannot be inspected).
bool fd_looks_like_script(int fd, std::string_view rel);

}  // namespace mamori::fs
