#include "manager/server/reporter.h"

#include <cstdio>

#include "agent/sinks/sink_set.h"
#include "core/fs/admin_files.h"
#include "core/outbox/cursor.h"
#include "manager/db/store.h"

namespace mamori::manager {
namespace {

void log(const std::string& s) { std::fprintf(stderr, "mamori manager: %s\n", s.c_str()); }

}  // namespace

Reporter::Reporter(Env& env, Store& store) : env_(env), store_(store) {}

Result<std::unique_ptr<Reporter>> Reporter::open(Env& env, const config::Config& config,
                                                 Store& store) {
  const auto& m = config.manager;
  std::unique_ptr<Reporter> r(new Reporter(env, store));
  r->origin_.emplace(MAMORI_TRY(event::Origin::load(env, m.state_dir, config.agent.name)));
  outbox::Options o;
  o.dir = outbox::outbox_dir(m.state_dir);
  o.origin = &*r->origin_;
  r->outbox_.emplace(MAMORI_TRY(outbox::Outbox::open(env, std::move(o))));
  const std::string& dir = r->outbox_->dir();
  auto cursor = MAMORI_TRY(outbox::load_cursor(dir, kStoreCursor));
  if (!cursor) {
    cursor = r->outbox_->next_sequence();
    MAMORI_TRY(outbox::save_cursor(env, dir, kStoreCursor, *cursor));
  }
  r->reader_.emplace(dir);
  r->reader_->seek(*cursor);
  r->sinks_ =
      MAMORI_TRY(sinks::SinkSet::start(env, config, dir, r->outbox_->next_sequence(), *r->origin_,
                                       [](const std::string& sink, const std::string& error) {
                                         if (!error.empty()) log("sink " + sink + ": " + error);
                                       }));
  r->copy_to_store(store);  // what an earlier run wrote and did not store
  return r;
}

Reporter::~Reporter() {
  if (outbox_ && outbox_->queued() > 0) flush();
  if (sinks_) sinks_->stop();
}

void Reporter::report(event::Event e) {
  // The journal gets a line too: what an operator reads first.
  const auto& msg = e.get("message");
  log(e.action() + ": " + (msg.is_string() ? msg.get<std::string>() : std::string()));
  origin_->stamp(e);
  outbox_->append(e);
  if (!post_) return flush();
  if (flush_posted_) return;
  flush_posted_ = true;
  post_([this] {
    flush_posted_ = false;
    flush();
  });
}

std::vector<proto::SinkStatus> Reporter::sink_status() const { return sinks_->status(); }

void Reporter::flush() {
  if (auto s = outbox_->flush(); !s) log("outbox: " + s.error().message());
  sinks_->notify();
  if (run_in_store_)
    run_in_store_([this](Store& store) { copy_to_store(store); });
  else
    copy_to_store(store_);
}

void Reporter::copy_to_store(Store& store) {
  for (;;) {
    std::vector<outbox::Record> records;
    auto n = reader_->read(records, 500);
    if (!n) return log("outbox: " + n.error().message());
    if (*n == 0) return;
    std::vector<nlohmann::json> events;
    for (const auto& rec : records) {
      auto j = nlohmann::json::parse(rec.payload, nullptr, false);
      if (j.is_object()) events.push_back(std::move(j));
    }
    if (auto stored =
            store.insert_events(origin_->fields().agent_id, events, env_.clock().now_ns());
        !stored) {
      // Read again from the cursor next time.
      auto c = outbox::load_cursor(outbox_->dir(), kStoreCursor);
      reader_.emplace(outbox_->dir());
      reader_->seek(c && *c ? **c : 0);
      return log("store: " + stored.error().message());
    }
    if (auto s = outbox::save_cursor(env_, outbox_->dir(), kStoreCursor, reader_->next()); !s)
      log("outbox cursor: " + s.error().message());
  }
}

}  // namespace mamori::manager
