#include "core/baseline/state.h"

#include <sys/stat.h>

#include <cerrno>

#include "core/fs/admin_files.h"
#include "core/fs/beneath.h"

namespace mamori::baseline {

Result<std::unique_ptr<State>> open_state(Env& env, const std::string& dir, StateAccess access,
                                          store::StoreOptions options) {
  const bool write = access == StateAccess::kWrite;
  std::optional<mode_t> was;
  if (write) was = MAMORI_TRY(fs::make_private_dir(dir));
  auto dir_fd = fs::open_root(dir);
  if (!dir_fd) return fail(std::string("open state directory"), dir, dir_fd.error().errnum);
  auto catalog =
      MAMORI_TRY(Catalog::open(dir, write ? db::Db::Mode::kReadWrite : db::Db::Mode::kReadOnly));
  auto s = std::make_unique<State>(dir, std::move(*dir_fd), std::move(catalog));
  s->dir_mode_was = was;
  s->store = MAMORI_TRY(store::Store::open(
      env, s->catalog.db(), s->dir_fd.get(),
      write ? store::Store::Access::kWrite : store::Store::Access::kRead, options));
  return s;
}

}  // namespace mamori::baseline
