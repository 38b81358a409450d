#include "core/fs/xattr.h"

#include <sys/xattr.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

namespace mamori::fs {
namespace {

// Access to an inode either through an fd or as "/proc/self/fd/DIR/NAME" with the l*
// calls, which never follow the last component.
// `follow` is only for "/proc/self/fd/N" of an O_PATH fd: the magic link leads to
// exactly that inode, and O_PATH fds have no f*xattr calls.
struct Target {
  int fd = -1;
  std::string path;
  bool follow = false;

  ssize_t list(char* buf, size_t n) const {
    if (fd >= 0) return ::flistxattr(fd, buf, n);
    return follow ? ::listxattr(path.c_str(), buf, n) : ::llistxattr(path.c_str(), buf, n);
  }
  ssize_t get(const char* name, void* buf, size_t n) const {
    if (fd >= 0) return ::fgetxattr(fd, name, buf, n);
    return follow ? ::getxattr(path.c_str(), name, buf, n)
                  : ::lgetxattr(path.c_str(), name, buf, n);
  }
  int set(const char* name, const void* v, size_t n) const {
    if (fd >= 0) return ::fsetxattr(fd, name, v, n, 0);
    return follow ? ::setxattr(path.c_str(), name, v, n, 0)
                  : ::lsetxattr(path.c_str(), name, v, n, 0);
  }
  int remove(const char* name) const {
    if (fd >= 0) return ::fremovexattr(fd, name);
    return follow ? ::removexattr(path.c_str(), name) : ::lremovexattr(path.c_str(), name);
  }
};

Target at(int dir_fd, const std::string& name) {
  return Target{-1, "/proc/self/fd/" + std::to_string(dir_fd) + "/" + name};
}

bool unsupported(int err) { return err == ENOTSUP || err == ENODATA; }

Result<std::vector<std::string>> tracked_names(const Target& t, std::string_view display) {
  std::vector<std::string> names;
  std::string buf;
  for (int attempt = 0; attempt < 4; ++attempt) {
    const ssize_t size = t.list(nullptr, 0);
    if (size < 0) {
      if (unsupported(errno)) return names;
      return fail_errno("listxattr", std::string(display));
    }
    if (size == 0) return names;
    buf.resize(static_cast<size_t>(size));
    const ssize_t n = t.list(buf.data(), buf.size());
    if (n < 0 && errno == ERANGE) continue;  // grew meanwhile
    if (n < 0) return fail_errno("listxattr", std::string(display));
    buf.resize(static_cast<size_t>(n));
    for (size_t pos = 0; pos < buf.size();) {
      const size_t end = buf.find('\0', pos);
      const std::string name = buf.substr(pos, end - pos);
      if (is_tracked_xattr(name)) names.push_back(name);
      if (end == std::string::npos) break;
      pos = end + 1;
    }
    return names;
  }
  return fail("listxattr", std::string(display), EAGAIN, "attribute list kept changing");
}

Result<std::string> read_all(const Target& t, std::string_view display) {
  XattrList list;
  for (const auto& name : MAMORI_TRY(tracked_names(t, display))) {
    std::string value;
    ssize_t n = -1;
    for (int attempt = 0; attempt < 4; ++attempt) {
      const ssize_t size = t.get(name.c_str(), nullptr, 0);
      if (size < 0) break;
      value.resize(static_cast<size_t>(size));
      n = t.get(name.c_str(), value.data(), value.size());
      if (n >= 0 || errno != ERANGE) break;
    }
    if (n < 0) {
      if (errno == ENODATA) continue;  // removed between list and get
      return fail("getxattr", std::string(display), errno, name);
    }
    value.resize(static_cast<size_t>(n));
    list.emplace_back(name, std::move(value));
  }
  return encode_xattrs(std::move(list));
}

Status write_all_attrs(const Target& t, std::string_view encoded, std::string_view display) {
  const auto wanted = MAMORI_TRY(decode_xattrs(encoded));
  for (const auto& name : MAMORI_TRY(tracked_names(t, display))) {
    const bool keep =
        std::any_of(wanted.begin(), wanted.end(), [&](const auto& kv) { return kv.first == name; });
    if (!keep && t.remove(name.c_str()) != 0 && errno != ENODATA)
      return fail("removexattr", std::string(display), errno, name);
  }
  for (const auto& [name, value] : wanted) {
    if (t.set(name.c_str(), value.data(), value.size()) != 0)
      return fail("setxattr", std::string(display), errno, name);
  }
  return ok();
}

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

}  // namespace

bool is_tracked_xattr(std::string_view name) {
  return name.starts_with("security.") || name == "system.posix_acl_access" ||
         name == "system.posix_acl_default";
}

std::string encode_xattrs(XattrList list) {
  std::sort(list.begin(), list.end());
  std::string out;
  for (const auto& [name, value] : list) {
    out.append(name);
    out.push_back('\0');
    put_u32(out, static_cast<uint32_t>(value.size()));
    out.append(value);
  }
  return out;
}

Result<XattrList> decode_xattrs(std::string_view in) {
  XattrList list;
  while (!in.empty()) {
    const auto nul = in.find('\0');
    if (nul == std::string_view::npos || nul == 0 || in.size() - nul - 1 < 4)
      return fail_msg("decode xattrs", "", "malformed attribute record");
    std::string name(in.substr(0, nul));
    uint32_t len = 0;
    for (int i = 0; i < 4; ++i)
      len |= static_cast<uint32_t>(static_cast<uint8_t>(in[nul + 1 + i])) << (8 * i);
    in.remove_prefix(nul + 5);
    if (len > in.size()) return fail_msg("decode xattrs", "", "attribute value past the end");
    list.emplace_back(std::move(name), std::string(in.substr(0, len)));
    in.remove_prefix(len);
  }
  return list;
}

Result<std::string> read_xattrs_fd(int fd, std::string_view display) {
  return read_all(Target{fd, {}}, display);
}
Result<std::string> read_xattrs_at(int dir_fd, const std::string& name, std::string_view display) {
  return read_all(at(dir_fd, name), display);
}
Status write_xattrs_fd(int fd, std::string_view encoded, std::string_view display) {
  return write_all_attrs(Target{fd, {}}, encoded, display);
}
Status write_xattrs_at(int dir_fd, const std::string& name, std::string_view encoded,
                       std::string_view display) {
  return write_all_attrs(at(dir_fd, name), encoded, display);
}

Status write_xattrs_opath(int fd, std::string_view encoded, std::string_view display) {
  return write_all_attrs(Target{-1, "/proc/self/fd/" + std::to_string(fd), true}, encoded, display);
}

}  // namespace mamori::fs
