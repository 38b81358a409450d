#include "core/fs/upload_policy.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "core/fs/beneath.h"
#include "core/fs/upload_filter.h"

namespace mamori::fs {

Result<UploadPolicy> UploadPolicy::compile(const std::vector<std::string>& allow_new,
                                           const std::vector<std::string>& deny_new) {
  UploadPolicy p;
  p.allow_ = MAMORI_TRY(PathMatcher::compile(allow_new));
  p.deny_ = MAMORI_TRY(PathMatcher::compile(deny_new, MatchCase::kFold));
  return p;
}

bool UploadPolicy::allows(int root_fd, std::string_view rel) const {
  if (allow_.empty() || deny_.matches(rel)) return false;
  const bool inside = allow_.matches(rel);
  if (!inside && !allow_.leads_to(rel)) return false;
  auto st = stat_beneath(root_fd, rel);
  if (!st) return inside;
  if (S_ISDIR(st->st_mode)) return true;
  if (!inside) return false;
  if (!S_ISREG(st->st_mode)) return true;
  auto fd = open_beneath(root_fd, rel, O_RDONLY | O_NONBLOCK | O_NOCTTY);
  return fd && !fd_looks_like_script(fd->get(), rel);
}

bool UploadPolicy::allows_open_file(int fd, std::string_view rel) const {
  if (allow_.empty() || deny_.matches(rel) || !allow_.matches(rel)) return false;
  return !fd_looks_like_script(fd, rel);
}

}  // namespace mamori::fs
