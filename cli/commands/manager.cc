// mamori manager: runs the manager (manager/server), and its administration, which opens
// the manager's store directly (the manager need not run): enrollment tokens, and the
// agents it knows.

#include <systemd/sd-daemon.h>

#include <cstdio>
#include <map>
#include <memory>

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include "cli/commands/command.h"
#include "cli/commands/commands.h"
#include "cli/commands/manager_access.h"
#include "cli/commands/manager_fleet.h"
#include "core/base/quote.h"
#include "core/event/origin.h"
#include "core/fs/admin_files.h"
#include "core/proto/channel.h"
#include "manager/db/store.h"
#include "manager/server/identity.h"
#include "manager/server/server.h"

namespace mamori::cli {
namespace {

namespace ch = proto::channel;
using manager::Store;

struct ManagerOptions {
  std::string group = "default";
  std::optional<int64_t> uses;
  std::string expires;  // DURATION: 90, 30m, 12h, 7d
  std::vector<std::string> args;
};

}  // namespace

// "90" (seconds), "30m", "12h", "7d", "2w": seconds; nullopt when not a duration.
std::optional<int64_t> parse_duration(const std::string& text) {
  if (text.empty() || text.size() > 12) return std::nullopt;
  size_t digits = text.find_first_not_of("0123456789");
  if (digits == 0) return std::nullopt;
  const int64_t n = std::stoll(text.substr(0, digits));
  const std::string unit = digits == std::string::npos ? "s" : text.substr(digits);
  static constexpr std::pair<std::string_view, int64_t> kUnits[] = {
      {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}, {"w", 7 * 86400}};
  for (const auto& [name, size] : kUnits)
    if (unit == name && n > 0 && n <= 10LL * 366 * 86400 / size) return n * size;
  return std::nullopt;
}

namespace {

Result<std::unique_ptr<Store>> open_store(App& app) {
  const auto& m = app.config().manager;
  MAMORI_TRY(fs::make_private_dir(m.state_dir));
  return manager::open_store(app.env(), m.database);
}

std::string time_or_dash(int64_t ns) { return ns ? format_time_ns(ns) : "-"; }

int run_server(App& app) {
  auto server = manager::Server::start(app.env(), app.config());
  if (!server) return app.report(server.error(), kExitIncomplete);
  std::fprintf(stderr,
               "mamori manager: listening on %s (%s), certificate fingerprint %s, manager id %s\n",
               (*server)->local_address().c_str(), (*server)->public_url().c_str(),
               (*server)->identity().fingerprint.c_str(), (*server)->manager_id().c_str());
  sd_notifyf(0, "READY=1\nSTATUS=listening on %s", (*server)->local_address().c_str());
  auto st = (*server)->run(/*handle_signals=*/true);
  sd_notify(0, "STOPPING=1");
  if (!st) return app.report(st.error(), kExitIncomplete);
  return kExitOk;
}

int token_create(App& app, const ManagerOptions& o) {
  std::optional<int64_t> expires_at;
  const int64_t now = app.env().clock().now_ns();
  if (!o.expires.empty()) {
    const auto s = parse_duration(o.expires);
    if (!s)
      return app.report(Error{"manager token create", o.expires, 0,
                              "--expires takes a duration: 3600, 30m, 12h, 7d, 2w"},
                        kExitUsage);
    expires_at = now + *s * 1'000'000'000;
  }
  if (o.uses && *o.uses < 1)
    return app.report(Error{"manager token create", "", 0, "--uses must be at least 1"},
                      kExitUsage);
  if (o.group.empty() || o.group.size() > 64 ||
      o.group.find_first_of(std::string_view("\0\n\r\"", 4)) != std::string::npos)
    return app.report(Error{"manager token create", o.group, 0, "--group: 1-64 characters"},
                      kExitUsage);
  const auto& m = app.config().manager;
  auto store = open_store(app);
  if (!store) return app.report(store.error(), kExitIncomplete);
  // The certificate the tokens pin: made now when the manager never ran.
  auto id = manager::load_or_create_identity(app.env(), m.state_dir, event::system_hostname());
  if (!id) return app.report(id.error(), kExitIncomplete);
  auto secret = manager::random_bytes(32);
  if (!secret) return app.report(secret.error(), kExitIncomplete);
  const ch::Token token{manager::public_url_of(m, event::system_hostname()), id->fingerprint,
                        ch::base64url(*secret)};
  auto tid =
      (*store)->create_token({manager::sha256_hex(token.secret), o.group, o.uses, expires_at, now});
  if (!tid) return app.report(tid.error(), kExitIncomplete);
  const std::string text = ch::encode_token(token);
  if (app.options().json) {
    print_json({{"id", *tid},
                {"token", text},
                {"group", o.group},
                {"uses", o.uses ? nlohmann::json(*o.uses) : nlohmann::json()},
                {"expires_at",
                 expires_at ? nlohmann::json(format_time_ns(*expires_at)) : nlohmann::json()},
                {"url", token.url},
                {"fingerprint", token.fp}});
    return kExitOk;
  }
  std::printf("%s\n", text.c_str());
  if (!app.options().quiet)
    std::fprintf(stderr,
                 "token %lld: group \"%s\", %s, %s; the manager %s (fingerprint %s). It is "
                 "shown once: put it in the agents' [manager] token_file.\n",
                 static_cast<long long>(*tid), o.group.c_str(),
                 o.uses ? fmt::format("{} use(s)", *o.uses).c_str() : "unlimited uses",
                 expires_at ? ("expires " + format_time_ns(*expires_at)).c_str() : "no expiry",
                 token.url.c_str(), token.fp.c_str());
  return kExitOk;
}

int token_list(App& app) {
  auto store = open_store(app);
  if (!store) return app.report(store.error(), kExitIncomplete);
  auto tokens = (*store)->list_tokens();
  if (!tokens) return app.report(tokens.error(), kExitIncomplete);
  const int64_t now = app.env().clock().now_ns();
  auto state = [&](const manager::TokenRow& t) {
    if (t.revoked) return "revoked";
    if (t.expires_at_ns && *t.expires_at_ns <= now) return "expired";
    if (t.uses_left && *t.uses_left <= 0) return "used-up";
    return "valid";
  };
  if (app.options().json) {
    auto a = nlohmann::json::array();
    for (const auto& t : *tokens)
      a.push_back({{"id", t.id},
                   {"group", t.group},
                   {"uses_left", t.uses_left ? nlohmann::json(*t.uses_left) : nlohmann::json()},
                   {"expires_at", t.expires_at_ns ? nlohmann::json(format_time_ns(*t.expires_at_ns))
                                                  : nlohmann::json()},
                   {"created_at", format_time_ns(t.created_at_ns)},
                   {"revoked", t.revoked},
                   {"state", state(t)}});
    print_json({{"tokens", a}, {"count", tokens->size()}});
    return kExitOk;
  }
  std::printf("%-6s  %-20s  %-9s  %-30s  %s\n", "ID", "GROUP", "USES LEFT", "EXPIRES", "STATE");
  for (const auto& t : *tokens)
    std::printf("%-6lld  %-20s  %-9s  %-30s  %s\n", static_cast<long long>(t.id),
                escape(t.group).c_str(),
                t.uses_left ? std::to_string(*t.uses_left).c_str() : "unlimited",
                t.expires_at_ns ? format_time_ns(*t.expires_at_ns).c_str() : "never", state(t));
  return kExitOk;
}

int token_revoke(App& app, const std::vector<std::string>& args) {
  if (args.size() != 1 || args[0].empty() ||
      args[0].find_first_not_of("0123456789") != std::string::npos || args[0].size() > 18)
    return app.report(Error{"manager token revoke", "", 0, "give one token ID (token list)"},
                      kExitUsage);
  auto store = open_store(app);
  if (!store) return app.report(store.error(), kExitIncomplete);
  auto had = (*store)->revoke_token(std::stoll(args[0]));
  if (!had) return app.report(had.error(), kExitIncomplete);
  if (!*had)
    return app.report(Error{"manager token revoke", args[0], ENOENT, "no such token"}, kExitUsage);
  if (app.options().json)
    print_json({{"id", std::stoll(args[0])}, {"revoked", true}});
  else if (!app.options().quiet)
    std::printf("token %s revoked\n", args[0].c_str());
  return kExitOk;
}

int list_agents(App& app) {
  auto store = open_store(app);
  if (!store) return app.report(store.error(), kExitIncomplete);
  auto agents = (*store)->list_agents();
  if (!agents) return app.report(agents.error(), kExitIncomplete);
  auto usage = (*store)->usage();
  if (!usage) return app.report(usage.error(), kExitIncomplete);
  std::map<std::string, int64_t, std::less<>> events;
  for (const auto& u : *usage) events[u.agent_key] = u.events;
  std::vector<int64_t> counts;
  for (const auto& a : *agents) counts.push_back(events[a.agent_key]);
  if (app.options().json) {
    auto arr = nlohmann::json::array();
    for (size_t i = 0; i < agents->size(); ++i) {
      const auto& a = (*agents)[i];
      arr.push_back({{"agent_key", a.agent_key},
                     {"agent_id", a.info.agent_id},
                     {"name", a.info.name},
                     {"hostname", a.info.hostname},
                     {"group", a.group},
                     {"status", manager::to_string(a.status)},
                     {"status_since", time_or_dash(a.status_since_ns)},
                     {"manager_id", a.manager_id},
                     {"enrolled_at", time_or_dash(a.enrolled_at_ns)},
                     {"last_seen", a.last_seen_ns ? nlohmann::json(format_time_ns(a.last_seen_ns))
                                                  : nlohmann::json()},
                     {"version", a.info.version},
                     {"events", counts[i]}});
    }
    print_json({{"agents", arr}, {"count", agents->size()}});
    return kExitOk;
  }
  std::printf("%-36s  %-20s  %-20s  %-12s  %-8s  %-30s  %-10s  %s\n", "AGENT KEY", "NAME",
              "HOSTNAME", "GROUP", "STATUS", "LAST SEEN", "VERSION", "EVENTS");
  for (size_t i = 0; i < agents->size(); ++i) {
    const auto& a = (*agents)[i];
    std::printf("%-36s  %-20s  %-20s  %-12s  %-8s  %-30s  %-10s  %lld\n", a.agent_key.c_str(),
                escape(a.info.name).c_str(), escape(a.info.hostname).c_str(),
                escape(a.group).c_str(), std::string(manager::to_string(a.status)).c_str(),
                time_or_dash(a.last_seen_ns).c_str(), escape(a.info.version).c_str(),
                static_cast<long long>(counts[i]));
  }
  return kExitOk;
}

int revoke_agent(App& app, const std::vector<std::string>& args) {
  if (args.size() != 1 || args[0].empty() || args[0].size() > 64)
    return app.report(Error{"manager agents revoke", "", 0, "give one AGENT_KEY (manager agents)"},
                      kExitUsage);
  auto store = open_store(app);
  if (!store) return app.report(store.error(), kExitIncomplete);
  auto before = (*store)->set_agent_status(args[0], manager::AgentStatus::kRevoked,
                                           app.env().clock().now_ns());
  if (!before && before.error().errnum == ENOENT)
    return app.report(Error{"manager agents revoke", args[0], ENOENT, "no such agent"}, kExitUsage);
  if (!before) return app.report(before.error(), kExitIncomplete);
  if (app.options().json)
    print_json({{"agent_key", args[0]},
                {"status", "revoked"},
                {"previous_status", manager::to_string(*before)}});
  else if (!app.options().quiet)
    std::printf("agent %s revoked (was %s)\n", args[0].c_str(),
                std::string(manager::to_string(*before)).c_str());
  return kExitOk;
}

constexpr std::string_view kHelp = R"TXT(NAME
    mamori manager - the manager of a fleet of agents: run it, its tokens, its agents

SYNOPSIS
    mamori manager [--config FILE]
    mamori manager token create [--group NAME] [--uses N] [--expires DURATION] [--json]
    mamori manager token list [--json]
    mamori manager token revoke ID [--json]
    mamori manager agents [--json]
    mamori manager agents revoke AGENT_KEY [--json]
    mamori manager ban ADDRESS [--ttl DURATION] [--reason TEXT] [--json]
    mamori manager unban ADDRESS [--json]
    mamori manager bans [--json]
    mamori manager user add NAME [--role viewer|operator|admin] [--json]
    mamori manager user list | del NAME | passwd NAME [--json]
    mamori manager apitoken create NAME [--role ROLE] [--json]
    mamori manager apitoken list | revoke ID [--json]
    mamori manager command (--agent KEY | --group NAME | --all) [--wait]
                   [--timeout DURATION] verify | mode ROOT MODE | heal-clear |
                   ban ADDRESS [--ttl D] | unban ADDRESS | evidence ID | site |
                   accept ROOT PATH [EVIDENCE_ID] | restore ROOT PATH
    mamori manager drift (--group NAME | --all) [--timeout DURATION] [--json]

DESCRIPTION
    Without an action, runs the manager: HTTPS and the agents' WebSocket channel on
    [manager] listen (default 0.0.0.0:8443) with a self-signed certificate made at the
    first start (STATE/manager.crt, manager.key; STATE is [manager] state_dir). Agents
    enroll with a token, then keep one channel open: their events are stored in
    [manager] database, their heartbeats show them alive; an agent whose connection
    drops is lost at once, one silent for [manager] lost_after seconds too. The
    manager's own events (agent-enrolled, agent-lost, agent-retired, agent-recovered,
    agent-stopped, agent-duplicate, baseline-changed-unexpectedly) go to its [[sink]]s.
    It tells systemd when it is ready (Type=notify) and stops cleanly on SIGTERM.
    Details: docs/manager.md.

    token create   a new enrollment token, printed once: mamori-token-v1.... It
                   carries the manager's URL ([manager] public_url) and certificate
                   fingerprint; the store keeps only its hash
    token list     every token: id, group, uses left, expiry, state
    token revoke   the token enrolls no more agents (enrolled ones stay)
    agents         every agent: agent_key, name, host, group, status (enrolled,
                   online, unhealthy, lost, stopped, retired, revoked), last seen,
                   version, events stored. retired: its node was drained by
                   self-healing and then went away (auto-scaling churn, no alarm)
    agents revoke  the agent's credential is refused from now on; a running manager
                   closes its channel within 30 s. The agent does not enroll again by
                   itself: give it a new token (and delete its STATE/manager.json)

    ban            bans ADDRESS on every agent (fleet control): recorded in the store;
                   the running manager pushes it within a second to every connected
                   agent, and at their next hello to the others. Permanent unless --ttl
    unban          lifts the fleet's ban of ADDRESS on every agent
    bans           the fleet's active bans: decided by an agent (pushed to the others
                   at once) or by hand; origin is the deciding agent_key or "manager"
    command        one command to one agent (--agent), a group (--group) or every agent
                   (--all): one row per agent in the store, delivered by the manager now
                   (connected agents) or at the agent's next hello. --wait prints each
                   agent's result as it comes (until --timeout, default 30s) and exits 3
                   unless every agent answered ok. evidence ID (--agent only): the
                   evidence item ID of that agent, with the tampered bytes and the
                   baseline's (--json: base64url, up to 1 MiB each). site: each
                   root's site digest (see drift)
    drift          which connected nodes of a group (or of the fleet) serve something
                   other than the rest, and which files: each agent reports every
                   root's site digest (paths relative to the root, types, modes,
                   owners, contents, link targets: no mtimes, no root path, so copies of
                   one release agree); the digest most nodes hold is the reference, and
                   each node that differs is compared with a reference node directory
                   by directory, only where digests differ. Prints per root the nodes
                   that agree, then each other node's differences: changed (content or
                   metadata), added (only on that node), missing (only on the
                   reference), at most 100 per node. Agents not connected are listed,
                   not asked. --timeout (default 30s) bounds each round of questions.
                   Exits 1 when a node differs

    user add       a user of the manager's API and console, with a role (default
                   viewer; docs/manager.md "Users and API access" has the role table).
                   The password (at least 12 characters) is read from standard input:
                   typed twice without echo at a terminal, else its first line
    user list      every user: name, role, created
    user del       deletes the user and ends their sessions
    user passwd    sets a new password (read as by user add) and ends their sessions
    apitoken create  an API token for scripts, printed once: mamori-api-v1....; sent
                   as "Authorization: Bearer TOKEN", it acts with its --role. The store
                   keeps only its hash
    apitoken list  every API token: id, name, role, last used, state
    apitoken revoke  the token is refused from now on
    Each of these writes what it changed to the audit log (actor "cli:UID").

    The actions open the store directly: the manager need not run.

OPTIONS
    --group NAME         token create: the group its agents join (default "default")
    --uses N             token create: how many enrollments (default unlimited)
    --expires DURATION   token create: 3600, 30m, 12h, 7d, 2w (default never)
    --ttl DURATION       ban, command ban: how long (default permanent)
    --role ROLE          user add, apitoken create: viewer, operator or admin
    --reason TEXT        ban, command ban: why (agents put it in their ip-banned event)

OUTPUT
    --json: token create prints {"id", "token", "group", "uses", "expires_at", "url",
    "fingerprint"}; token list {"tokens": [{"id", "group", "uses_left", "expires_at",
    "created_at", "revoked", "state"}], "count"}; agents {"agents": [{"agent_key",
    "agent_id", "name", "hostname", "group", "status", "status_since", "manager_id"
    (the manager holding its channel, "" when none), "enrolled_at", "last_seen",
    "version", "events"}], "count"}; agents revoke {"agent_key", "status",
    "previous_status"}; ban {"id", "address", "expires_at", "reason"}; unban
    {"address", "lifted"}; bans {"bans": [{"id", "address", "expires_at", "origin",
    "reason", "created_at", "pushed"}], "count"}; command {"commands": [{"id",
    "agent_key"}], "count"}, with --wait {"results": [{"id", "agent_key", "name",
    "state", "answer"}], "ok"}; drift {"roots": [{"root", "reference": {"digest",
    "agents": [{"agent_key", "name"}]}, "drifted": [{"agent_key", "name", "digest",
    "entries", "differences": [{"path" (and "path_hex" when not UTF-8), "kind",
    "type"}], "truncated", "error"}]}], "unanswered": [{"agent_key", "name", "why"}],
    "offline": [{"agent_key", "name", "status"}], "drift"}; user add {"name",
    "role"}; user list {"users": [{"name", "role", "created_at"}], "count"}; apitoken
    create {"id", "name", "role", "token"}; apitoken list {"apitokens": [{"id", "name",
    "role", "created_by", "created_at", "last_used", "revoked"}], "count"}.

EXAMPLES
    mamori manager --config /etc/mamori/manager.toml
    mamori manager token create --group web --uses 50 --expires 7d
    mamori manager agents --json | jq -r '.agents[] | select(.status == "lost") | .name'
    mamori manager drift --group web || echo "a node of group web differs"

EXIT STATUS
    0 done (drift: every node compared agrees); 1 drift: a node differs; 2 usage (a
    bad option, no such token, agent or group); 3 failed (the store, the certificate,
    the listen address; command --wait: an agent failed, refused or did not answer in
    time; drift: no node differs, but one was not compared).
)TXT";

Run setup(CLI::App& cmd) {
  auto o = std::make_shared<ManagerOptions>();
  cmd.require_subcommand(0, 1);
  auto* token = cmd.add_subcommand("token");
  token->require_subcommand(1, 1);
  auto* create = token->add_subcommand("create");
  create->add_option("--group", o->group);
  create->add_option("--uses", o->uses);
  create->add_option("--expires", o->expires);
  token->add_subcommand("list");
  token->add_subcommand("revoke")->add_option("args", o->args);
  auto* agents = cmd.add_subcommand("agents");
  agents->require_subcommand(0, 1);
  agents->add_subcommand("revoke")->add_option("args", o->args);
  auto f = std::make_shared<FleetOptions>();
  auto* ban = cmd.add_subcommand("ban");
  ban->add_option("--ttl", f->ttl);
  ban->add_option("--reason", f->reason);
  ban->add_option("args", f->args);
  cmd.add_subcommand("unban")->add_option("args", f->args);
  cmd.add_subcommand("bans");
  auto* command = cmd.add_subcommand("command");
  command->add_option("--agent", f->agent);
  command->add_option("--group", f->group);
  command->add_flag("--all", f->all);
  command->add_flag("--wait", f->wait);
  command->add_option("--timeout", f->timeout);
  command->add_option("--ttl", f->ttl);
  command->add_option("--reason", f->reason);
  command->add_option("args", f->args);
  auto* drift = cmd.add_subcommand("drift");
  drift->add_option("--group", f->group);
  drift->add_flag("--all", f->all);
  drift->add_option("--timeout", f->timeout);
  auto a = std::make_shared<AccessOptions>();
  auto* user = cmd.add_subcommand("user");
  user->require_subcommand(1, 1);
  auto* user_new = user->add_subcommand("add");
  user_new->add_option("--role", a->role);
  user_new->add_option("args", a->args);
  user->add_subcommand("del")->add_option("args", a->args);
  user->add_subcommand("passwd")->add_option("args", a->args);
  user->add_subcommand("list");
  auto* apitoken = cmd.add_subcommand("apitoken");
  apitoken->require_subcommand(1, 1);
  auto* apitoken_new = apitoken->add_subcommand("create");
  apitoken_new->add_option("--role", a->role);
  apitoken_new->add_option("args", a->args);
  apitoken->add_subcommand("list");
  apitoken->add_subcommand("revoke")->add_option("args", a->args);
  return [o, f, a, &cmd, token, agents, user, apitoken](App& app) {
    const auto chosen = cmd.get_subcommands();
    if (chosen.empty()) return run_server(app);
    const std::string sub = chosen.front()->get_name();
    if (sub == "agents")
      return agents->get_subcommands().empty() ? list_agents(app) : revoke_agent(app, o->args);
    if (sub == "ban") return fleet_ban(app, *f);
    if (sub == "unban") return fleet_unban(app, *f);
    if (sub == "bans") return fleet_bans(app);
    if (sub == "command") return fleet_command(app, *f);
    if (sub == "drift") return fleet_drift(app, *f);
    if (sub == "user") {
      const std::string name = user->get_subcommands().front()->get_name();
      if (name == "add") return user_add(app, *a);
      if (name == "del") return user_del(app, *a);
      if (name == "passwd") return user_passwd(app, *a);
      return user_list(app);
    }
    if (sub == "apitoken") {
      const std::string name = apitoken->get_subcommands().front()->get_name();
      if (name == "create") return apitoken_create(app, *a);
      if (name == "revoke") return apitoken_revoke(app, *a);
      return apitoken_list(app);
    }
    const auto action = token->get_subcommands();
    if (action.empty())
      return usage_error("manager", "manager token takes an ACTION: create, list or revoke");
    const std::string name = action.front()->get_name();
    if (name == "create") return token_create(app, *o);
    if (name == "list") return token_list(app);
    return token_revoke(app, o->args);
  };
}

}  // namespace

Command manager_command() {
  return {"manager",
          "manager [ACTION]",
          "the manager of a fleet: run it (no action), its\n"
          "enrollment tokens and agents, fleet bans and\n"
          "commands, API users (token, agents, ban, unban,\n"
          "bans, command, user, apitoken)",
          kHelp,
          true,
          setup};
}

}  // namespace mamori::cli
