#pragma once
// mamori's state directory: STATE/catalog.db and STATE/store/ (docs/formats/).

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>

#include "core/base/env.h"
#include "core/base/result.h"
#include "core/base/unique_fd.h"
#include "core/baseline/catalog.h"
#include "core/store/store.h"

namespace mamori::baseline {

// Not movable: the store refers to the catalog's database.
struct State {
  State(std::string d, UniqueFd fd, Catalog c)
      : dir(std::move(d)), dir_fd(std::move(fd)), catalog(std::move(c)) {}
  State(const State&) = delete;
  State& operator=(const State&) = delete;

  std::string dir;
  UniqueFd dir_fd;
  Catalog catalog;
  std::unique_ptr<store::Store> store;
  // kWrite: the directory's mode when it was looser than 0700 and was made 0700 (the
  // caller reports it); nullopt when it was private already.
  std::optional<mode_t> dir_mode_was;
};

enum class StateAccess { kRead, kWrite };

// kWrite creates the directory (mode 0700) when missing, makes it 0700 when it is looser
// (fs::make_private_dir) and takes the writer's lock;
// kRead fails with ENOENT when no baseline was ever made.
Result<std::unique_ptr<State>> open_state(Env& env, const std::string& dir, StateAccess access,
                                          store::StoreOptions options = {});

}  // namespace mamori::baseline
