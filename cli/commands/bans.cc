// mamori bans list|add|del: the ban list in STATE/bans.db, applied to the firewall
// directly (so it works whether or not the agent runs; the agent shares the file).

#include <cstdio>

#include <fmt/format.h>

#include "agent/ban/banner.h"
#include "agent/ban/options.h"
#include "cli/commands/commands.h"
#include "core/base/quote.h"
#include "core/event/event.h"
#include "core/event/origin.h"
#include "core/fs/admin_files.h"
#include "core/outbox/outbox.h"

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
      .set("event.type", nlohmann::json::array({action == "ip-banned" ? "denied" : "allowed"}))
      .set("source.ip", ip.to_string())
      .set("rule.name", "manual")
      .set("event.reason", reason)
      .message(fmt::format("{} {} by hand: {}", ip.to_string(),
                           action == "ip-banned" ? "banned" : "unbanned", reason));
  return e;
}

// Every ban and unban is an event, by hand too: appended to the agent's event log (one
// O_APPEND write, so it interleaves whole with the agent's own), where the sinks take it,
// with the same origin as the agent's (STATE/agent-id; event.dataset mamori.ban).
void record(App& app, event::Event e, const char* outcome) {
  e.outcome(outcome);
  e.set("event.dataset", "mamori.ban");
  auto origin = event::Origin::load(app.env(), app.config().state_dir, app.config().agent.name);
  if (!origin) {
    std::fprintf(stderr, "mamori: warning: the event was not written: %s\n",
                 origin.error().message().c_str());
    return;
  }
  origin->stamp(e);
  auto box = outbox::Outbox::open(app.env(), app.config().agent.event_log);
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
  auto event = manual_event(app, "ip-banned", ip, options.reason);
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
  auto event = manual_event(app, "ip-unbanned", ip, "mamori bans del");
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

}  // namespace mamori::cli
