#include "core/fs/handle.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <vector>

#include "core/fs/beneath.h"

namespace mamori::fs {

std::string handle_key(const fsid_t& fsid, int type, std::span<const uint8_t> bytes) {
  std::string key(reinterpret_cast<const char*>(&fsid), sizeof fsid);
  key.append(reinterpret_cast<const char*>(&type), sizeof type);
  key.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return key;
}

Result<std::string> handle_key_of(int root_fd, std::string_view rel, const fsid_t& fsid) {
  auto parent = MAMORI_TRY(open_parent(root_fd, rel));
  std::vector<char> buf(sizeof(file_handle) + MAX_HANDLE_SZ);
  auto* h = reinterpret_cast<file_handle*>(buf.data());
  h->handle_bytes = MAX_HANDLE_SZ;
  int mount_id = 0;
  if (::name_to_handle_at(parent.dir.get(), parent.name.c_str(), h, &mount_id, 0) != 0)
    return fail_errno("name_to_handle_at", std::string(rel));
  return handle_key(fsid, h->handle_type,
                    {reinterpret_cast<const uint8_t*>(h->f_handle), h->handle_bytes});
}

std::string path_of_fd(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_nlink == 0) return {};
  char link[64];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  std::string out(4096, '\0');
  const ssize_t n = ::readlink(link, out.data(), out.size());
  if (n <= 0 || static_cast<size_t>(n) >= out.size()) return {};
  out.resize(static_cast<size_t>(n));
  if (out[0] != '/') return {};
  return out;
}

}  // namespace mamori::fs
