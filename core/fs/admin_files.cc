#include "core/fs/admin_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "core/base/unique_fd.h"
#include "core/fs/beneath.h"

namespace mamori::fs {

Result<std::string> read_small_file(const std::string& path, size_t limit) {
  const int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (raw < 0) return fail_errno("open", path);
  UniqueFd fd(raw);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail_errno("fstat", path);
  if (!S_ISREG(st.st_mode)) return fail("read", path, EINVAL, "not a regular file");
  return read_fd(fd.get(), limit, path);
}

Status make_private_dirs(const std::string& path) {
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    const std::string part = path.substr(0, pos);
    if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) return fail_errno("mkdir", part);
  }
  return ok();
}

Result<UniqueFd> open_private_append(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) MAMORI_TRY(make_private_dirs(path.substr(0, slash)));
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return fail_errno("open", path);
  return UniqueFd(fd);
}

}  // namespace mamori::fs
