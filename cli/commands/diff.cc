// mamori diff: show how one path differs from its baseline: a unified diff of text,
// the two SHA-256 of binary content, and every metadata change.

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include "cli/commands/command.h"
#include "cli/commands/commands.h"
#include "core/base/quote.h"
#include "core/fs/beneath.h"

namespace mamori::cli {
namespace {

// Larger contents are compared by hash only.
constexpr uint64_t kMaxDiffBytes = 16ull << 20;

Result<std::string> read_current(int root_fd, const std::string& rel, uint64_t limit) {
  auto fd = MAMORI_TRY(fs::open_beneath(root_fd, rel, O_RDONLY | O_NONBLOCK | O_NOCTTY));
  return fs::read_fd(fd.get(), limit, rel);
}

}  // namespace

int run_diff(App& app, const std::string& arg) {
  auto t = app.resolve(arg);
  if (!t) return app.report(t.error(), kExitUsage);
  auto state = app.open_state(baseline::StateAccess::kRead);
  if (!state)
    return app.report(state.error(),
                      state.error().errnum == ENOENT ? kExitUsage : App::code_for(state.error()));
  auto& catalog = (*state)->catalog;
  const std::string& root_path = t->root->config->path;
  const std::string abs = absolute(root_path, t->rel);
  const bool json = app.options().json;
  // Text lines go to stdout unless --json, where the same facts go into `out`.
  auto say = [&](const std::string& line) {
    if (!json) std::printf("%s\n", line.c_str());
  };
  nlohmann::json out = path_json(root_path, t->rel);
  out["command"] = "diff";
  out["attributes"] = nlohmann::json::array();
  auto changed = [&](const char* attr) { out["attributes"].push_back(attr); };
  bool usage = false;  // the request, not the operation, was wrong: exit 2

  auto result = [&]() -> Result<int> {
    auto row = MAMORI_TRY(catalog.find_root(root_path));
    if (!row) {
      usage = true;
      return fail("diff", root_path, 0, "root has no baseline yet: run 'mamori init'");
    }
    auto base = MAMORI_TRY(catalog.get(row->id, t->rel));
    auto root_fd = MAMORI_TRY(fs::open_root(root_path));
    auto st = fs::stat_beneath(root_fd.get(), t->rel);
    if (!st && st.error().errnum != ENOENT) return tl::unexpected(st.error());
    std::optional<baseline::Entry> now;
    if (st) {
      baseline::Entry e;
      e.path = t->rel;
      baseline::apply_stat(e, *st);
      now = e;
    }
    // Nothing by that name, then or now: a mistyped path, not a failed operation.
    if (!base && !now) {
      usage = true;
      return fail("diff", abs, ENOENT, "neither in the baseline nor on disk");
    }
    out["baseline"] = base ? entry_json(*base) : nlohmann::json(nullptr);
    out["current"] = now ? entry_json(*now) : nlohmann::json(nullptr);
    if (!base) {
      out["change"] = "added";
      say(fmt::format("{}: not in the baseline (added)", escape(abs)));
      return kExitChanges;
    }
    if (!now) {
      out["change"] = "removed";
      say(fmt::format("{}: removed (baseline: {}, {})", escape(abs),
                      baseline::type_name(base->type),
                      base->type == baseline::FileType::kRegular ? base->sha256.hex() : "-"));
      return kExitChanges;
    }
    out["change"] = "none";
    int code = kExitOk;
    if (base->type != now->type) {
      out["change"] = "changed";
      changed("type");
      say(fmt::format("type: {} -> {}", baseline::type_name(base->type),
                      baseline::type_name(now->type)));
      return kExitChanges;
    }
    if (base->mode != now->mode) {
      changed("mode");
      say(fmt::format("mode: {:04o} -> {:04o}", base->mode, now->mode));
      code = kExitChanges;
    }
    if (base->uid != now->uid || base->gid != now->gid) {
      changed("owner");
      say(fmt::format("owner: {}:{} -> {}:{}", base->uid, base->gid, now->uid, now->gid));
      code = kExitChanges;
    }
    if (base->type == baseline::FileType::kSymlink) {
      auto parent = MAMORI_TRY(fs::open_parent(root_fd.get(), t->rel));
      const auto target = MAMORI_TRY(fs::read_link_at(parent.dir.get(), parent.name, t->rel));
      if (target != base->link_target()) {
        changed("link_target");
        out["current"]["link_target"] = is_valid_utf8(target) ? target : escape(target);
        say(fmt::format("link target: {} -> {}", quote(base->link_target()), quote(target)));
        code = kExitChanges;
      }
    }
    if (base->type != baseline::FileType::kRegular) return code;
    if (base->size > kMaxDiffBytes || now->size > kMaxDiffBytes) {
      // Too large to show: compare by hash.
      out["content"] = "large";
      say(fmt::format("content: large file; baseline sha256 {}, size {} -> {}", base->sha256.hex(),
                      base->size, now->size));
      if (base->size != now->size) changed("content");
      return base->size != now->size ? kExitChanges : code;
    }
    const std::string before = MAMORI_TRY((*state)->store->read_all(base->sha256, kMaxDiffBytes));
    const std::string after = MAMORI_TRY(read_current(root_fd.get(), t->rel, kMaxDiffBytes));
    out["current"]["sha256"] = hash::sha256(after).hex();
    if (before == after) {
      out["content"] = "same";
      return code;
    }
    changed("content");
    if (looks_binary(before) || looks_binary(after)) {
      out["content"] = "binary";
      say(fmt::format("binary content differs: sha256 {} -> {}", base->sha256.hex(),
                      hash::sha256(after).hex()));
      return kExitChanges;
    }
    out["content"] = "text";
    std::string text;
    MAMORI_TRY(unified_diff(app.env(), abs, before, after, json ? &text : nullptr));
    if (json) out["diff"] = is_valid_utf8(text) ? text : escape(text);
    return kExitChanges;
  }();
  if (!result) {
    return app.report(result.error(), usage ? kExitUsage : App::code_for(result.error()));
  }
  if (!out["attributes"].empty() && out["change"] == "none") out["change"] = "changed";
  if (json) print_json(out);
  return *result;
}

namespace {

constexpr std::string_view kHelp = R"TXT(NAME
    mamori diff - show how one path differs from its baseline

SYNOPSIS
    mamori diff [--json] PATH

DESCRIPTION
    Prints metadata changes (type, mode, owner, link target), then for a text file
    a unified diff of the baseline content against the current content (diff -u),
    for a binary file both SHA-256, and for files over 16 MiB sizes and hashes.

    The content is the attacker's: when stdout is a terminal, control bytes in the
    diff (ESC, carriage return, C1 controls, bidirectional overrides, invalid UTF-8)
    are shown escaped (\x1b, \u{202e}) so they cannot erase or hide a line; a pipe
    or a file gets the exact bytes.

OUTPUT
    With --json: {"command": "diff", "path", "change": "added|removed|changed|none",
    "attributes": [...], "baseline": {...}|null, "current": {...}|null, "content":
    "same|text|binary|large", "diff": the unified diff text}.

EXIT STATUS
    0 no difference; 1 differences; 2 usage error (a PATH outside every root, or
    neither in the baseline nor on disk) or no baseline; 3 could not read; 4 the
    stored content failed verification.
)TXT";

Run setup(CLI::App& cmd) {
  auto paths = std::make_shared<std::vector<std::string>>();
  cmd.add_option("path", *paths);
  return [paths](App& app) {
    if (paths->size() != 1) return usage_error("diff", "diff takes exactly one PATH");
    return run_diff(app, paths->front());
  };
}

}  // namespace

Command diff_command() {
  return {"diff", "diff PATH", "show how one file differs from its baseline", kHelp, true, setup};
}

}  // namespace mamori::cli
