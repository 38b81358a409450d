#pragma once
// The names of every event the agent writes (ECS event.action), in one place: the
// agent emits them, the healer and the log watch compare them, and the console and
// the manager will switch on them, so a typo is a compile error rather than an event
// nobody recognises. docs/formats/events.md describes each action's fields;
// docs/formats/protocol.schema.json lists them (`$defs/EventAction`), generated from
// kAllActions below.

#include <array>
#include <string_view>

namespace mamori::proto::action {

// The guard: one file, one action (docs/formats/events.md "File events").
inline constexpr std::string_view kFileRestored = "file-restored";
inline constexpr std::string_view kFileRepaired = "file-repaired";
inline constexpr std::string_view kFileReplaced = "file-replaced";
inline constexpr std::string_view kFileQuarantined = "file-quarantined";
inline constexpr std::string_view kFileAllowed = "file-allowed";
inline constexpr std::string_view kFileChanged = "file-changed";
inline constexpr std::string_view kFileCreated = "file-created";
inline constexpr std::string_view kFileDeleted = "file-deleted";
inline constexpr std::string_view kFileRestoreFailed = "file-restore-failed";
inline constexpr std::string_view kFileUnreadable = "file-unreadable";
// Summaries and storms.
inline constexpr std::string_view kFileAllowedSummary = "file-allowed-summary";
inline constexpr std::string_view kFileRestoreRepeated = "file-restore-repeated";
inline constexpr std::string_view kTamperStorm = "tamper-storm";
inline constexpr std::string_view kTamperStormSummary = "tamper-storm-summary";
inline constexpr std::string_view kTamperStormEnded = "tamper-storm-ended";
inline constexpr std::string_view kWatchOverflow = "watch-overflow";
// Evidence.
inline constexpr std::string_view kEvidenceFailed = "evidence-failed";
inline constexpr std::string_view kEvidencePruned = "evidence-pruned";
// The agent's life and what the control socket changed.
inline constexpr std::string_view kAgentStarted = "agent-started";
inline constexpr std::string_view kAgentStopped = "agent-stopped";
inline constexpr std::string_view kStateFailed = "state-failed";
inline constexpr std::string_view kModeChanged = "mode-changed";
inline constexpr std::string_view kDeployStarted = "deploy-started";
inline constexpr std::string_view kDeployEnded = "deploy-ended";
inline constexpr std::string_view kDeployAbandoned = "deploy-abandoned";
// An operator accepted a path as legitimate (the accept control command): the baseline
// changed, by hand, and was resealed.
inline constexpr std::string_view kBaselineAccepted = "baseline-accepted";
inline constexpr std::string_view kEventsDropped = "events-dropped";
// The outbox removed records for its quota; a sink skipped records it can no longer read.
inline constexpr std::string_view kOutboxDropped = "outbox-dropped";
inline constexpr std::string_view kSinkGap = "sink-gap";
// Self-healing.
inline constexpr std::string_view kNodeUnhealthy = "node-unhealthy";
inline constexpr std::string_view kNodeHealthy = "node-healthy";
inline constexpr std::string_view kHookRan = "hook-ran";
inline constexpr std::string_view kHookFailed = "hook-failed";
inline constexpr std::string_view kHealthActionFailed = "health-action-failed";
// Access-log defense.
inline constexpr std::string_view kIpBanned = "ip-banned";
inline constexpr std::string_view kIpUnbanned = "ip-unbanned";
// A request tied to a file the guard acted on (mamori.related_event names that event).
inline constexpr std::string_view kTamperAttributed = "tamper-attributed";
// A [[log]] that does not fit its format (more than 10 % of the last 1,000 lines refused:
// core/logparse/health.h), once per episode with a sample; and when it reads again.
inline constexpr std::string_view kLogUnparseable = "log-unparseable";
inline constexpr std::string_view kLogParseable = "log-parseable";
// A message tagged sshd in the journal that a process of another user than root sent
// (agent/logwatch/journal.h): a local user forging sshd's lines to get an address banned.
inline constexpr std::string_view kLogForged = "log-forged";
// A decoy file (docs/decoys.md) opened by a process other than mamori and the web server
// (which serves it: the access log judges that request).
inline constexpr std::string_view kDecoyOpened = "decoy-opened";
// VirusTotal's verdict on the SHA-256 of a file the guard quarantined or found tampered
// (agent/triage/lookup_worker.h); mamori.related_event names the guard's event.
inline constexpr std::string_view kFileLookup = "file-lookup";
// PHP-FPM's opcache dropped the compiled code of files the guard restored or quarantined
// (agent/opcache, [opcache]), or could not; mamori.related_event names the guard's event.
inline constexpr std::string_view kOpcacheInvalidated = "opcache-invalidated";
inline constexpr std::string_view kOpcacheFailed = "opcache-failed";
// The open gate (agent/gate, docs/open-gate.md): an open or read of a guarded file refused
// because its content is not the baseline's (or it is a new file the guard quarantines),
// one event per path and second; the gate's watchdog answered "allow" for a gate that did
// not answer in time; the kernel offers no permission events (the agent runs without it).
inline constexpr std::string_view kOpenDenied = "open-denied";
inline constexpr std::string_view kOpenGateTimeout = "open-gate-timeout";
inline constexpr std::string_view kOpenGateUnavailable = "open-gate-unavailable";
// A decoy's fake credential used (on the SSH honeypot, on wp-login.php): links whoever
// fetched the decoy and whoever used what it held into one incident; both are banned.
inline constexpr std::string_view kDecoyCredentialUsed = "decoy-credential-used";
// The manager (dataset mamori.manager) about the agents it manages: the agent is named
// by mamori.managed_agent.*. An orderly stop (the agent's `bye`) is kAgentStopped with
// event.dataset mamori.manager.
inline constexpr std::string_view kAgentEnrolled = "agent-enrolled";
inline constexpr std::string_view kAgentLost = "agent-lost";
// Gone after its node was drained (its last heartbeat said unhealthy): auto-scaling churn.
inline constexpr std::string_view kAgentRetired = "agent-retired";
inline constexpr std::string_view kAgentRecovered = "agent-recovered";
inline constexpr std::string_view kAgentDuplicate = "agent-duplicate";
inline constexpr std::string_view kBaselineChangedUnexpectedly = "baseline-changed-unexpectedly";
// An agent's bans the manager would not push to the fleet ([manager] never_ban,
// max_agent_bans_per_hour): at most one a minute per agent, with the counts since the last.
inline constexpr std::string_view kFleetBanRefused = "fleet-ban-refused";
// Asked for by an operator (the console's Settings, POST /api/v1/sinks/test): an alert
// that says nothing happened, to see each [[sink]] deliver.
inline constexpr std::string_view kSinkTest = "sink-test";
// Not an event in the outbox: the action a ban hook's payload names when a ban expires
// (docs/bans.md).
inline constexpr std::string_view kBanExpired = "ban-expired";

// The page monitor (agent/pages, [[page]], docs/pages.md): a page's active content
// (a script, iframe, form action, link to another origin...) that its baseline lacks
// and no allow_origins entry allows; a page that could not be fetched or judged.
inline constexpr std::string_view kPageInjected = "page-injected";
inline constexpr std::string_view kPageFetchFailed = "page-fetch-failed";

// The SSH honeypot (honeypot/, its own outbox; event.dataset mamori.honeypot), relayed
// into the agent's event log by agent/relay (docs/honeypot.md).
inline constexpr std::string_view kSshConnection = "ssh-connection";
inline constexpr std::string_view kSshLoginFailed = "ssh-login-failed";
inline constexpr std::string_view kSshLoginSucceeded = "ssh-login-succeeded";
inline constexpr std::string_view kSshCommand = "ssh-command";
inline constexpr std::string_view kSshDownloadAttempted = "ssh-download-attempted";
inline constexpr std::string_view kSshLimitReached = "ssh-limit-reached";
inline constexpr std::string_view kSshSessionEnded = "ssh-session-ended";
inline constexpr std::string_view kSshForwardAttempted = "ssh-forward-attempted";
// [downloads] fetch = true: a captured file removed to keep the honeypot's downloads
// within quota_mb; the agent's YARA verdict on a captured file (agent/relay).
inline constexpr std::string_view kSshDownloadPruned = "ssh-download-pruned";
inline constexpr std::string_view kSshDownloadScanned = "ssh-download-scanned";

// Every action above, for the schema's enum and for tests that an emitted action is known.
inline constexpr std::array kAllActions = {kFileRestored,
                                           kFileRepaired,
                                           kFileReplaced,
                                           kFileQuarantined,
                                           kFileAllowed,
                                           kFileChanged,
                                           kFileCreated,
                                           kFileDeleted,
                                           kFileRestoreFailed,
                                           kFileUnreadable,
                                           kFileAllowedSummary,
                                           kFileRestoreRepeated,
                                           kTamperStorm,
                                           kTamperStormSummary,
                                           kTamperStormEnded,
                                           kWatchOverflow,
                                           kEvidenceFailed,
                                           kEvidencePruned,
                                           kAgentStarted,
                                           kAgentStopped,
                                           kStateFailed,
                                           kModeChanged,
                                           kDeployStarted,
                                           kDeployEnded,
                                           kDeployAbandoned,
                                           kBaselineAccepted,
                                           kEventsDropped,
                                           kNodeUnhealthy,
                                           kNodeHealthy,
                                           kHookRan,
                                           kHookFailed,
                                           kHealthActionFailed,
                                           kIpBanned,
                                           kIpUnbanned,
                                           kBanExpired,
                                           kOutboxDropped,
                                           kSinkGap,
                                           kTamperAttributed,
                                           kLogUnparseable,
                                           kLogParseable,
                                           kLogForged,
                                           kPageInjected,
                                           kPageFetchFailed,
                                           kAgentEnrolled,
                                           kAgentLost,
                                           kAgentRecovered,
                                           kAgentDuplicate,
                                           kAgentRetired,
                                           kBaselineChangedUnexpectedly,
                                           kFleetBanRefused,
                                           kSinkTest,
                                           kFileLookup,
                                           kOpcacheInvalidated,
                                           kOpenDenied,
                                           kOpenGateTimeout,
                                           kOpenGateUnavailable,
                                           kOpcacheFailed,
                                           kDecoyOpened,
                                           kDecoyCredentialUsed,
                                           kSshConnection,
                                           kSshLoginFailed,
                                           kSshLoginSucceeded,
                                           kSshCommand,
                                           kSshDownloadAttempted,
                                           kSshLimitReached,
                                           kSshSessionEnded,
                                           kSshForwardAttempted,
                                           kSshDownloadPruned,
                                           kSshDownloadScanned};

}  // namespace mamori::proto::action

namespace mamori::proto::heal_condition {

// What may make a node unhealthy ([heal] on = [...], docs/heal.md): the config's names
// and node-unhealthy's mamori.heal.reason.
inline constexpr std::string_view kTamperStorm = "tamper-storm";
inline constexpr std::string_view kRestoreFailed = "restore-failed";
inline constexpr std::string_view kScriptQuarantined = "script-quarantined";
inline constexpr std::string_view kStateFailed = "state-failed";
// A page of the page monitor serves active content its baseline lacks (docs/pages.md).
inline constexpr std::string_view kPageInjected = "page-injected";
// Not configurable: too many tampers in the window ([heal] tamper_count).
inline constexpr std::string_view kTamperRate = "tamper-rate";

}  // namespace mamori::proto::heal_condition
