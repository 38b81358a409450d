#include "agent/sinks/sink_set.h"

#include <algorithm>
#include "agent/sinks/smtp/smtp_sink.h"
#include "agent/sinks/syslog/syslog_sink.h"
#include "agent/sinks/webhook/webhook_sink.h"

#include "core/outbox/cursor.h"

namespace mamori::sinks {

Result<std::unique_ptr<Sink>> make_sink(const config::SinkConfig& config) {
  switch (config.type) {
    case config::SinkType::kSyslog:
      return make_syslog_sink(config);
    case config::SinkType::kSmtp:
      return make_smtp_sink(config);
    case config::SinkType::kWebhook:
      return make_webhook_sink(config);
  }
  return fail_msg("sink", config.name, "unknown type");
}

Result<std::unique_ptr<SinkSet>> SinkSet::start(Env& env, const config::Config& config,
                                                const std::string& outbox_dir,
                                                uint64_t start_sequence,
                                                const event::Origin& origin, OnState on_state) {
  auto set = std::make_unique<SinkSet>();
  // A sink taken out of the config must not hold the outbox's segments (until the
  // quota) for a cursor nobody reads any more.
  if (auto cursors = outbox::list_cursors(outbox_dir)) {
    for (const auto& c : *cursors) {
      if (!c.name.starts_with("sink.")) continue;
      const bool configured = std::any_of(config.sinks.begin(), config.sinks.end(), [&](auto& sc) {
        return Follower::cursor_name(sc.name) == c.name;
      });
      if (!configured) (void)outbox::remove_cursor(outbox_dir, c.name);
    }
  }
  if (config.sinks.empty()) return set;
  // The previous release's cursors (read once, for the upgrade: follower.h).
  const std::string legacy_dir = config.state_dir + "/sinks";
  std::vector<std::unique_ptr<Sink>> sinks;
  for (const auto& sc : config.sinks) sinks.push_back(MAMORI_TRY(make_sink(sc)));
  for (size_t i = 0; i < sinks.size(); ++i) {
    const auto& sc = config.sinks[i];
    FollowerOptions o;
    o.outbox_dir = outbox_dir;
    o.start_sequence = start_sequence;
    o.legacy_cursor_path = legacy_dir + "/" + sc.name + ".cursor";
    o.legacy_log_path = config.agent.event_log;
    o.filter = sc.filter;
    o.digest_s = sc.digest_s;
    o.on_state = on_state;
    o.origin = &origin;
    set->followers_.push_back(std::make_unique<Follower>(env, std::move(sinks[i]), std::move(o)));
    set->types_.push_back(sc.type);
  }
  for (auto& f : set->followers_) f->start();
  return set;
}

SinkSet::~SinkSet() { stop(); }

void SinkSet::notify() {
  for (auto& f : followers_) f->notify();
}

void SinkSet::stop() {
  for (auto& f : followers_) f->request_stop();
  for (auto& f : followers_) f->stop();
}

std::vector<proto::SinkStatus> SinkSet::status() const {
  std::vector<proto::SinkStatus> out;
  for (size_t i = 0; i < followers_.size(); ++i) {
    const auto s = followers_[i]->stats();
    out.push_back({followers_[i]->name(), types_[i], s.delivered, s.filtered, s.failures,
                   s.skipped_lines, s.pending, s.missed, s.next_sequence, s.failing, s.last_error});
  }
  return out;
}

}  // namespace mamori::sinks
