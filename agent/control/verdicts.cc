// An operator's verdict on a tampered path, from the console's incident page: accept it
// as legitimate, or restore it (core/proto/control.h, AcceptRequest and RestoreRequest).

#include <fcntl.h>
#include <sys/stat.h>

#include <fmt/format.h>

#include "agent/control/handlers.h"
#include "core/base/quote.h"
#include "core/baseline/record.h"
#include "core/db/sqlite.h"
#include "core/evidence/item_json.h"
#include "core/fs/atomic_replace.h"
#include "core/fs/beneath.h"
#include "core/proto/actions.h"

namespace mamori::control {
namespace {

using proto::ErrorAnswer;
using proto::ErrorCode;

ErrorAnswer refused(std::string message) {
  return ErrorAnswer{ErrorCode::kBadArgument, std::move(message), {}, {}};
}

// Writes the kept content of `item` at its path, atomically, checking what was written
// against the item's hash. The file keeps the baseline's owner, mode and xattrs when the
// baseline has a file there: accepting content grants no one the file. A new file gets
// the owner of the one quarantined, without set-id bits.
Status write_evidence(Env& env, evidence::EvidenceStore& store, const evidence::Item& item,
                      const std::optional<baseline::Entry>& was, int root_fd) {
  fs::InodeMeta meta;
  if (was && was->type == baseline::FileType::kRegular) {
    meta = {was->mode, was->uid, was->gid, 0, was->xattrs()};
  } else {
    meta = {item.mode & 0777, item.uid, item.gid, 0, {}};
  }
  meta.mtime_ns = env.clock().now_ns();
  const std::string display = evidence::absolute(item.root, item.path);
  auto parent = MAMORI_TRY(fs::open_parent(root_fd, item.path));
  return fs::replace_file(
      env, parent.dir.get(), parent.name, meta,
      [&](int fd) -> Status {
        hash::Sha256 sha;
        MAMORI_TRY(store.read(item.id, [&](std::span<const uint8_t> chunk) -> Status {
          sha.update(chunk);
          return write_all(env, fd, chunk, display);
        }));
        if (sha.finish() != item.sha256)
          return fail("accept", display, EBADMSG, "the evidence item's content is damaged");
        return ok();
      },
      display, fs::Sync::kNow);
}

}  // namespace

proto::Answer Handlers::accept(const proto::AcceptRequest& r) {
  auto chosen_root = chosen(proto::Roots{{r.root}});
  if (!chosen_root) return chosen_root.error();
  const size_t i = chosen_root->front();
  const std::string& root = s_.guard.root(i).path;
  const std::string display = evidence::absolute(root, r.path);
  if (s_.guard.root(i).paused)
    return refused(fmt::format("a deploy is running on {}: its changes are accepted when it ends",
                               quote(root)));

  std::optional<evidence::Item> item;
  if (r.evidence) {
    if (!s_.evidence) return failed(Error{"accept", display, 0, "this agent keeps no evidence"});
    auto found = s_.evidence->get(r.evidence);
    if (!found) return failed(found.error());
    if (!*found)
      return refused(fmt::format("no evidence item {} (never kept, or pruned)", r.evidence));
    item = std::move(**found);
    if (item->root != root || item->path != r.path)
      return refused(fmt::format("evidence item {} was kept from {}, not {}", r.evidence,
                                 quote(evidence::absolute(item->root, item->path)),
                                 quote(display)));
    if (!S_ISREG(item->mode))
      return refused(fmt::format("evidence item {} is no regular file's content", r.evidence));
    if (item->truncated)
      return refused(fmt::format(
          "evidence item {} kept only the beginning of a {}-byte file: put the whole file in "
          "place and accept the path without evidence",
          r.evidence, item->size));
  }

  // The baseline is written through a connection of its own, under the writers' lock
  // `mamori accept` takes: the guard's own connection only reads, and sees the commit.
  auto opened = baseline::open_state(s_.env, s_.state_dir, baseline::StateAccess::kWrite);
  if (!opened) return failed(opened.error());  // EBUSY: a `mamori accept` is running
  baseline::State& state = **opened;
  if (auto v = state.catalog.verify(); !v)
    return failed(
        Error{"accept", display, v.error().errnum,
              "refusing to extend a baseline that failed verification: " + v.error().message()});
  const int64_t now = s_.env.clock().now_ns();
  proto::PathAnswer a{root, r.path, 0, ""};
  auto done = [&]() -> Status {
    auto txn = MAMORI_TRY(db::Transaction::begin(state.catalog.db()));
    auto row = MAMORI_TRY(state.catalog.find_root(root));
    if (!row) return fail("accept", root, ENOENT, "the root has no baseline: run 'mamori init'");
    if (item) {
      auto was = MAMORI_TRY(state.catalog.get(row->id, r.path));
      MAMORI_TRY(write_evidence(s_.env, *s_.evidence, *item, was, s_.guard.root(i).fd.get()));
    }
    auto rep = MAMORI_TRY(
        baseline::record(state.catalog, *state.store, row->id, s_.guard.scan_context(i), r.path));
    if (!rep.errors.empty()) return tl::unexpected(rep.errors.front());
    if (item) {
      // Nothing else may have slipped in between the write and the record.
      auto now_there = MAMORI_TRY(state.catalog.get(row->id, r.path));
      if (!now_there || now_there->sha256 != item->sha256)
        return fail("accept", display, EAGAIN, "the file changed while it was accepted");
    }
    a.entries = rep.entries;
    MAMORI_TRY(state.store->commit());
    a.root_hash = MAMORI_TRY(state.catalog.seal(now)).hex();
    return txn.commit();
  }();
  if (!done) return failed(done.error());
  if (item) s_.guard.adopt(i, r.path);

  auto e = event::Event(proto::action::kBaselineAccepted, event::Severity::kNotice, now);
  e.set("mamori.root", root)
      .set("file.path", display)
      .set("mamori.baseline.root_hash", a.root_hash)
      .set("mamori.accept.entries", static_cast<int64_t>(a.entries));
  if (item) {
    e.set("mamori.evidence.id", item->id).set("file.hash.sha256", item->sha256.hex());
    if (!item->event_id.empty()) e.set("mamori.related_event", item->event_id);
  }
  e.message(item ? fmt::format("accepted as legitimate: {} now holds evidence item {} ({} bytes), "
                               "taken into the baseline",
                               quote(display), item->id, item->size)
                 : fmt::format("accepted as legitimate: {} taken into the baseline as it is "
                               "({} entr{})",
                               quote(display), a.entries, a.entries == 1 ? "y" : "ies"));
  s_.guard.emit(std::move(e));
  s_.flush();
  if (s_.log)
    s_.log(fmt::format("baseline: {} accepted; root hash {}", quote(display), a.root_hash));
  return a;
}

proto::Answer Handlers::restore(const proto::RestoreRequest& r) {
  auto chosen_root = chosen(proto::Roots{{r.root}});
  if (!chosen_root) return chosen_root.error();
  const size_t i = chosen_root->front();
  const uint64_t before = s_.guard.counters().restored + s_.guard.counters().quarantined;
  if (auto st = s_.guard.restore_now(i, r.path); !st) {
    if (st.error().errnum == EBUSY) return refused(st.error().message());
    return failed(st.error());
  }
  s_.flush();
  const uint64_t after = s_.guard.counters().restored + s_.guard.counters().quarantined;
  return proto::PathAnswer{s_.guard.root(i).path, r.path, after - before, ""};
}

}  // namespace mamori::control
