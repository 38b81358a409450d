// bench_manager: a load tool for `mamori manager` (issue 12's benchmark; bench/manager/README.md).
// It holds N simulated agents (fleet.h) on one manager over the real protocol and real TLS,
// and measures, in phases:
//   1. credentials: enrolls the agents with a multi-use token, or reuses a credentials file
//      written by an earlier run against the same manager;
//   2. connect: every agent's channel (hello/welcome): how many are held, how fast;
//   3. idle: heartbeats only: the manager's CPU and database growth for a quiet fleet;
//   4. events: a sustained stream at --rate events/s in total, batched as the agent's link
//      does: events stored (acknowledged) per second, ack latency p50/p99;
//   5. liveness, with the stream still on: --cut agents closed without bye and --freeze
//      agents made silent with their sockets open, at one instant; the manager's
//      agent-lost events (its outbox) give detected - cut, p50/p99 for each case;
//   6. commands: every `command` an agent receives is answered and its arrival recorded.
//      Fan-out (a fleet-wide ban) is measured against a start mark: --trigger-ban makes
//      agent 0 send an ip-banned event and marks that instant; or something outside the
//      tool triggers it, after --ready-file appears, and writes the mark (nanoseconds since
//      the epoch) to --mark-file; --command-wait bounds the wait;
//   7. stop: bye on every channel; the credentials are saved for the next run.
// The manager's CPU, RSS and HWM come from /proc/PID (--manager-pid), its database's bytes
// from --db. A summary goes to stdout and, as JSON, to --json.
//
// Threads: one (the io_context is run in slices between the phases' checks).

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "agent/link/credentials.h"
#include "bench/manager/fleet.h"
#include "bench/manager/watch.h"
#include "core/base/env.h"

namespace mamori::bench {
namespace {

namespace asio = boost::asio;
using nlohmann::json;

struct Options {
  std::string token, token_file, url, fp;
  std::string credentials;
  size_t agents = 10'000;
  double rate = 20'000;
  double idle_s = 20, duration_s = 60;
  size_t cut = 100, freeze = 100;
  int lost_after_s = 10;
  int connect_timeout_s = 600;
  int manager_pid = 0;
  std::string db, state_dir;
  bool trigger_ban = false;
  // A new one for each run that reuses a manager's state: a ban it holds already is not
  // pushed again.
  std::string ban_address = "203.0.113.7";
  std::string ready_file, mark_file, commands_out;
  double command_wait_s = 5;
  std::string json_out;
  FleetOptions fleet;
};

double ms(int64_t ns) { return static_cast<double>(ns) / 1e6; }
double secs(int64_t ns) { return static_cast<double>(ns) / 1e9; }

struct Latency {
  size_t n = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
};
Latency latency_of(std::vector<int64_t> v) {
  Latency l;
  l.n = v.size();
  l.p50_ms = ms(percentile(v, 50));
  l.p99_ms = ms(percentile(v, 99));
  l.max_ms = v.empty() ? 0 : ms(v.back());
  return l;
}
json to_json(const Latency& l) {
  return {{"n", l.n}, {"p50_ms", l.p50_ms}, {"p99_ms", l.p99_ms}, {"max_ms", l.max_ms}};
}

// The manager's process and database at one instant.
struct Snapshot {
  int64_t mono_ns = 0;
  ProcSample proc;
  int64_t db = 0;
  int64_t tool_cpu_ns = 0;
};

class Bench {
 public:
  explicit Bench(Options o) : o_(std::move(o)), work_(asio::make_work_guard(io_)) {}

  int run();

 private:
  Snapshot snap() {
    Snapshot s;
    s.mono_ns = clock_.monotonic_ns();
    if (o_.manager_pid)
      if (auto p = sample_process(o_.manager_pid)) s.proc = *p;
    if (!o_.db.empty()) s.db = db_bytes(o_.db);
    s.tool_cpu_ns = own_cpu_ns();
    return s;
  }
  // The manager's CPU share (of one core) between two snapshots.
  static double cpu_pct(const Snapshot& a, const Snapshot& b) {
    return 100.0 * static_cast<double>(b.proc.cpu_ns - a.proc.cpu_ns) /
           static_cast<double>(b.mono_ns - a.mono_ns);
  }
  static double tool_pct(const Snapshot& a, const Snapshot& b) {
    return 100.0 * static_cast<double>(b.tool_cpu_ns - a.tool_cpu_ns) /
           static_cast<double>(b.mono_ns - a.mono_ns);
  }

  void run_for(double s) {
    io_.run_for(std::chrono::nanoseconds(static_cast<int64_t>(s * 1e9)));
    io_.restart();
  }
  template <typename Pred>
  bool run_until(Pred done, double timeout_s) {
    const int64_t deadline = clock_.monotonic_ns() + static_cast<int64_t>(timeout_s * 1e9);
    while (!done()) {
      if (clock_.monotonic_ns() >= deadline) return false;
      io_.run_one_for(std::chrono::milliseconds(50));
    }
    return true;
  }

  // Offers rate x elapsed events, every 10 ms, while rate_on_.
  void pace() {
    pacer_.expires_after(std::chrono::milliseconds(10));
    pacer_.async_wait([this](boost::system::error_code ec) {
      if (ec || !rate_on_) return;
      const int64_t now = clock_.monotonic_ns();
      const auto due = static_cast<uint64_t>(secs(now - rate_start_) * o_.rate);
      if (due > offered_) {
        fleet_->offer(due - offered_);
        offered_ = due;
      }
      pace();
    });
  }
  void start_rate() {
    rate_on_ = true;
    rate_start_ = clock_.monotonic_ns();
    offered_ = 0;
    pace();
  }
  uint64_t stop_rate() {
    rate_on_ = false;
    pacer_.cancel();
    return offered_;
  }

  // Pings 2 agents every 100 ms (Fleet::probe): the manager's responsiveness.
  void probe() {
    probe_timer_.expires_after(std::chrono::milliseconds(100));
    probe_timer_.async_wait([this](boost::system::error_code ec) {
      if (ec || stopping_) return;
      fleet_->probe(2);
      probe();
    });
  }
  // The round trips of the pongs that arrived between two snapshots.
  json responsiveness(const Snapshot& a, const Snapshot& b) {
    std::vector<int64_t> rtt;
    for (const auto& p : fleet_->probes())
      if (p.at_mono_ns >= a.mono_ns && p.at_mono_ns < b.mono_ns) rtt.push_back(p.rtt_ns);
    return to_json(latency_of(rtt));
  }

  // Reads the manager's outbox every 20 ms.
  void follow() {
    follower_timer_.expires_after(std::chrono::milliseconds(20));
    follower_timer_.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      poll_outbox();
      follow();
    });
  }
  void poll_outbox() {
    if (!follower_) return;
    auto events = follower_->poll();
    if (!events) {
      std::fprintf(stderr, "bench_manager: the manager's outbox: %s\n",
                   events.error().message().c_str());
      return;
    }
    const int64_t now = clock_.now_ns();
    for (auto& e : *events) {
      ++manager_events_[e.action];
      if (e.action != "agent-lost") continue;
      if (cut_at_.count(e.agent_key) || frozen_at_.count(e.agent_key)) {
        lost_at_.emplace(e.agent_key, std::make_pair(e.at_ns, now));
      } else if (e.reason == "manager-restarted") {
        ++restart_sweep_;  // online when a previous run's manager stopped (REUSE)
      } else if (!stopping_ && !ever_cut_.count(e.agent_key)) {
        ++unexpected_lost_;
        ++unexpected_reasons_[e.reason];
      }
    }
  }

  Status credentials();
  json liveness();
  json revive();
  void report_commands(json& out);
  void print(const json& r);

  Options o_;
  RealEnv env_;
  const Clock& clock_ = env_.clock();
  asio::io_context io_{1};
  std::unique_ptr<Fleet> fleet_;  // made once the manager's address is known
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::string url_, fp_, secret_;

  asio::steady_timer pacer_{io_};
  bool rate_on_ = false;
  int64_t rate_start_ = 0;
  uint64_t offered_ = 0;

  std::optional<OutboxFollower> follower_;
  asio::steady_timer follower_timer_{io_};
  asio::steady_timer probe_timer_{io_};
  std::map<std::string, uint64_t> manager_events_;
  std::map<std::string, int64_t> cut_at_, frozen_at_, frozen_last_sent_;
  std::map<std::string, std::pair<int64_t, int64_t>> lost_at_;  // @timestamp, seen
  std::set<std::string> ever_cut_;                              // every agent cut or frozen so far
  uint64_t unexpected_lost_ = 0;
  uint64_t restart_sweep_ = 0;
  std::map<std::string, uint64_t> unexpected_reasons_;
  bool stopping_ = false;
  int64_t command_mark_ns_ = 0;
  json summary_ = json::object();
};

Status Bench::credentials() {
  if (!o_.token.empty() || !o_.token_file.empty()) {
    std::string text = o_.token;
    if (text.empty()) {
      std::ifstream in(o_.token_file);
      std::getline(in, text);
    }
    auto t = link::decode_token(text);
    if (!t) return tl::unexpected(t.error());
    url_ = t->url;
    fp_ = t->fp;
    secret_ = t->secret;
  }
  if (!o_.url.empty()) url_ = o_.url;
  if (!o_.fp.empty()) fp_ = o_.fp;
  auto ep = MAMORI_TRY(link::parse_url(url_));
  o_.fleet.host = ep.host;
  o_.fleet.port = ep.port;
  o_.fleet.fp = fp_;

  std::vector<AgentCredentials> have;
  if (!o_.credentials.empty()) {
    auto loaded = load_credentials(o_.credentials, fp_);
    if (loaded)
      have = std::move(*loaded);
    else if (loaded.error().errnum != ENOENT)  // no file yet: every agent enrolls
      return tl::unexpected(loaded.error());
  }
  if (have.size() > o_.agents) have.resize(o_.agents);
  const size_t reused = have.size();
  fleet_ = std::make_unique<Fleet>(io_, clock_, o_.fleet);
  fleet_->add(std::move(have));
  const size_t missing = o_.agents - reused;
  if (missing > 0 && secret_.empty())
    return fail_msg(
        "enroll", o_.credentials,
        fmt::format("{} agents are missing and there is no --token to enroll them", missing));
  const int64_t t0 = clock_.monotonic_ns();
  bool enrolled = missing == 0;
  fleet_->enroll(missing, secret_, "bench-", [&] { enrolled = true; });
  run_until([&] { return enrolled; }, 3600);
  const double took = secs(clock_.monotonic_ns() - t0);
  summary_["credentials"] = {{"reused", reused},
                             {"enrolled", fleet_->counters().enrolled},
                             {"enroll_failures", fleet_->counters().enroll_failures},
                             {"enroll_s", took}};
  std::fprintf(stderr, "bench_manager: %zu agents reused, %llu enrolled in %.1f s (%llu failed)\n",
               reused, static_cast<unsigned long long>(fleet_->counters().enrolled), took,
               static_cast<unsigned long long>(fleet_->counters().enroll_failures));
  if (!o_.credentials.empty() && missing > 0)
    MAMORI_TRY(save_credentials(env_, o_.credentials, url_, fp_, fleet_->credentials()));
  return ok();
}

std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

int Bench::run() {
  if (auto st = credentials(); !st) {
    std::fprintf(stderr, "bench_manager: %s\n", st.error().message().c_str());
    return 2;
  }
  summary_["machine"] = {{"loadavg_start", loadavg()}};
  if (!o_.state_dir.empty()) {
    follower_.emplace(o_.state_dir + "/outbox");
    follow();
  }
  const size_t n = fleet_->size();
  auto& c = fleet_->counters();

  // 2. Connect every agent.
  const Snapshot s0 = snap();
  fleet_->connect_all();
  const bool all = run_until([&] { return fleet_->online() == n; }, o_.connect_timeout_s);
  const Snapshot s1 = snap();
  const size_t held = fleet_->online();
  summary_["connect"] = {{"agents", n},
                         {"held", held},
                         {"all", all},
                         {"seconds", secs(s1.mono_ns - s0.mono_ns)},
                         {"per_s", static_cast<double>(c.connects) / secs(s1.mono_ns - s0.mono_ns)},
                         {"connect_failures", c.connect_failures},
                         {"last_error", c.last_error},
                         {"manager_cpu_pct", cpu_pct(s0, s1)},
                         {"manager_rss_mib", static_cast<double>(s1.proc.rss_bytes) / (1 << 20)},
                         {"tool_cpu_pct", tool_pct(s0, s1)}};
  std::fprintf(stderr, "bench_manager: %zu of %zu agents held after %.1f s\n", held, n,
               secs(s1.mono_ns - s0.mono_ns));

  probe();

  // 3. Idle: heartbeats only.
  const uint64_t hb0 = c.heartbeats, lost0 = unexpected_lost_, end0 = c.ended_unexpectedly;
  run_for(o_.idle_s);
  const Snapshot si = snap();
  summary_["idle"] = {
      {"seconds", secs(si.mono_ns - s1.mono_ns)},
      {"online_end", fleet_->online()},
      {"heartbeats_per_s", static_cast<double>(c.heartbeats - hb0) / secs(si.mono_ns - s1.mono_ns)},
      {"manager_cpu_pct", cpu_pct(s1, si)},
      {"tool_cpu_pct", tool_pct(s1, si)},
      {"db_growth_bytes", si.db - s1.db},
      {"db_bytes_per_agent_day", held ? static_cast<double>(si.db - s1.db) /
                                            secs(si.mono_ns - s1.mono_ns) * 86400 /
                                            static_cast<double>(held)
                                      : 0.0},
      {"unexpected_lost", unexpected_lost_ - lost0},
      {"ended_unexpectedly", c.ended_unexpectedly - end0},
      {"ping_rtt", responsiveness(s1, si)}};
  std::fprintf(stderr, "bench_manager: idle %.0f s: manager CPU %.1f %%\n", o_.idle_s,
               cpu_pct(s1, si));
  // Liveness on the quiet fleet, then the cut and frozen agents come back.
  if (o_.cut + o_.freeze > 0) {
    summary_["lost"] = liveness();
    summary_["lost"]["recovery"] = revive();
  }

  // 4. The event stream.
  const Snapshot s2 = snap();
  const uint64_t acked0 = c.events_acked, sent0 = c.events_sent, batches0 = c.batches;
  const uint64_t lost1 = unexpected_lost_, end1 = c.ended_unexpectedly;
  fleet_->record_acks(true);
  start_rate();
  run_for(o_.duration_s);
  fleet_->record_acks(false);
  const Snapshot s3 = snap();
  {
    const double dur = secs(s3.mono_ns - s2.mono_ns);
    const uint64_t acked = c.events_acked - acked0;
    std::vector<int64_t> batch_lat, event_lat;
    for (const auto& a : fleet_->acks()) {
      batch_lat.push_back(a.latency_ns);
      event_lat.push_back(a.oldest_ns);
    }
    summary_["events"] = {
        {"seconds", dur},
        {"rate_offered_per_s", static_cast<double>(offered_) / dur},
        {"sent_per_s", static_cast<double>(c.events_sent - sent0) / dur},
        {"stored_per_s", static_cast<double>(acked) / dur},
        {"batches_per_s", static_cast<double>(c.batches - batches0) / dur},
        {"events_per_batch", c.batches > batches0 ? static_cast<double>(c.events_sent - sent0) /
                                                        static_cast<double>(c.batches - batches0)
                                                  : 0.0},
        {"ack_latency", to_json(latency_of(batch_lat))},
        {"oldest_event_to_ack", to_json(latency_of(event_lat))},
        {"backlog_end", fleet_->backlog()},
        {"online_end", fleet_->online()},
        {"manager_cpu_pct", cpu_pct(s2, s3)},
        {"tool_cpu_pct", tool_pct(s2, s3)},
        {"db_growth_bytes", s3.db - s2.db},
        {"db_bytes_per_event",
         acked ? static_cast<double>(s3.db - s2.db) / static_cast<double>(acked) : 0.0},
        {"db_bytes_per_agent_day",
         held ? static_cast<double>(s3.db - s2.db) / dur * 86400 / static_cast<double>(held) : 0.0},
        {"unexpected_lost", unexpected_lost_ - lost1},
        {"ended_unexpectedly", c.ended_unexpectedly - end1},
        {"ping_rtt", responsiveness(s2, s3)}};
    fleet_->acks().clear();
    std::fprintf(stderr, "bench_manager: events %.0f s: %.0f stored/s of %.0f offered/s\n", dur,
                 static_cast<double>(acked) / dur, static_cast<double>(offered_) / dur);
  }

  // 5. Liveness again, the stream still on (when enough agents are online to pick from).
  if (o_.cut + o_.freeze > 0 && o_.rate > 0) summary_["lost_under_load"] = liveness();
  const bool under_load = summary_.contains("lost_under_load");
  stop_rate();
  if (under_load) summary_["lost_under_load"]["recovery"] = revive();

  // 6. Commands: the fan-out hook.
  if (!o_.ready_file.empty()) {
    std::ofstream(o_.ready_file) << clock_.now_ns() << '\n';
  }
  if (o_.trigger_ban) command_mark_ns_ = fleet_->send_event_now(0, "ip-banned", o_.ban_address);
  if (o_.trigger_ban || !o_.mark_file.empty()) run_for(o_.command_wait_s);
  if (!o_.mark_file.empty()) {
    std::ifstream in(o_.mark_file);
    int64_t mark = 0;
    if (in >> mark) command_mark_ns_ = mark;
  }
  json commands;
  report_commands(commands);
  summary_["commands"] = commands;

  // 7. Stop: bye on every channel.
  stopping_ = true;
  const Snapshot s4 = snap();
  fleet_->stop();
  run_until([&] { return fleet_->open_channels() == 0; }, 60);
  poll_outbox();
  if (!o_.credentials.empty())
    if (auto st = save_credentials(env_, o_.credentials, url_, fp_, fleet_->credentials()); !st)
      std::fprintf(stderr, "bench_manager: %s\n", st.error().message().c_str());
  const Snapshot s5 = snap();
  summary_["manager"] = {
      {"pid", o_.manager_pid},
      {"rss_mib", static_cast<double>(s4.proc.rss_bytes) / (1 << 20)},
      {"hwm_mib", static_cast<double>(std::max(s4.proc.hwm_bytes, s5.proc.hwm_bytes)) / (1 << 20)},
      {"cpu_s", secs(s5.proc.cpu_ns)},
      {"db_bytes", s5.db},
      {"events", manager_events_},
      {"unexpected_lost", unexpected_lost_},
      {"unexpected_lost_reasons", unexpected_reasons_},
      {"lost_at_restart", restart_sweep_}};
  summary_["tool"] = {{"cpu_s", secs(s5.tool_cpu_ns)},
                      {"connects", c.connects},
                      {"reconnects", c.reconnects},
                      {"ended_unexpectedly", c.ended_unexpectedly},
                      {"manager_errors", c.manager_errors},
                      {"heartbeats", c.heartbeats},
                      {"events_sent", c.events_sent},
                      {"events_acked", c.events_acked},
                      {"results", c.results},
                      {"last_error", c.last_error},
                      {"end_reasons", c.end_reasons}};
  summary_["tool"]["resends"] = c.resends;  // windows the manager dropped and asked for again
  summary_["machine"]["loadavg_end"] = loadavg();
  if (!o_.json_out.empty()) std::ofstream(o_.json_out) << summary_.dump(2) << '\n';
  print(summary_);
  return 0;
}

// Cuts --cut agents and freezes --freeze others at one instant and waits for the
// manager's agent-lost events (lost_after + 15 s at most): detected - cut for each case.
json Bench::liveness() {
  const Snapshot from = snap();
  cut_at_.clear();
  frozen_at_.clear();
  frozen_last_sent_.clear();
  lost_at_.clear();
  // Agent 0 stays: it sends the ban trigger.
  for (auto& [k, t] : fleet_->cut(1, o_.cut)) cut_at_[k] = t;
  for (auto& [k, t] : fleet_->freeze(1, o_.freeze)) frozen_at_[k] = t;
  for (auto& [k, t] : fleet_->last_sent(1, fleet_->size())) frozen_last_sent_[k] = t;
  for (const auto& m : {cut_at_, frozen_at_})
    for (const auto& [k, t] : m) ever_cut_.insert(k);
  const size_t watched = cut_at_.size() + frozen_at_.size();
  const bool all =
      follower_ && run_until([&] { return lost_at_.size() == watched; }, o_.lost_after_s + 15.0);
  std::vector<int64_t> cut_l, cut_seen, frz_l, frz_seen, frz_since_last;
  for (const auto& [k, t] : lost_at_) {
    if (auto it = cut_at_.find(k); it != cut_at_.end()) {
      cut_l.push_back(t.first - it->second);
      cut_seen.push_back(t.second - it->second);
    } else if (auto f = frozen_at_.find(k); f != frozen_at_.end()) {
      frz_l.push_back(t.first - f->second);
      frz_seen.push_back(t.second - f->second);
      frz_since_last.push_back(t.first - frozen_last_sent_[k]);
    }
  }
  std::fprintf(stderr,
               "bench_manager: liveness: %zu of %zu cut and %zu of %zu frozen detected; %zu "
               "online, %llu agent-lost for agents never cut so far\n",
               cut_l.size(), cut_at_.size(), frz_l.size(), frozen_at_.size(), fleet_->online(),
               static_cast<unsigned long long>(unexpected_lost_));
  return {{"lost_after_s", o_.lost_after_s},
          {"seconds", secs(snap().mono_ns - from.mono_ns)},
          {"ping_rtt", responsiveness(from, snap())},
          {"online_before", fleet_->online() + watched},
          {"all_detected", all},
          {"cut",
           {{"agents", cut_at_.size()},
            {"detected", cut_l.size()},
            {"decided", to_json(latency_of(cut_l))},
            {"in_outbox", to_json(latency_of(cut_seen))}}},
          {"frozen",
           {{"agents", frozen_at_.size()},
            {"detected", frz_l.size()},
            {"decided", to_json(latency_of(frz_l))},
            {"in_outbox", to_json(latency_of(frz_seen))},
            {"since_last_message", to_json(latency_of(frz_since_last))}}}};
}

// The cut and frozen agents start again (a restarted agent: a new connection and hello;
// the manager answers a lost agent's return with a verify command) and the fleet is
// held whole again before the next phase (60 s at most).
json Bench::revive() {
  const Snapshot from = snap();
  const uint64_t lost0 = unexpected_lost_;
  fleet_->revive();
  const bool all = run_until([&] { return fleet_->online() == fleet_->size(); }, 60);
  const Snapshot to = snap();
  std::fprintf(stderr,
               "bench_manager: %zu of %zu agents online again after %.1f s%s; %llu agent-lost "
               "for agents never cut so far\n",
               fleet_->online(), fleet_->size(), secs(to.mono_ns - from.mono_ns),
               all ? "" : " (gave up waiting)", static_cast<unsigned long long>(unexpected_lost_));
  return {{"seconds", secs(to.mono_ns - from.mono_ns)},
          {"all_online", all},
          {"online", fleet_->online()},
          {"unexpected_lost", unexpected_lost_ - lost0},
          {"ping_rtt", responsiveness(from, to)}};
}

// Arrivals grouped by what the command asks; each group's spread across the agents it
// reached, from the start mark (or, without one, from its first arrival).
void Bench::report_commands(json& out) {
  auto& arrivals = fleet_->commands();
  if (!o_.commands_out.empty()) {
    std::ofstream f(o_.commands_out);
    f << "agent\tcommand_id\tarrival_ns\twhat\n";
    for (const auto& a : arrivals)
      f << a.agent << '\t' << a.command_id << '\t' << a.at_ns << '\t' << a.what << '\n';
  }
  // A command already seen before the mark (the verify a recovered agent is asked for)
  // is not the one the mark starts: its group is measured from its own first arrival.
  std::set<std::string> before_mark;
  for (const auto& a : arrivals)
    if (!command_mark_ns_ || a.at_ns < command_mark_ns_) before_mark.insert(a.what);
  std::map<std::string, std::vector<const CommandArrival*>> groups;
  for (const auto& a : arrivals) groups[a.what].push_back(&a);
  out = {{"mark_ns", command_mark_ns_}, {"received", arrivals.size()}, {"groups", json::array()}};
  for (const auto& [what, list] : groups) {
    const bool after_mark = command_mark_ns_ && !before_mark.count(what);
    int64_t first = list.front()->at_ns;
    for (const auto* a : list) first = std::min(first, a->at_ns);
    const int64_t origin = after_mark ? command_mark_ns_ : first;
    std::vector<int64_t> lat;
    std::set<uint32_t> agents;
    for (const auto* a : list) {
      if (!agents.insert(a->agent).second) continue;  // an agent's first arrival only
      lat.push_back(a->at_ns - origin);
    }
    out["groups"].push_back({{"what", what},
                             {"agents", agents.size()},
                             {"from", after_mark ? "mark" : "first arrival"},
                             {"latency", to_json(latency_of(lat))}});
  }
}

void Bench::print(const json& r) {
  auto f = [](const json& j, const char* k) { return j.value(k, 0.0); };
  const auto& cn = r["connect"];
  const auto& id = r["idle"];
  const auto& ev = r["events"];
  const auto& mg = r["manager"];
  std::printf("agents held          %zu of %zu in %.1f s (%.0f/s), %zu connect failures\n",
              cn.value("held", size_t{0}), cn.value("agents", size_t{0}), f(cn, "seconds"),
              f(cn, "per_s"), cn.value("connect_failures", size_t{0}));
  std::printf("idle (heartbeats)    manager CPU %.1f %%, %.0f heartbeats/s, DB %.0f B/agent/day\n",
              f(id, "manager_cpu_pct"), f(id, "heartbeats_per_s"), f(id, "db_bytes_per_agent_day"));
  std::printf(
      "events               %.0f stored/s of %.0f offered/s, %.1f events/batch, "
      "ack p50 %.1f ms p99 %.1f ms, backlog %zu\n",
      f(ev, "stored_per_s"), f(ev, "rate_offered_per_s"), f(ev, "events_per_batch"),
      f(ev["ack_latency"], "p50_ms"), f(ev["ack_latency"], "p99_ms"),
      ev.value("backlog_end", size_t{0}));
  std::printf(
      "                     manager CPU %.1f %%, tool CPU %.1f %%, DB %.0f B/event, "
      "%.0f B/agent/day\n",
      f(ev, "manager_cpu_pct"), f(ev, "tool_cpu_pct"), f(ev, "db_bytes_per_event"),
      f(ev, "db_bytes_per_agent_day"));
  for (const char* when : {"lost", "lost_under_load"})
    for (const char* k : {"cut", "frozen"}) {
      if (!r.contains(when)) continue;
      const auto& x = r[when][k];
      std::printf("%-20s %zu of %zu detected, p50 %.0f ms p99 %.0f ms max %.0f ms\n",
                  fmt::format("{}{}", k, when == std::string_view("lost") ? "" : " (load)").c_str(),
                  x.value("detected", size_t{0}), x.value("agents", size_t{0}),
                  f(x["decided"], "p50_ms"), f(x["decided"], "p99_ms"), f(x["decided"], "max_ms"));
    }
  std::printf(
      "manager              RSS %.0f MiB, HWM %.0f MiB, CPU %.1f s, DB %lld bytes, "
      "%llu unexpected agent-lost\n",
      f(mg, "rss_mib"), f(mg, "hwm_mib"), f(mg, "cpu_s"),
      static_cast<long long>(mg.value("db_bytes", int64_t{0})),
      static_cast<unsigned long long>(mg.value("unexpected_lost", uint64_t{0})));
  for (const auto& g : r["commands"]["groups"])
    std::printf("command %-40s %zu agents, from %s p50 %.1f ms p99 %.1f ms\n",
                g.value("what", "").substr(0, 40).c_str(), g.value("agents", size_t{0}),
                g.value("from", "").c_str(), f(g["latency"], "p50_ms"), f(g["latency"], "p99_ms"));
}

}  // namespace
}  // namespace mamori::bench

int main(int argc, char** argv) {
  using mamori::bench::Options;
  Options o;
  CLI::App app{"bench_manager: N simulated agents against one mamori manager (bench/manager)"};
  app.add_option("--token", o.token, "an enrollment token (mamori manager token create)");
  app.add_option("--token-file", o.token_file, "a file holding the token");
  app.add_option("--url", o.url, "the manager's https://HOST:PORT (default: the token's)");
  app.add_option("--fp", o.fp, "the manager's certificate fingerprint (default: the token's)");
  app.add_option("--credentials", o.credentials,
                 "agents' credentials: reused when present, written after enrolling");
  app.add_option("--agents", o.agents, "simulated agents (10000)");
  app.add_option("--rate", o.rate, "events/s offered in total during the stream (20000)");
  app.add_option("--idle", o.idle_s, "seconds of heartbeats only (20)");
  app.add_option("--duration", o.duration_s, "seconds of the event stream (60)");
  app.add_option("--cut", o.cut, "agents whose connection is cut without bye (100)");
  app.add_option("--freeze", o.freeze, "agents made silent, sockets open (100)");
  app.add_option("--lost-after", o.lost_after_s, "the manager's [manager] lost_after (10)");
  app.add_option("--connect-timeout", o.connect_timeout_s, "seconds to hold every agent (600)");
  app.add_option("--connect-concurrency", o.fleet.connect_concurrency, "handshakes at once (64)");
  app.add_option("--batch-events", o.fleet.batch_events, "events per batch at most (500)");
  app.add_option("--max-in-flight", o.fleet.max_in_flight, "batches unacknowledged (4)");
  app.add_option("--manager-pid", o.manager_pid, "the manager's PID (/proc: CPU, RSS)");
  app.add_option("--db", o.db, "the manager's SQLite file (its bytes, with -wal)");
  app.add_option("--state-dir", o.state_dir, "the manager's state dir (its outbox is followed)");
  app.add_flag("--trigger-ban", o.trigger_ban,
               "agent 0 sends an ip-banned event; its send time is the commands' start mark");
  app.add_option("--ban-address", o.ban_address, "the address of the ip-banned event");
  app.add_option("--ready-file", o.ready_file,
                 "written when the fleet waits for commands (an outside trigger starts then)");
  app.add_option("--mark-file", o.mark_file,
                 "an outside trigger's start mark: nanoseconds since the epoch");
  app.add_option("--command-wait", o.command_wait_s, "seconds to wait for commands (5)");
  app.add_option("--commands-out", o.commands_out, "every command's arrival, TSV");
  app.add_option("--json", o.json_out, "the summary as JSON");
  CLI11_PARSE(app, argc, argv);
  mamori::bench::Bench bench(std::move(o));
  return bench.run();
}
