#include "core/fs/open_for_writing.h"

#include <fcntl.h>

#include <cerrno>
#include <string>

#include "core/fs/beneath.h"

namespace mamori::fs {

Result<bool> open_for_writing(int root_fd, std::string_view rel) {
  // O_NONBLOCK: a FIFO swapped in must not hang us; a lease on it fails with EINVAL.
  auto fd = MAMORI_TRY(open_beneath(root_fd, rel, O_RDONLY | O_NONBLOCK | O_NOCTTY));
  if (::fcntl(fd.get(), F_SETLEASE, F_RDLCK) == 0) {
    (void)::fcntl(fd.get(), F_SETLEASE, F_UNLCK);
    return false;
  }
  if (errno == EAGAIN) return true;
  return fail_errno("fcntl F_SETLEASE", std::string(rel));
}

}  // namespace mamori::fs
