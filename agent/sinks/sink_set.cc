#include "agent/sinks/sink_set.h"

#include "agent/sinks/smtp/smtp_sink.h"
#include "agent/sinks/syslog/syslog_sink.h"
#include "agent/sinks/webhook/webhook_sink.h"
#include "core/fs/admin_files.h"

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
                                                const std::string& outbox_path, OnState on_state) {
  auto set = std::make_unique<SinkSet>();
  if (config.sinks.empty()) return set;
  const std::string dir = config.state_dir + "/sinks";
  MAMORI_TRY(fs::make_private_dirs(dir));
  std::vector<std::unique_ptr<Sink>> sinks;
  for (const auto& sc : config.sinks) sinks.push_back(MAMORI_TRY(make_sink(sc)));
  for (size_t i = 0; i < sinks.size(); ++i) {
    const auto& sc = config.sinks[i];
    FollowerOptions o;
    o.outbox_path = outbox_path;
    o.cursor_path = dir + "/" + sc.name + ".cursor";
    o.filter = sc.filter;
    o.digest_s = sc.digest_s;
    o.on_state = on_state;
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

void SinkSet::outbox_reopened() {
  for (auto& f : followers_) f->outbox_reopened();
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
                   s.skipped_lines, s.pending, s.failing, s.last_error});
  }
  return out;
}

}  // namespace mamori::sinks
