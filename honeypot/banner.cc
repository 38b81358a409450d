#include "honeypot/banner.h"

#include <cctype>

#include "core/fs/admin_files.h"

namespace mamori::honeypot {
namespace {

bool digits(std::string_view s, size_t& at) {
  const size_t from = at;
  while (at < s.size() && std::isdigit(static_cast<unsigned char>(s[at]))) ++at;
  return at > from;
}

}  // namespace

std::string find_openssh_release(std::string_view binary) {
  constexpr std::string_view kPrefix = "OpenSSH_";
  for (size_t pos = binary.find(kPrefix); pos != std::string_view::npos;
       pos = binary.find(kPrefix, pos + 1)) {
    size_t at = pos + kPrefix.size();
    if (!digits(binary, at) || at >= binary.size() || binary[at] != '.') continue;
    ++at;
    if (!digits(binary, at) || at >= binary.size() || binary[at] != 'p') continue;
    ++at;
    if (!digits(binary, at)) continue;
    size_t end = at;
    if (end < binary.size() && binary[end] == ' ') {
      // The comment: printable, up to the NUL that ends the C string.
      ++end;
      while (end < binary.size() && binary[end] > 0x20 && binary[end] < 0x7f && binary[end] != ',')
        ++end;
      if (end == at + 1) continue;
    }
    if (end < binary.size() && binary[end] != '\0') continue;
    return std::string(binary.substr(pos, end - pos));
  }
  return {};
}

std::string resolve_banner(const std::string& configured, const std::string& sshd_path,
                           std::string* why_default) {
  if (configured != "auto") return configured;
  auto bytes = fs::read_small_file(sshd_path, 64u << 20);
  if (!bytes) {
    if (why_default) *why_default = bytes.error().message();
    return std::string(kDefaultBanner);
  }
  std::string found = find_openssh_release(*bytes);
  if (found.empty()) {
    if (why_default) *why_default = "no OpenSSH release text in " + sshd_path;
    return std::string(kDefaultBanner);
  }
  return found;
}

}  // namespace mamori::honeypot
