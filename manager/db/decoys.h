#pragma once
// Decoys as the manager sees them (docs/decoys.md, docs/manager.md "Decoys"): which stored
// events are about a decoy (classify_decoy_event, run by both stores as an event is
// stored, so the decoys page reads a small table of its own instead of every ban), and
// the per-decoy figures the console shows, false-positive rate included (decoy_report).
//
// Pure functions, no I/O, except decoy_report, which reads through a Store.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/base/result.h"
#include "manager/db/store.h"

namespace mamori::manager {

// A hit's url.original (an open's file.path) is kept to this many bytes (cut at a UTF-8
// character's start).
inline constexpr size_t kMaxDecoyUrl = 512;
// At most this many decoy events and this many lifts make one report: beyond, the report
// says it is incomplete (the newest events count).
inline constexpr int64_t kMaxDecoyReportEvents = 100'000;
inline constexpr int64_t kMaxDecoyReportLifts = 100'000;
// The agents listed per decoy.
inline constexpr size_t kMaxDecoyAgents = 16;

// What `row` (an event as stored: event_columns.h) says about a decoy, if anything (its
// row and agent_key are left for the caller):
// - ip-banned with a rule.name starting "decoy-" → a hit (mamori.ban.ttl_s when it
//   succeeded, else ttl -1), except a prefix escalation (mamori.ban.prefix), the ban of a
//   credential's user (rule "decoy-credential-TOKEN": its decoy-credential-used counts)
//   and a fetcher banned again when its loot was used (mamori.related_event);
// - decoy-opened → an open; decoy-credential-used → a credential use (by the
//   mamori.decoy.token they carry, else by file.path / mamori.decoy.path);
// - ip-unbanned whose rule.name is "manual" (`mamori bans del`) or "fleet" (an unban the
//   manager ordered) → a lift of source.ip (expiries carry their rule's name: no lift).
std::optional<DecoyEvent> classify_decoy_event(const EventColumns& row);

// One decoy's figures over a window.
struct DecoyStats {
  std::string decoy;
  std::string url;                  // its newest hit's request, else a file's path
  std::vector<std::string> agents;  // where it was hit or opened, newest first, at most 16
  int64_t hits = 0;                 // access-log hits (ip-banned by its rule)
  int64_t addresses = 0;            // distinct addresses of its hits and credential uses
  int64_t opened = 0;               // decoy-opened events
  int64_t credential_uses = 0;      // decoy-credential-used events
  // Hits whose address an operator unbanned while the hit's ban lasted (from the hit's
  // @timestamp to its end, or for good with a permanent ban): false positives.
  int64_t false_positives = 0;
  int64_t first_ns = 0, last_ns = 0;  // its oldest and newest event in the window
  std::string latest_agent;           // its newest event: the incident to open
  int64_t latest_row = 0;
};

struct DecoyReport {
  int64_t since_ns = 0, until_ns = 0;
  bool complete = true;  // false: more events or lifts than the limits, figures are floors
  std::vector<DecoyStats> decoys;  // newest activity first
};

// The figures from the events (newest first, as Store::decoy_events gives them) and the
// lifts at or after the window's start.
DecoyReport aggregate_decoys(std::span<const DecoyEvent> events, std::span<const DecoyLift> lifts);

// The report of [since_ns, until_ns) from `store`: at most kMaxDecoyReportEvents events
// and kMaxDecoyReportLifts lifts read.
Result<DecoyReport> decoy_report(Store& store, int64_t since_ns, int64_t until_ns,
                                 int64_t max_events = kMaxDecoyReportEvents,
                                 int64_t max_lifts = kMaxDecoyReportLifts);

}  // namespace mamori::manager
