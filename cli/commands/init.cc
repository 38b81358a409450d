// mamori init: record the baseline of every configured root (or the ones named).

#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include "cli/commands/command.h"
#include "cli/commands/commands.h"
#include "cli/progress.h"
#include "core/base/quote.h"
#include "core/baseline/record.h"
#include "core/fs/beneath.h"

namespace mamori::cli {

namespace {

// The background compressor (`init --compress-store`) stops between objects whenever a
// writer opens the store, waits for the writer to finish, and goes on. A writer that
// keeps coming back cannot keep it alive forever: past this many pauses it leaves the
// rest to the next init.
constexpr int kCompressRounds = 100;
// Below this much content stored raw, init compresses it itself before it returns:
// zstd needs ~0.2 s for it, less than a background process and a store that stays
// large meanwhile are worth.
constexpr uint64_t kBackgroundCompressionAbove = 64ull << 20;

Result<std::unique_ptr<baseline::State>> open_for_init(App& app, bool compressor) {
  store::StoreOptions so;
  so.compression_level = app.config().compression_level;
  so.defer_compression = !compressor;
  so.compressor = compressor;
  auto s =
      baseline::open_state(app.env(), app.config().state_dir, baseline::StateAccess::kWrite, so);
  if (s && (*s)->dir_mode_was) app.warn_private_dir(app.config().state_dir, *(*s)->dir_mode_was);
  return s;
}

// Starts `mamori init --compress-store` detached (own session, nice, no stdio), to
// compress what this init stored raw once this process has released the store's lock.
void start_compressor(App& app) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  for (int fd = 0; fd <= 2; ++fd)
    posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
  std::string config = app.options().config_path;
  std::string arg0 = "mamori", c = "--config", q = "--quiet", cmd = "init",
              flag = "--compress-store";
  char* argv[] = {arg0.data(), c.data(), config.data(), q.data(), cmd.data(), flag.data(), nullptr};
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, "/proc/self/exe", &fa, &attr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0)
    std::fprintf(stderr,
                 "mamori: warning: cannot start the store's compression (%s); the next init "
                 "will\n",
                 std::strerror(rc));
}

// The background half of init: compresses every pack stored raw, giving way to writers.
int run_compress(App& app) {
  (void)::setpriority(PRIO_PROCESS, 0, 10);
  for (int round = 0; round < kCompressRounds; ++round) {
    auto state = open_for_init(app, true);  // waits for init (or any writer) to finish
    if (!state) return app.report(state.error(), App::code_for(state.error()));
    auto rep = (*state)->store->compress_pending();
    if (!rep) return app.report(rep.error(), App::code_for(rep.error()));
    if (!rep->yielded) return kExitOk;
  }
  return kExitIncomplete;
}

}  // namespace

int run_init(App& app, const std::vector<std::string>& paths) {
  std::vector<Root*> selected;
  for (const auto& p : paths) {
    auto t = app.resolve(p);
    if (!t || !t->rel.empty())
      return app.report(
          Error{"init", p, 0, "is not a configured root (see [[root]] in the config)"}, kExitUsage);
    if (std::find(selected.begin(), selected.end(), t->root) == selected.end())
      selected.push_back(t->root);
  }
  if (paths.empty())
    for (auto& r : app.roots()) selected.push_back(&r);
  if (selected.empty())
    return app.report(
        Error{"init", app.config().source, 0, "the config lists no [[root]] to protect"},
        kExitUsage);

  auto state = open_for_init(app, false);
  if (!state) return app.report(state.error(), App::code_for(state.error()));
  auto& catalog = (*state)->catalog;
  auto& store = *(*state)->store;
  const int64_t now = app.env().clock().now_ns();

  nlohmann::json out = {
      {"command", "init"}, {"roots", nlohmann::json::array()}, {"errors", nlohmann::json::array()}};
  bool incomplete = false;
  auto result = [&]() -> Status {
    auto txn = MAMORI_TRY(db::Transaction::begin(catalog.db()));
    for (Root* r : selected) {
      const std::string& path = r->config->path;
      auto root_fd = MAMORI_TRY(fs::open_root(path));
      const int64_t root_id = MAMORI_TRY(catalog.touch_root(path, now));
      baseline::Progress progress;
      baseline::RecordReport rep;
      {
        ProgressBar bar(progress, "init " + escape(path), app.show_progress());
        rep = MAMORI_TRY(
            baseline::record(catalog, store, root_id, app.scan(*r, root_fd.get(), &progress), ""));
      }
      incomplete |= !rep.errors.empty();
      warn_all(app, rep.errors, &out["errors"]);
      out["roots"].push_back({{"path", path},
                              {"entries", rep.entries},
                              {"files", rep.files},
                              {"bytes", rep.bytes},
                              {"unreadable", rep.errors.size()}});
      if (!app.options().json && !app.options().quiet)
        std::printf("%s: %s entries, %s files, %s%s\n", escape(path).c_str(),
                    fmt::format("{}", rep.entries).c_str(), fmt::format("{}", rep.files).c_str(),
                    human_bytes(rep.bytes).c_str(),
                    rep.errors.empty()
                        ? ""
                        : fmt::format(" ({} left out, see warnings)", rep.errors.size()).c_str());
    }
    if (paths.empty()) {  // roots dropped from the config leave the baseline too
      for (const auto& row : MAMORI_TRY(catalog.roots())) {
        const bool configured =
            std::any_of(app.roots().begin(), app.roots().end(),
                        [&](const Root& r) { return r.config->path == row.path; });
        if (!configured) MAMORI_TRY(catalog.remove_root(row.id));
      }
    }
    return seal_and_commit(app, **state, txn, now, out);
  }();
  if (!result) return app.report(result.error(), App::code_for(result.error()));
  if (store.deferred_bytes() < kBackgroundCompressionAbove) {
    // The baseline is committed: a failure here leaves content raw, still verified.
    if (auto c = store.compress_pending(); !c)
      warn_all(app, {std::move(c).error()}, &out["errors"]);
  }
  const auto pending = store.compression_pending();
  state->reset();  // releases the store's lock for the compressor
  if (pending && *pending) start_compressor(app);
  if (app.options().json) print_json(out);
  return incomplete ? kExitIncomplete : kExitOk;
}

namespace {

constexpr std::string_view kHelp = R"TXT(NAME
    mamori init - record the baseline

SYNOPSIS
    mamori init [--nice] [-j N] [PATH...]
    mamori init --compress-store

DESCRIPTION
    Walks every configured root (or only the roots named; each PATH must be a
    configured root) without following symlinks, records every entry that no
    'exclude' pattern matches, hashes every regular file on all cores and stores its
    content, compressed and once per distinct content, in STATE/store. FIFOs,
    sockets and devices are recorded, never opened.

    The new baseline replaces the old one in a single transaction: if init is killed
    or the disk fills, the previous baseline is left as it was. Roots no longer in
    the config are dropped from the baseline when no PATH is given.

    A file that cannot be read is left out of the baseline and named in a warning;
    a file that keeps changing while it is read is retried, then left out, so no torn
    hash is ever recorded. Shows a progress bar when stderr is a terminal.

    Content is stored uncompressed first, and fsync()ed before the baseline commits,
    so init takes the time of a copy, not of compression. Once it has committed, init
    compresses it itself when it is under 64 MiB; otherwise it starts
    'mamori init --compress-store' in the background (nice 10, its own session),
    which rewrites the new content zstd-compressed, one pack at a time, and deletes the
    uncompressed pack when the index points at the compressed copy. Until then the
    store holds the uncompressed copy (about the size of the files); every copy is
    verified when read, whichever it is. The compressor pauses for any other mamori
    process that writes the baseline and resumes after it; if it is killed, the next
    init starts it again.

    --compress-store
        Compress what an init stored uncompressed, in the foreground, and return when
        nothing is left (waiting for a compressor already running to finish first).

EXIT STATUS
    0 recorded; 2 bad config or PATH; 3 some entries left out, or the baseline could
    not be written (the old one is intact).
)TXT";

Run setup(CLI::App& cmd) {
  auto paths = std::make_shared<std::vector<std::string>>();
  auto compress = std::make_shared<bool>(false);
  cmd.add_option("paths", *paths);
  cmd.add_flag("--compress-store", *compress);
  return [paths, compress](App& app) {
    if (*compress) {
      if (!paths->empty())
        return app.report(Error{"init", paths->front(), 0, "--compress-store takes no PATH"},
                          kExitUsage);
      return run_compress(app);
    }
    return run_init(app, *paths);
  };
}

}  // namespace

Command init_command() {
  return {"init",
          "init [PATH...]",
          "record the baseline of every root (or the roots named)",
          kHelp,
          true,
          setup};
}

}  // namespace mamori::cli
