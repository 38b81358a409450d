// What several subcommands share: warnings, verified state, a root's baseline, sealing,
// showing a diff.

#include <fcntl.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "cli/commands/commands.h"
#include "core/base/quote.h"
#include "core/base/unique_fd.h"

extern char** environ;

namespace mamori::cli {
namespace {

Result<UniqueFd> memfd_with(const std::string& name, const std::string& content, Env& env) {
  const int fd = ::memfd_create(name.c_str(), MFD_CLOEXEC);
  if (fd < 0) return fail_errno("memfd_create", name);
  UniqueFd owned(fd);
  MAMORI_TRY(
      write_all(env, fd, {reinterpret_cast<const uint8_t*>(content.data()), content.size()}, name));
  return owned;
}

}  // namespace

bool looks_binary(const std::string& s) {
  return std::memchr(s.data(), '\0', std::min<size_t>(s.size(), 8192)) != nullptr;
}

Result<int> unified_diff(Env& env, const std::string& label, const std::string& before,
                         const std::string& after, std::string* captured) {
  // The contents are the attacker's: at a terminal, escape sequences and carriage returns
  // in them could erase or hide the injected lines. Captured and escaped there; a pipe or
  // a file gets the exact bytes (patch(1) must be able to use them).
  std::string shown;
  const bool terminal = !captured && ::isatty(STDOUT_FILENO);
  if (terminal) captured = &shown;
  auto a = MAMORI_TRY(memfd_with("baseline", before, env));
  auto b = MAMORI_TRY(memfd_with("current", after, env));
  int pipe_fds[2] = {-1, -1};
  if (captured && ::pipe2(pipe_fds, O_CLOEXEC) != 0) return fail_errno("pipe2", "diff");
  UniqueFd out_r(pipe_fds[0]), out_w(pipe_fds[1]);
  std::fflush(stdout);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // stdout first: the pipe's fd may be 3 or 4, which the next two replace.
  if (captured) posix_spawn_file_actions_adddup2(&actions, out_w.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, a.get(), 3);
  posix_spawn_file_actions_adddup2(&actions, b.get(), 4);
  // The name is the attacker's: escape it so it cannot forge diff header lines.
  const std::string la = "a" + escape(label), lb = "b" + escape(label);
  const char* argv[] = {"diff",     "-u",        "--label",   la.c_str(), "--label",
                        lb.c_str(), "/dev/fd/3", "/dev/fd/4", nullptr};
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, "diff", &actions, nullptr, const_cast<char**>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return fail("posix_spawn", "diff", rc);
  out_w.reset();  // so the read below ends when diff(1) exits
  if (captured) {
    // Read to the end before waiting: diff(1) blocks once the pipe is full.
    char buf[65536];
    for (;;) {
      const ssize_t n = ::read(out_r.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      captured->append(buf, static_cast<size_t>(n));
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return fail_errno("waitpid", "diff");
  if (!WIFEXITED(status) || WEXITSTATUS(status) > 1)
    return fail("diff", label, 0, "diff(1) failed");
  if (terminal) {
    const std::string text = escape_for_terminal(shown);
    std::fwrite(text.data(), 1, text.size(), stdout);
  }
  return WEXITSTATUS(status);
}

void warn_all(App& app, const std::vector<Error>& errors, nlohmann::json* out) {
  for (const auto& e : errors) {
    if (out) out->push_back(error_json(e));
    if (!app.options().json) std::fprintf(stderr, "mamori: warning: %s\n", e.message().c_str());
  }
}

std::optional<int> open_verified_for_write(App& app, std::string_view refusal,
                                           std::unique_ptr<baseline::State>& state) {
  auto opened = app.open_state(baseline::StateAccess::kWrite);
  if (!opened) return app.report(opened.error(), App::code_for(opened.error()));
  if (auto v = (*opened)->catalog.verify(); !v) {
    Error e = v.error();
    e.detail = std::string(refusal) + ": " + e.detail;
    return app.report(e, App::code_for(e));
  }
  state = std::move(*opened);
  return std::nullopt;
}

Result<std::optional<int64_t>> baselined_root(App& app, baseline::Catalog& catalog,
                                              const std::string& root, size_t& unbaselined,
                                              nlohmann::json& errors) {
  auto row = MAMORI_TRY(catalog.find_root(root));
  if (row) return std::optional<int64_t>(row->id);
  ++unbaselined;
  warn_all(app, {Error{"baseline", root, 0, "root has no baseline yet: run 'mamori init'"}},
           &errors);
  return std::optional<int64_t>{};
}

Status seal_and_commit(App& app, baseline::State& state, db::Transaction& txn, int64_t now,
                       nlohmann::json& out) {
  MAMORI_TRY(state.store->commit());
  const auto root_hash = MAMORI_TRY(state.catalog.seal(now));
  MAMORI_TRY(txn.commit());
  out["root_hash"] = root_hash.hex();
  if (!app.options().json && !app.options().quiet)
    std::printf("baseline sealed; root hash %s\n", root_hash.hex().c_str());
  return ok();
}

}  // namespace mamori::cli
