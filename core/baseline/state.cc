#include "core/baseline/state.h"

#include <sys/stat.h>

#include <cerrno>

#include "core/fs/beneath.h"

namespace mamori::baseline {
namespace {

Status make_dirs(const std::string& path) {
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    const std::string part = path.substr(0, pos);
    if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) return fail_errno("mkdir", part);
  }
  return ok();
}

}  // namespace

Result<std::unique_ptr<State>> open_state(Env& env, const std::string& dir, StateAccess access,
                         store::StoreOptions options) {
  const bool write = access == StateAccess::kWrite;
  if (write) MAMORI_TRY(make_dirs(dir));
  auto dir_fd = fs::open_root(dir);
  if (!dir_fd) return fail(std::string("open state directory"), dir, dir_fd.error().errnum);
  auto catalog = MAMORI_TRY(Catalog::open(dir, write ? db::Db::Mode::kReadWrite : db::Db::Mode::kReadOnly));
  auto s = std::make_unique<State>(dir, std::move(*dir_fd), std::move(catalog));
  s->store = MAMORI_TRY(store::Store::open(env, s->catalog.db(), s->dir_fd.get(),
                                          write ? store::Store::Access::kWrite : store::Store::Access::kRead,
                                          options));
  return s;
}

}  // namespace mamori::baseline
