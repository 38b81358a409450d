#pragma once
// Fleet control (docs/manager.md): bans decided on one agent pushed to every other, and
// commands to agents, each a row of the store's commands table with its answer.
//
// - An agent's events batch, once stored, is searched for its own ban decisions (ip-banned,
//   success, no mamori.ban.origin: a ban the manager pushed carries one and is never
//   pushed again, so no echo). Each new address is recorded (bans) and sent at once, as a
//   `ban` command, to every other agent whose channel is live. An address the fleet holds
//   already, at least as long, is neither recorded nor pushed again.
// - What one agent decides is trusted only so far: an address in [manager] never_ban is
//   never pushed, and each agent may push at most max_agent_bans_per_hour new addresses
//   (a token bucket per agent, in this manager's memory: it starts full at each start).
//   The rest stays the agent's own ban; each refusal is counted and reported
//   (fleet-ban-refused) at most once a minute per agent.
// - At hello an agent is sent its commands not answered yet (pending, or sent on a channel
//   that ended before the answer: every command is idempotent) and the fleet's active
//   bans (in batches of at most 1000 addresses).
// - Other processes (`mamori manager ban/unban/command`) write rows to the store; wake()
//   reads what is new (bans not yet pushed, lifts not yet pushed, commands with id above
//   the last one seen) and delivers it. SQLite has no notification: a timer reads the
//   store's change_counter() every kPollInterval and calls wake() when it moved; a store
//   with LISTEN/NOTIFY can call wake() instead.
// - An agent's result is stored with its command (state ok, refused or failed).
//
// Threads: the server's io thread (hub.h).

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "core/logparse/ip.h"
#include "core/proto/channel.h"
#include "manager/db/store.h"

namespace mamori::manager {

class Hub;
class AgentChannel;

inline constexpr auto kPollInterval = std::chrono::milliseconds(150);
// Addresses per ban command (the control protocol's limit).
inline constexpr size_t kBanBatch = 1000;

class Fleet {
 public:
  explicit Fleet(Hub& hub, boost::asio::io_context& io);

  // Reads what was written while the manager was down, then polls.
  void start();
  void stop();

  // `agent`'s events, stored: pushes its own new bans to the other live agents.
  void on_events(const AgentRow& agent, const EventBatch& events);
  // `channel` said hello and was welcomed: its unanswered commands and the active bans.
  void on_hello(AgentChannel& channel, const std::string& agent_key);
  void on_result(const std::string& agent_key, const proto::channel::CommandResult& r);
  // Delivers what other processes wrote since the last call.
  void wake();

  // [manager] never_ban: what neither an agent nor an operator may ban fleet-wide.
  const std::vector<logparse::Cidr>& never_ban() const { return never_ban_; }

 private:
  // Bans of one agent the fleet did not take, not reported yet.
  struct Refused {
    AgentRow agent;
    std::string first_address;
    uint64_t never_ban = 0;
    uint64_t over_budget = 0;
    int64_t reported_ns = 0;  // the last report; 0: none yet
  };
  struct Budget {
    double bans = 0;  // may push this many now
    int64_t at_ns = 0;
  };

  void poll();
  // Takes one of `agent_key`'s max_agent_bans_per_hour; false when none is left.
  bool spend(const std::string& agent_key, int64_t now_ns);
  void refuse(const AgentRow& agent, const std::string& address, bool never_ban);
  // Reports the refusals of every agent last reported a minute ago or more (`all`: now).
  void report_refusals(int64_t now_ns, bool all);
  // Records a command for `agent_key` and sends it now on `channel` (null: at its hello).
  void command(const std::string& agent_key, AgentChannel* channel, const nlohmann::json& request);
  // Sends `ban` (a lift with `lift`) to every live agent but its origin.
  void push(const BanRow& ban, bool lift);

  Hub& hub_;
  const std::vector<logparse::Cidr> never_ban_;
  std::map<std::string, Budget> budgets_;
  std::map<std::string, Refused> refused_;
  boost::asio::steady_timer timer_;
  int64_t change_counter_ = -1;
  int64_t last_command_id_ = 0;
  bool stopped_ = false;
};

}  // namespace mamori::manager
