// mamori bans list|add|del: the ban list in STATE/bans.db, applied to the firewall
// directly (so it works whether or not the agent runs; the agent shares the file).

#include <cstdio>

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include "agent/ban/banner.h"
#include "agent/ban/options.h"

#include "cli/commands/command.h"
#include "cli/commands/commands.h"
#include "core/base/quote.h"
#include "core/event/event.h"
#include "core/event/origin.h"
#include "core/fs/admin_files.h"
#include "core/outbox/outbox.h"
#include "core/proto/actions.h"

namespace mamori::cli {
namespace {

using ban::BanEntry;

Result<ban::BanList> open_list(App& app) {
  const auto was = MAMORI_TRY(fs::make_private_dir(app.config().state_dir));
  if (was) app.warn_private_dir(app.config().state_dir, *was);
  return ban::BanList::open(ban::list_path(app.config()), ban::options_from(app.config()));
}

// "9m58s", "2d3h": the two largest units, for a human.
std::string human_duration(int64_t s) {
  static constexpr std::pair<int64_t, const char*> kUnits[] = {
      {86400, "d"}, {3600, "h"}, {60, "m"}, {1, "s"}};
  for (size_t i = 0; i < std::size(kUnits); ++i) {
    const auto [size, name] = kUnits[i];
    if (s < size) continue;
    std::string out = fmt::format("{}{}", s / size, name);
    if (i + 1 < std::size(kUnits) && (s % size) >= kUnits[i + 1].first)
      out += fmt::format("{}{}", (s % size) / kUnits[i + 1].first, kUnits[i + 1].second);
    return out;
  }
  return "0s";
}

nlohmann::json entry_json(const BanEntry& e, int64_t now) {
  const bool permanent = e.expires_at == 0;
  return {{"ip", e.key()},  // a prefix ban (docs/bans.md) as NETWORK/LEN
          {"prefix", e.is_prefix() ? nlohmann::json(e.prefix) : nlohmann::json()},
          {"family", e.ip.v4 ? "ipv4" : "ipv6"},
          {"permanent", permanent},
          {"expires_at", permanent ? nlohmann::json() : nlohmann::json(e.expires_at)},
          {"expires_in_s", permanent ? nlohmann::json() : nlohmann::json(e.expires_at - now)},
          {"offences", e.offences},
          {"first_seen", e.first_seen},
          {"last_ban", e.last_ban},
          {"rule", e.rule},
          {"reason", e.reason},
          {"source", e.source}};
}

// The event a backend gets for a ban or unban made by hand.
event::Event manual_event(App& app, std::string_view action, const ban::IpAddress& ip,
                          const std::string& reason) {
  event::Event e(action, event::Severity::kNotice, app.env().clock().now_ns());
  e.set("event.category", nlohmann::json::array({"network"}))
      .set("event.type",
           nlohmann::json::array({action == proto::action::kIpBanned ? "denied" : "allowed"}))
      .set("source.ip", ip.to_string())
      .set("rule.name", "manual")
      .set("event.reason", reason)
      .message(fmt::format("{} {} by hand: {}", ip.to_string(),
                           action == proto::action::kIpBanned ? "banned" : "unbanned", reason));
  return e;
}

// Every ban and unban is an event, by hand too: appended to the agent's outbox (under its
// lock, so it gets the next sequence number even while the agent writes), where the
// sinks and the event log take it.
void record(App& app, event::Event e, const char* outcome) {
  e.outcome(outcome);
  e.set("event.dataset", "mamori.ban");
  const auto& c = app.config();
  // The agent's origin (STATE/agent-id), so a manager files the ban under this host.
  auto origin = event::Origin::load(app.env(), c.state_dir, c.agent.name);
  if (!origin) {
    std::fprintf(stderr, "mamori: warning: the event was not written: %s\n",
                 origin.error().message().c_str());
    return;
  }
  origin->stamp(e);
  auto box = outbox::Outbox::open(app.env(), {outbox::outbox_dir(c.state_dir),
                                              c.agent.event_log,
                                              {.quota_bytes = c.agent.outbox_quota_mb << 20},
                                              &*origin});
  if (box) {
    box->append(e);
    if (box->flush()) return;
  }
  std::fprintf(stderr, "mamori: warning: the event could not be written to %s\n",
               escape(app.config().agent.event_log).c_str());
}

std::optional<ban::IpAddress> parse_ip(App& app, const std::vector<std::string>& args, int& code) {
  if (args.size() != 1) {
    code = app.report(Error{"bans", "", 0, "give exactly one IP address"}, kExitUsage);
    return std::nullopt;
  }
  auto ip = ban::IpAddress::parse(args[0]);
  if (!ip)
    code = app.report(Error{"bans", args[0], 0, "is not an IPv4 or IPv6 address"}, kExitUsage);
  return ip;
}

int list_bans(App& app) {
  auto list = open_list(app);
  if (!list) return app.report(list.error(), App::code_for(list.error()));
  auto entries = list->list();
  if (!entries) return app.report(entries.error(), App::code_for(entries.error()));
  const int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(app.env().clock().now().time_since_epoch())
          .count();
  // Expired bans wait in the file for the agent's next expire(); they are no longer bans.
  std::erase_if(*entries, [&](const BanEntry& e) { return e.expires_at && e.expires_at <= now; });
  if (app.options().json) {
    auto bans = nlohmann::json::array();
    for (const auto& e : *entries) bans.push_back(entry_json(e, now));
    print_json({{"bans", std::move(bans)}, {"count", entries->size()}});
    return kExitOk;
  }
  if (entries->empty()) {
    if (!app.options().quiet) std::printf("no bans\n");
    return kExitOk;
  }
  std::printf("%-39s  %-10s  %8s  %-20s  %s\n", "IP", "EXPIRES IN", "OFFENCES", "RULE", "REASON");
  for (const auto& e : *entries)
    std::printf("%-39s  %-10s  %8u  %-20s  %s\n", e.key().c_str(),
                e.expires_at ? human_duration(e.expires_at - now).c_str() : "permanent", e.offences,
                escape(e.rule).c_str(), escape(e.reason).c_str());
  if (!app.options().quiet) std::printf("%zu bans\n", entries->size());
  return kExitOk;
}

int add_ban(App& app, const ban::IpAddress& ip, const BansOptions& options) {
  if (options.permanent && options.ttl_s)
    return app.report(Error{"bans add", "", 0, "give --ttl or --permanent, not both"}, kExitUsage);
  if (options.ttl_s && *options.ttl_s <= 0)
    return app.report(Error{"bans add", "", 0, "--ttl must be at least 1 second"}, kExitUsage);
  auto list = open_list(app);
  if (!list) return app.report(list.error(), App::code_for(list.error()));
  ban::BanRequest request{"manual", options.reason, "manual", std::nullopt, options.force};
  if (options.permanent) request.ttl = ban::kPermanent;
  if (options.ttl_s) request.ttl = std::chrono::seconds(*options.ttl_s);
  // Refused before the firewall is touched.
  if (!options.force && list->allowlisted(ip))
    return app.report(
        Error{"bans add", ip.to_string(), 0, "is on the ban allowlist; --force bans it anyway"},
        kExitUsage);
  auto backend = ban::open_backend(list->options(), app.env().clock());
  if (!backend) return app.report(backend.error(), kExitIncomplete);
  ban::Banner banner(*list, **backend, app.env().clock());
  auto event = manual_event(app, proto::action::kIpBanned, ip, options.reason);
  auto d = banner.ban(ip, request, event.fields());
  if (!d) {
    // A backend failure leaves the ban recorded: the agent's next sync applies it.
    const bool recorded = list->get(ip).value_or(std::nullopt).has_value();
    Error e = d.error();
    if (recorded) e.detail += " (recorded in the ban list; not yet in force)";
    record(app, std::move(event.set("error.message", e.message())), "failure");
    return app.report(e, kExitIncomplete);
  }
  if (d->outcome != ban::BanOutcome::kAlreadyBanned) {
    event.set("mamori.ban.ttl_s", static_cast<int64_t>(d->ttl.count()));
    record(app, std::move(event), "success");
  }
  const char* outcome = d->outcome == ban::BanOutcome::kNew        ? "new"
                        : d->outcome == ban::BanOutcome::kReplaced ? "replaced"
                                                                   : "already-banned";
  if (app.options().json) {
    auto j = entry_json(d->entry, banner.now());
    j["outcome"] = outcome;
    j["ttl_s"] = d->ttl.count();
    j["backend"] = (*backend)->name();
    print_json(j);
  } else if (!app.options().quiet) {
    const std::string until =
        d->ttl == ban::kPermanent ? "permanently" : "for " + human_duration(d->ttl.count());
    std::printf("%s %s %s (%s)\n", ip.to_string().c_str(),
                d->outcome == ban::BanOutcome::kAlreadyBanned ? "is already banned" : "banned",
                until.c_str(), std::string((*backend)->name()).c_str());
  }
  return kExitOk;
}

int del_ban(App& app, const ban::IpAddress& ip) {
  auto list = open_list(app);
  if (!list) return app.report(list.error(), App::code_for(list.error()));
  auto backend = ban::open_backend(list->options(), app.env().clock());
  if (!backend) return app.report(backend.error(), kExitIncomplete);
  ban::Banner banner(*list, **backend, app.env().clock());
  auto event = manual_event(app, proto::action::kIpUnbanned, ip, "mamori bans del");
  auto had = banner.unban(ip, event.fields());
  if (!had) return app.report(had.error(), kExitIncomplete);
  if (*had) record(app, std::move(event), "success");
  if (app.options().json)
    print_json({{"ip", ip.to_string()}, {"removed", *had}, {"backend", (*backend)->name()}});
  else if (!app.options().quiet)
    std::printf("%s %s\n", ip.to_string().c_str(), *had ? "unbanned" : "was not banned");
  return kExitOk;
}

// `bans del NETWORK/LEN`: lifts a prefix ban (prefix escalation).
int del_prefix_ban(App& app, const std::string& text) {
  auto net = ban::Cidr::parse(text);
  if (!net) return app.report(Error{"bans", text, 0, "is not a network (NETWORK/LEN)"}, kExitUsage);
  auto list = open_list(app);
  if (!list) return app.report(list.error(), App::code_for(list.error()));
  auto backend = ban::open_backend(list->options(), app.env().clock());
  if (!backend) return app.report(backend.error(), kExitIncomplete);
  auto had = list->unban(*net);
  if (!had) return app.report(had.error(), kExitIncomplete);
  if (auto st = (*backend)->unban_prefix(*net, {}); !st)
    return app.report(st.error(), kExitIncomplete);
  if (app.options().json)
    print_json({{"ip", net->to_string()}, {"removed", *had}, {"backend", (*backend)->name()}});
  else if (!app.options().quiet)
    std::printf("%s %s\n", net->to_string().c_str(), *had ? "unbanned" : "was not banned");
  return kExitOk;
}

// Applies the whole list again: after `nft flush ruleset`, a firewall reload, a reboot
// without the agent.
int sync_bans(App& app) {
  auto list = open_list(app);
  if (!list) return app.report(list.error(), App::code_for(list.error()));
  auto backend = ban::open_backend(list->options(), app.env().clock());
  if (!backend) return app.report(backend.error(), kExitIncomplete);
  ban::Banner banner(*list, **backend, app.env().clock());
  if (auto st = banner.sync(); !st) return app.report(st.error(), kExitIncomplete);
  const uint64_t n = list->size().value_or(0);
  if (app.options().json)
    print_json({{"synced", n}, {"backend", (*backend)->name()}});
  else if (!app.options().quiet)
    std::printf("%llu bans applied (%s)\n", static_cast<unsigned long long>(n),
                std::string((*backend)->name()).c_str());
  return kExitOk;
}

}  // namespace

int run_bans(App& app, const std::string& action, const std::vector<std::string>& args,
             const BansOptions& options) {
  if (action == "list" || action == "sync") {
    if (!args.empty())
      return app.report(Error{"bans " + action, "", 0, "takes no arguments"}, kExitUsage);
    return action == "list" ? list_bans(app) : sync_bans(app);
  }
  if (action != "add" && action != "del")
    return app.report(Error{"bans", action, 0, "ACTION must be list, add, del or sync"},
                      kExitUsage);
  if (action == "del" && args.size() == 1 && args[0].find('/') != std::string::npos)
    return del_prefix_ban(app, args[0]);
  int code = kExitUsage;
  const auto ip = parse_ip(app, args, code);
  if (!ip) return code;
  return action == "add" ? add_ban(app, *ip, options) : del_ban(app, *ip);
}

namespace {

constexpr std::string_view kHelp = R"TXT(NAME
    mamori bans - the addresses banned in the firewall, and why

SYNOPSIS
    mamori bans list [--json]
    mamori bans add IP [--ttl SECONDS | --permanent] [--reason TEXT] [--force] [--json]
    mamori bans del IP [--json]
    mamori bans sync [--json]

DESCRIPTION
    The agent bans the addresses its access-log rules and its correlation with
    tampering find; these commands show and change the same ban list
    (STATE/bans.db) and apply each change to the firewall at once, whether or not
    the agent runs. Bans live in nftables sets of mamori's own table (table inet
    mamori, sets banned4 and banned6), each element with its own timeout; they cut
    established connections too. The list is the record: the agent applies it again
    at start-up, so bans survive restarts and reboots. Details: docs/bans.md.

    list   current bans, soonest expiry first: address, time left, offences,
           rule and reason
    add    ban IP by hand; without --ttl or --permanent for the escalating TTL of a
           repeat offence (10 minutes, then x4 per offence within 30 days, at most
           7 days). Refused for an allowlisted address (loopback by default) unless
           --force
    del    lift the ban now and forget the address's offences
    sync   apply the whole list to the firewall again (after 'nft flush ruleset'
           or a firewall reload; the agent does this at start-up)

OPTIONS
    --ttl SECONDS   add: ban for exactly this long (replaces a current ban's TTL)
    --permanent     add: ban until 'mamori bans del'
    --reason TEXT   add: recorded with the ban
    --force         add: ban even an allowlisted address

OUTPUT
    --json: list prints {"bans": [...], "count": N}; each ban has ip, family
    ("ipv4"|"ipv6"), permanent, expires_at (Unix seconds, null if permanent),
    expires_in_s, offences, first_seen, last_ban, rule, reason, source
    ("logwatch", "correlation", "manual"). add prints the ban with outcome ("new",
    "replaced", "already-banned"), ttl_s (0 = permanent) and backend; del prints
    {"ip", "removed", "backend"}; sync {"synced", "backend"}.

EXAMPLES
    mamori bans list
    mamori bans add 203.0.113.7 --ttl 3600 --reason "credential stuffing"
    mamori bans add 2001:db8::66 --permanent
    mamori bans del 203.0.113.7
    mamori bans list --json | jq -r '.bans[].ip'

EXIT STATUS
    0 done (del: also when IP was not banned); 2 usage: not an IP address, an
    allowlisted address without --force; 3 failed (the firewall refused: the ban
    stays recorded and the agent applies it at its next start).
)TXT";

// The actions are CLI11 subcommands (`mamori bans add IP --ttl N`): the spellings are
// those of the positional ACTION they replace, so scripts keep working, and an option
// given to an action that does not take it (`bans list --ttl 5`) is now refused.
Run setup(CLI::App& cmd) {
  struct Parsed {
    std::vector<std::string> args;
    BansOptions options;
  };
  auto p = std::make_shared<Parsed>();
  cmd.require_subcommand(0, 1);
  for (const char* name : {"list", "add", "del", "sync"}) {
    auto* action = cmd.add_subcommand(name);
    action->add_option("args", p->args);
    if (std::string_view(name) != "add") continue;
    action->add_option("--ttl", p->options.ttl_s);
    action->add_flag("--permanent", p->options.permanent);
    action->add_option("--reason", p->options.reason);
    action->add_flag("--force", p->options.force);
  }
  return [p, &cmd](App& app) {
    const auto chosen = cmd.get_subcommands();
    if (chosen.empty()) return usage_error("bans", "bans takes an ACTION: list, add, del or sync");
    return run_bans(app, chosen.front()->get_name(), p->args, p->options);
  };
}

}  // namespace

Command bans_command() {
  return {"bans",
          "bans list|add IP|del IP",
          "the addresses banned in the firewall, and why",
          kHelp,
          true,
          setup};
}

}  // namespace mamori::cli
