#include "core/fs/upload_filter.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <string>

namespace mamori::fs {
namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool contains_folded(std::string_view hay, std::string_view needle) {
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end(),
                     [](char a, char b) { return lower(a) == b; }) != hay.end();
}

bool is_markup(std::string_view rel) {
  const size_t slash = rel.rfind('/');
  const std::string_view name = slash == std::string_view::npos ? rel : rel.substr(slash + 1);
  const size_t dot = name.rfind('.');
  if (dot == std::string_view::npos) return false;
  std::string ext(name.substr(dot + 1));
  for (char& c : ext) c = lower(c);
  static constexpr std::array<std::string_view, 6> kMarkup = {"svg",   "html", "htm",
                                                              "xhtml", "xml",  "shtml"};
  return std::find(kMarkup.begin(), kMarkup.end(), ext) != kMarkup.end();
}

}  // namespace

bool looks_like_script(std::string_view head, std::string_view rel) {
  head = head.substr(0, kSniffBytes);
  if (contains_folded(head, "<?php")) return true;
  const bool text = head.find('\0') == std::string_view::npos;
  if (text && head.find("<?=") != std::string_view::npos) return true;
  return is_markup(rel) && contains_folded(head, "<script");
}

bool fd_looks_like_script(int fd, std::string_view rel) {
  std::string head(kSniffBytes, '\0');
  size_t got = 0;
  while (got < head.size()) {
    const ssize_t n = ::pread(fd, head.data() + got, head.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return true;
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  head.resize(got);
  return looks_like_script(head, rel);
}

}  // namespace mamori::fs
