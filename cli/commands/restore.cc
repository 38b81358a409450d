// mamori restore: put changed, removed or re-permissioned entries back to the baseline,
// and with --quarantine-new move what the baseline does not know (web shells) into the
// evidence store, as the agent's quarantine does.

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include <CLI/CLI.hpp>

#include "cli/commands/command.h"
#include "cli/commands/commands.h"
#include "core/base/quote.h"
#include "core/baseline/restore.h"
#include "core/evidence/evidence.h"
#include "core/fs/beneath.h"
#include "core/fs/upload_policy.h"

namespace mamori::cli {
namespace {

// An attacker's chain of nested directories must not exhaust the stack or descriptors.
constexpr size_t kMaxQuarantineDepth = 256;

// Moves `rel` (and, for a directory, everything beneath it) out of the root: each file
// is unlinked, then its content (a symlink's target) kept in the evidence store from the
// descriptor still open on it; FIFOs, sockets and devices are removed. Counts the entries
// moved in `moved`; on failure what was moved so far stays in the evidence store.
Status quarantine(Env& env, evidence::EvidenceStore& evidence, int root_fd, const std::string& root,
                  const std::string& rel, size_t depth, size_t& moved) {
  if (depth > kMaxQuarantineDepth)
    return fail("quarantine", absolute(root, rel), ELOOP, "nested too deep: left in place");
  auto parent = MAMORI_TRY(fs::open_parent(root_fd, rel));
  const int dir = parent.dir.get();
  const char* name = parent.name.c_str();
  struct stat st {};
  if (::fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return ok();  // gone already
    return fail_errno("fstatat", absolute(root, rel));
  }
  if (S_ISDIR(st.st_mode)) {
    auto dfd = MAMORI_TRY(fs::open_beneath(root_fd, rel, O_RDONLY | O_DIRECTORY));
    std::vector<std::string> names;
    if (DIR* d = ::fdopendir(::fcntl(dfd.get(), F_DUPFD_CLOEXEC, 0))) {
      while (const dirent* e = ::readdir(d)) {
        const std::string_view n = e->d_name;
        if (n != "." && n != "..") names.emplace_back(n);
      }
      ::closedir(d);
    }
    for (const auto& n : names)
      MAMORI_TRY(quarantine(env, evidence, root_fd, root, fs::join(rel, n), depth + 1, moved));
    if (::unlinkat(dir, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
      return fail_errno("rmdir", absolute(root, rel));
    ++moved;
    return ok();
  }
  UniqueFd content;
  if (S_ISREG(st.st_mode)) {
    const int fd = ::openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return fail_errno("open", absolute(root, rel));  // kept before it goes
    content.reset(fd);
  } else if (S_ISLNK(st.st_mode)) {
    const auto target = MAMORI_TRY(fs::read_link_at(dir, parent.name, rel));
    const int mfd = ::memfd_create("mamori-link", MFD_CLOEXEC);
    if (mfd < 0) return fail_errno("memfd_create", absolute(root, rel));
    content.reset(mfd);
    MAMORI_TRY(
        write_all(env, mfd, {reinterpret_cast<const uint8_t*>(target.data()), target.size()}, rel));
  }
  // Out of the tree first (the web server must stop serving it), then kept.
  if (::unlinkat(dir, name, 0) != 0 && errno != ENOENT)
    return fail_errno("unlink", absolute(root, rel));
  ++moved;
  if (!content.valid()) return ok();
  evidence::Item item;
  item.root = root;
  item.path = rel;
  item.reason = "quarantined";
  item.mode = st.st_mode;
  item.uid = st.st_uid;
  item.gid = st.st_gid;
  item.mtime_ns = st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec;
  MAMORI_TRY(evidence.add(item, content.get()));
  return ok();
}

}  // namespace

int run_restore(App& app, const std::vector<std::string>& paths, bool all, bool quarantine_new) {
  if (all == !paths.empty())
    return app.report(Error{"restore", "", 0, "name the paths to restore, or give --all"},
                      kExitUsage);
  auto targets = app.targets(paths, all);
  if (!targets) return app.report(targets.error(), kExitUsage);

  // Restoring refreshes the stat cache, so it opens the state for writing.
  std::unique_ptr<baseline::State> state;
  if (auto code = open_verified_for_write(
          app, "refusing to restore from a baseline that failed verification", state))
    return *code;
  auto& catalog = state->catalog;
  // Where quarantined files are kept. One writer at a time: a running agent holds it.
  std::unique_ptr<evidence::EvidenceStore> evidence;
  if (quarantine_new) {
    evidence::Options eo;
    eo.quota_bytes = app.config().agent.evidence_quota_mb << 20;
    eo.max_item_bytes = app.config().agent.evidence_max_file_mb << 20;
    auto opened = evidence::EvidenceStore::open(app.env(), app.config().state_dir,
                                                evidence::EvidenceStore::Access::kWrite, eo);
    if (!opened) {
      Error e = opened.error();
      if (e.errnum == EBUSY)
        e.detail += " (a running agent quarantines in restore mode: 'mamori mode ROOT restore')";
      return app.report(e, App::code_for(e));
    }
    evidence = std::move(*opened);
  }

  nlohmann::json out = {{"command", "restore"},
                        {"restored", nlohmann::json::array()},
                        {"not_in_baseline", nlohmann::json::array()},
                        {"quarantined", nlohmann::json::array()},
                        {"allowed", nlohmann::json::array()},
                        {"errors", nlohmann::json::array()}};
  size_t restored = 0, errors = 0, unbaselined = 0, left = 0, quarantined = 0;
  for (const auto& t : *targets) {
    const std::string& root_path = t.root->config->path;
    auto root_id = baselined_root(app, catalog, root_path, unbaselined, out["errors"]);
    if (!root_id) return app.report(root_id.error(), App::code_for(root_id.error()));
    if (!*root_id) continue;
    if (!t.rel.empty()) {
      // A path that is neither in the baseline nor beneath a directory that is has
      // nothing to restore: say so instead of reporting success.
      bool known = false;
      auto found = catalog.for_each(**root_id, t.rel, [&](baseline::Entry&&) -> Status {
        known = true;
        return fail("stop", "", ECANCELED);
      });
      if (!known) {
        ++errors;
        warn_all(app, {Error{"restore", absolute(root_path, t.rel), ENOENT, "not in the baseline"}},
                 &out["errors"]);
        continue;
      }
    }
    auto root_fd = fs::open_root(root_path);
    if (!root_fd) {
      ++errors;
      warn_all(app, {root_fd.error()}, &out["errors"]);
      continue;
    }
    auto rep = baseline::restore(app.env(), catalog, *state->store, **root_id,
                                 app.scan(*t.root, root_fd->get(), nullptr), t.rel);
    if (!rep) return app.report(rep.error(), App::code_for(rep.error()));
    errors += rep->errors.size();
    warn_all(app, rep->errors, &out["errors"]);
    for (const auto& r : rep->restored) {
      ++restored;
      auto j = path_json(root_path, r.path);
      j["was"] = baseline::kind_name(r.was);
      j["attributes"] = baseline::attr_names(r.attrs);
      out["restored"].push_back(std::move(j));
      if (!app.options().json)
        std::printf("restored %s%s\n", escape(absolute(root_path, r.path)).c_str(),
                    r.was == baseline::ChangeKind::kRemoved ? "  (was removed)" : "");
    }
    auto uploads = fs::UploadPolicy::compile(t.root->config->allow_new, t.root->config->deny_new);
    if (!uploads) return app.report(uploads.error(), kExitUsage);  // config.cc validated these
    std::string gone;  // the last entry quarantined: what was beneath it went with it
    for (const auto& p : rep->not_in_baseline) {
      if (!gone.empty() && p.size() > gone.size() && p.starts_with(gone) && p[gone.size()] == '/')
        continue;
      const std::string abs = absolute(root_path, p);
      if (uploads->allows(root_fd->get(), p)) {
        // An upload, as the agent lets it stay: neither left nor quarantined.
        out["allowed"].push_back(path_json(root_path, p));
        if (!app.options().json) std::printf("allowed  %s  (allow_new)\n", escape(abs).c_str());
        continue;
      }
      if (quarantine_new) {
        size_t moved = 0;
        auto st = quarantine(app.env(), *evidence, root_fd->get(), root_path, p, 0, moved);
        quarantined += moved;
        if (st) {
          gone = p;
          auto j = path_json(root_path, p);
          j["entries"] = moved;
          out["quarantined"].push_back(std::move(j));
          if (!app.options().json)
            std::printf("quarantined %s  (kept as evidence: 'mamori evidence list')\n",
                        escape(abs).c_str());
          continue;
        }
        ++errors;
        warn_all(app, {st.error()}, &out["errors"]);
      }
      ++left;
      out["not_in_baseline"].push_back(path_json(root_path, p));
      if (!app.options().json)
        std::printf(
            "left     %s  (not in the baseline: --quarantine-new, remove it, or 'mamori accept' "
            "it)\n",
            escape(abs).c_str());
    }
  }
  out["left"] = left;
  if (app.options().json)
    print_json(out);
  else if (!app.options().quiet)
    std::printf(
        "%zu entr%s restored%s%s%s\n", restored, restored == 1 ? "y" : "ies",
        quarantined ? (", " + std::to_string(quarantined) + " quarantined").c_str() : "",
        left ? (", " + std::to_string(left) + " not in the baseline left in place").c_str() : "",
        errors ? (", " + std::to_string(errors) + " could not be handled").c_str() : "");
  if (errors) return kExitIncomplete;
  if (unbaselined) return kExitUsage;
  // The tree still differs from its baseline: say so, as check would.
  return left ? kExitChanges : kExitOk;
}

namespace {

constexpr std::string_view kHelp = R"TXT(NAME
    mamori restore - put entries back as the baseline has them

SYNOPSIS
    mamori restore [--quarantine-new] PATH...
    mamori restore [--quarantine-new] --all

DESCRIPTION
    Finds what differs beneath each PATH (or in every root with --all) and repairs
    it: content comes back byte for byte from the store (verified against its
    SHA-256 first), with type, mode, owner, security xattrs and mtime; removed files
    and whole directory trees are recreated; permission, owner and xattr changes
    are reverted in place.

    Every replacement is atomic: the baseline content is written to a temporary file
    in the same directory, fsync()ed, then renamed over the tampered one, so the file
    is never missing or half-written. Every path is resolved beneath its root with
    openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS): a symlink planted anywhere on the
    way fails the operation instead of being followed out of the tree.

    Entries that are not in the baseline (a web shell, say) are listed and left in
    place, and the exit status is 1, unless --quarantine-new is given: then each is
    moved out of the tree into the evidence store (STATE/evidence, 'mamori evidence
    list'), as the agent's quarantine does, a directory with everything in it; those
    that the root's allow_new lets stay (and deny_new does not refuse) are left and
    listed as allowed. The baseline itself is not changed, and restore refuses to run
    from a catalog that fails verification.

OPTIONS
    --all              every configured root
    --quarantine-new   move entries the baseline does not know into the evidence
                       store (honours allow_new / deny_new). A running agent holds
                       the evidence store: switch it to restore mode instead.

OUTPUT
    Text: one line per entry restored, quarantined, allowed or left, then a summary.
    With --json: {"restored": [...], "quarantined": [...], "allowed": [...],
    "not_in_baseline": [...] (left in place), "left": N, "errors": [...]}.

EXIT STATUS
    0 every change undone; 1 entries not in the baseline were left in place (the
    tree still differs from its baseline: --quarantine-new, remove or accept them);
    2 usage error or no baseline; 3 some entries could not be restored or
    quarantined (each is named); 4 the baseline failed verification.
)TXT";

Run setup(CLI::App& cmd) {
  struct Parsed {
    std::vector<std::string> paths;
    bool all = false, quarantine_new = false;
  };
  auto p = std::make_shared<Parsed>();
  cmd.add_flag("--all", p->all);
  cmd.add_flag("--quarantine-new", p->quarantine_new);
  cmd.add_option("paths", p->paths);
  return [p](App& app) { return run_restore(app, p->paths, p->all, p->quarantine_new); };
}

}  // namespace

Command restore_command() {
  return {"restore",
          "restore PATH...|--all",
          "put entries back as the baseline has them\n(--quarantine-new: web shells into the "
          "evidence store)",
          kHelp,
          true,
          setup};
}

}  // namespace mamori::cli
