#include "cli/help.h"

namespace mamori::cli {
namespace {

constexpr std::string_view kOverview = R"TXT(NAME
    mamori - keep web sites standing: detect tampering and put files back

SYNOPSIS
    mamori [--config FILE] [--json] [--quiet] COMMAND [ARGS...]

DESCRIPTION
    mamori records a baseline of the directories it protects: for every entry its
    type, mode, owner, size, mtime, link target, security xattrs and the SHA-256 of
    its content, with a compressed copy of every file in a content-addressed store.
    From that baseline it finds every change (check), shows it (diff), undoes it
    (restore) or takes it in as legitimate (accept).

    'mamori agent' does the same in real time: it watches the roots with fanotify,
    puts a tampered file back atomically the moment it is written, quarantines files
    the baseline does not know, and keeps the tampered copies as evidence with who
    made them. Legitimate changes go through 'mamori deploy'.

    The roots to protect, their excludes and the state directory come from a TOML
    config, /etc/mamori/mamori.toml unless --config names another.

COMMANDS
    init [PATH...]            record the baseline of every root (or the roots named)
    check [--full] [PATH...]  report added, removed and changed entries
    diff PATH                 show how one file differs from its baseline
    restore PATH...|--all     put entries back as the baseline has them
                              (--quarantine-new: web shells into the evidence store)
    accept PATH...|--all      take the current state into the baseline
    status                    roots, entries, store size and the root hash
    gc                        drop stored contents no baseline entry needs any more
    evidence ACTION [ID]      list, show, diff or export the tampered copies kept
    agent                     guard the roots in real time (the daemon)
    mode ROOT|'*' MODE        switch a running agent's root to alert, restore or preserve
    deploy [--review] -- CMD  run a legitimate change, then take it into the baseline
    heal [--clear|--fail WHY] the node's health as its load balancer sees it
    logs test FILE            replay an access log: what would be banned, and why
    bans list|add IP|del IP   the addresses banned in the firewall, and why
    events [--since T] [--path P] [--ip IP] [--follow]
                              the event log as a timeline of incidents

    Run 'mamori COMMAND --help' for the details of each.

GLOBAL OPTIONS
    -c, --config FILE   the config file (default /etc/mamori/mamori.toml)
    --json              print results as JSON on stdout, for scripts
    -q, --quiet         print no summary line and no progress bar
    -j, --jobs N        hashing threads (default: the config's 'jobs', else one per core)
    --nice              lowest CPU and idle I/O priority, for busy production hosts
    -h, --help          this text
    --version           the version

EXIT STATUS
    0   success; for check and diff: no difference
    1   check or diff found differences; restore left entries that are not in the
        baseline in place
    2   usage error, invalid config, or no baseline yet
    3   the operation failed, or some entries could not be read, recorded or
        restored (the rest was done; warnings name each one)
    4   mamori's own catalog or store failed verification: its state was damaged or
        tampered with; nothing was trusted or changed
    When several apply, the highest wins.

FILES
    /etc/mamori/mamori.toml   the config (commented example: etc/mamori.toml)
    STATE/catalog.db          the baseline (SQLite); STATE is the config's state_dir
    STATE/store/              the content store (pack files)
    STATE/evidence/           tampered copies kept as evidence, with who made them
    /var/log/mamori/events.jsonl   the agent's events (ECS JSON lines; agent.event_log)
    /run/mamori/agent.sock    the agent's control socket (agent.socket)
    STATE/bans.db             the ban list: who is banned, until when, and why
    STATE/heal.json           whether the node is failing its health check, and why
    STATE/sinks/NAME.cursor   how far each [[sink]] has delivered the event log

EXAMPLES
    mamori init                          baseline every configured root
    mamori check --json | jq .summary    what changed, for a script
    mamori diff /var/www/html/wp-config.php
    mamori restore --all --quarantine-new   undo every change, web shells included
    mamori accept /var/www/html/wp-content/plugins/akismet
)TXT";

constexpr std::string_view kInit = R"TXT(NAME
    mamori init - record the baseline

SYNOPSIS
    mamori init [--nice] [-j N] [PATH...]

DESCRIPTION
    Walks every configured root (or only the roots named; each PATH must be a
    configured root) without following symlinks, records every entry that no
    'exclude' pattern matches, hashes every regular file on all cores and stores its
    content, compressed and once per distinct content, in STATE/store. FIFOs,
    sockets and devices are recorded, never opened.

    The new baseline replaces the old one in a single transaction: if init is killed
    or the disk fills, the previous baseline is left as it was. Roots no longer in
    the config are dropped from the baseline when no PATH is given.

    A file that cannot be read is left out of the baseline and named in a warning;
    a file that keeps changing while it is read is retried, then left out, so no torn
    hash is ever recorded. Shows a progress bar when stderr is a terminal.

EXIT STATUS
    0 recorded; 2 bad config or PATH; 3 some entries left out, or the baseline could
    not be written (the old one is intact).
)TXT";

constexpr std::string_view kCheck = R"TXT(NAME
    mamori check - compare the roots with the baseline

SYNOPSIS
    mamori check [--full] [--json] [--nice] [-j N] [PATH...]

DESCRIPTION
    First verifies mamori's own state: the catalog against its root hash (see
    'mamori status') and the store's index (with --full, every stored object against
    its SHA-256). Then walks the roots (or only the PATHs given) and reports every
    entry that was added, removed or changed, naming the attributes that changed:
    type, content, mode, owner, mtime, link_target, xattrs, device.

    By default a file whose inode, size, mtime and ctime all match the baseline is
    not re-read (ctime cannot be set back from user space, so any write moves it).
    --full re-hashes every file regardless.

    check never changes anything, not even its own state.

OPTIONS
    --full   re-hash every file and verify every object in the store

OUTPUT
    Text: one line per change, "added|removed|changed PATH (attributes)", then a
    summary. An added or removed directory stands for everything added or removed
    beneath it ("and N entries beneath"); --json lists every entry. With --json: {"changes": [{"path", "change", "attributes", "before",
    "after", "root"}...], "errors": [...], "summary": {...}, "clean": bool}. Paths
    that are not valid UTF-8 are escaped, with their exact bytes in "path_hex".

EXIT STATUS
    0 clean; 1 changes found; 2 usage error or no baseline; 3 some entries could not
    be read; 4 mamori's own state failed verification.
)TXT";

constexpr std::string_view kDiff = R"TXT(NAME
    mamori diff - show how one path differs from its baseline

SYNOPSIS
    mamori diff [--json] PATH

DESCRIPTION
    Prints metadata changes (type, mode, owner, link target), then for a text file
    a unified diff of the baseline content against the current content (diff -u),
    for a binary file both SHA-256, and for files over 16 MiB sizes and hashes.

    The content is the attacker's: when stdout is a terminal, control bytes in the
    diff (ESC, carriage return, C1 controls, bidirectional overrides, invalid UTF-8)
    are shown escaped (\x1b, \u{202e}) so they cannot erase or hide a line; a pipe
    or a file gets the exact bytes.

OUTPUT
    With --json: {"command": "diff", "path", "change": "added|removed|changed|none",
    "attributes": [...], "baseline": {...}|null, "current": {...}|null, "content":
    "same|text|binary|large", "diff": the unified diff text}.

EXIT STATUS
    0 no difference; 1 differences; 2 usage error (a PATH outside every root, or
    neither in the baseline nor on disk) or no baseline; 3 could not read; 4 the
    stored content failed verification.
)TXT";

constexpr std::string_view kRestore = R"TXT(NAME
    mamori restore - put entries back as the baseline has them

SYNOPSIS
    mamori restore [--quarantine-new] PATH...
    mamori restore [--quarantine-new] --all

DESCRIPTION
    Finds what differs beneath each PATH (or in every root with --all) and repairs
    it: content comes back byte for byte from the store (verified against its
    SHA-256 first), with type, mode, owner, security xattrs and mtime; removed files
    and whole directory trees are recreated; permission, owner and xattr changes
    are reverted in place.

    Every replacement is atomic: the baseline content is written to a temporary file
    in the same directory, fsync()ed, then renamed over the tampered one, so the file
    is never missing or half-written. Every path is resolved beneath its root with
    openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS): a symlink planted anywhere on the
    way fails the operation instead of being followed out of the tree.

    Entries that are not in the baseline (a web shell, say) are listed and left in
    place, and the exit status is 1, unless --quarantine-new is given: then each is
    moved out of the tree into the evidence store (STATE/evidence, 'mamori evidence
    list'), as the agent's quarantine does, a directory with everything in it; those
    that the root's allow_new lets stay (and deny_new does not refuse) are left and
    listed as allowed. The baseline itself is not changed, and restore refuses to run
    from a catalog that fails verification.

OPTIONS
    --all              every configured root
    --quarantine-new   move entries the baseline does not know into the evidence
                       store (honours allow_new / deny_new). A running agent holds
                       the evidence store: switch it to restore mode instead.

OUTPUT
    Text: one line per entry restored, quarantined, allowed or left, then a summary.
    With --json: {"restored": [...], "quarantined": [...], "allowed": [...],
    "not_in_baseline": [...] (left in place), "left": N, "errors": [...]}.

EXIT STATUS
    0 every change undone; 1 entries not in the baseline were left in place (the
    tree still differs from its baseline: --quarantine-new, remove or accept them);
    2 usage error or no baseline; 3 some entries could not be restored or
    quarantined (each is named); 4 the baseline failed verification.
)TXT";

constexpr std::string_view kAccept = R"TXT(NAME
    mamori accept - take the current state into the baseline

SYNOPSIS
    mamori accept PATH...
    mamori accept --all

DESCRIPTION
    Records what is at each PATH now (a file, or a directory and everything beneath
    it) as the new baseline for it, storing new content; a PATH that no longer
    exists is removed from the baseline. With --all, every root is re-recorded. Use
    it after a legitimate change such as a plugin update. Runs in one transaction
    and reseals the catalog with a new root hash.

EXIT STATUS
    0 accepted; 2 usage error; 3 some entries could not be read (left out) or the
    baseline could not be written; 4 the baseline failed verification.
)TXT";

constexpr std::string_view kStatus = R"TXT(NAME
    mamori status - what the baseline covers

SYNOPSIS
    mamori status [--json]

DESCRIPTION
    Prints the state directory, the catalog's root hash (a SHA-256 over every
    recorded entry of every root: keep a copy elsewhere to notice tampering with
    mamori's own state), when it was sealed, the store's size, and for each
    configured root its mode and number of entries. When an agent is running, also
    its backend, live modes and counters (changes, restored, quarantined, evidence,
    failures), asked over its control socket; "agent": {"running": false} otherwise.

EXIT STATUS
    0 printed; 2 no baseline yet or bad config; 4 the catalog cannot be read.
)TXT";

constexpr std::string_view kGc = R"TXT(NAME
    mamori gc - drop stored contents that nothing refers to

SYNOPSIS
    mamori gc [--json]

DESCRIPTION
    Every init and accept adds the new contents to the store and keeps the old ones.
    gc removes the contents no baseline entry refers to any more: each pack file that
    holds one is rewritten (its live contents copied to a new pack and verified
    against their SHA-256), the index is switched in one transaction, and only then
    are the old packs deleted, so a crash at any moment loses nothing. Refuses to run
    when the catalog fails verification.

EXIT STATUS
    0 done (or nothing to do); 2 no baseline or bad config; 3 failed (the store is as
    it was, or compacted; never half); 4 the catalog failed verification.
)TXT";

constexpr std::string_view kEvidence = R"TXT(NAME
    mamori evidence - the tampered copies kept as evidence

SYNOPSIS
    mamori evidence list [--limit N] [--json]
    mamori evidence show ID [--json]
    mamori evidence diff ID [--json]
    mamori evidence export ID [--output FILE]

DESCRIPTION
    When the agent puts a file back in 'preserve' mode, it keeps the tampered
    content (zstd-compressed, in STATE/evidence/) with when it was taken, why, the
    file's SHA-256, mode and owner, and who changed it as far as the kernel said:
    process id, executable, command line, user, parent process. A size quota keeps
    the store bounded: the oldest items are dropped first. A file larger than the
    per-item limit keeps only its first bytes ("truncated"); its SHA-256 and size
    are still those of the whole content.

    list     every item, newest first (the newest N with --limit)
    show     one item's metadata and who-data
    diff     a unified diff from the baseline content (read from the content store)
             to the tampered content; against empty content when the baseline was
             not known; SHA-256 only for binary content and contents over 16 MiB
    export   the tampered bytes exactly as kept, to stdout (refused when stdout is
             a terminal) or to FILE, which must not exist and is created mode 0600

    Every item is verified against its SHA-256 as it is read; a damaged item
    fails (exit 4) and an export of it leaves no FILE behind.

OPTIONS
    --limit N          list: only the newest N items
    -o, --output FILE  export: write to FILE instead of stdout

OUTPUT
    Text escapes paths and command lines (control bytes, invalid UTF-8). With
    --json, list prints {"items": [...], "usage": {...}} and show one item, in
    Elastic Common Schema names: @timestamp, file.path, file.hash.sha256,
    file.size, file.mode, process.pid, process.executable, process.command_line,
    process.parent.pid, process.parent.executable, user.id, user.name, and
    mamori.evidence.{id, reason, truncated}; a path that is not valid UTF-8 is
    escaped, with its exact bytes in file.path_hex. diff --json prints the two
    SHA-256 and the diff text; export --json (with --output) what was written.

EXIT STATUS
    0 done (diff: same content); 1 diff: the contents differ; 2 usage error, no
    such item, or no evidence kept yet; 3 failed; 4 an item failed verification.
)TXT";

}  // namespace

constexpr std::string_view kAgent = R"TXT(NAME
    mamori agent - guard the roots in real time

SYNOPSIS
    mamori agent [--config FILE]

DESCRIPTION
    The daemon (packaging/systemd/mamori-agent.service runs it, Type=notify). Runs
    as root. Start-up is ordered, and stops naming the step that failed:
      listen          the control socket (agent.socket); a second agent stops here
      open_state      the catalog (read only) and the content store
      open_outbox     the event log (agent.event_log), then the evidence store
      open_roots      every configured root; each must have a baseline ('init')
      start_watchers  fanotify (one filesystem mark; reports who wrote), else inotify
      verify_roots    every root against its baseline, acting by its mode: what
                      changed while the agent was down is handled and reported with
                      mamori.changed_while_down
      notify_ready    READY=1 to systemd
    Watching starts before the verify, so nothing changed in between is missed.

    Every change is judged by comparing the path with the baseline, by each root's
    mode:
      alert     report it; change nothing
      restore   put content and metadata back atomically (a new inode renamed over
                the tampered one: readers never see a missing or half-written file;
                no symlink is ever followed); recreate deleted files and trees; undo
                renames; move files the baseline does not know out of the tree into
                the evidence store (quarantine), unless allow_new lets them stay and
                deny_new does not forbid them
      preserve  as restore, and keep every tampered content as evidence
                ('mamori evidence')
    A kernel queue overflow rescans the root (event watch-overflow); a verify also
    runs every agent.verify_interval seconds. A storm (more than
    agent.storm_changes_per_second changes in a second) is acted on in full but
    reported in bulk: one tamper-storm event, then a summary each second naming every
    path.

    Every detection and action is one line of Elastic Common Schema JSON in
    agent.event_log, synced before anything else sees it: event.action
    (file-restored, file-repaired, file-quarantined, file-allowed, file-changed,
    file-created, file-deleted, tamper-storm, watch-overflow, ...), file.path,
    file.hash.sha256, process.pid, process.executable, process.command_line,
    user.name, mamori.* for the rest.

SIGNALS
    SIGTERM, SIGINT  stop (after writing the pending events)
    SIGHUP           reopen the event log (after logrotate)

EXIT STATUS
    0 stopped on a signal; 2 not root or bad config; 3 a start-up step failed
    (the message names it), e.g. a root without a baseline.
)TXT";

constexpr std::string_view kMode = R"TXT(NAME
    mamori mode - switch a running agent's root between alert, restore and preserve

SYNOPSIS
    mamori mode ROOT MODE
    mamori mode '*' MODE

DESCRIPTION
    Tells the running agent to guard ROOT (a configured root, or '*' for all) in
    MODE from now on. Leaving alert verifies the root at once, so everything alert
    only reported is repaired. The change lasts until the agent restarts; the config
    keeps its own mode.

EXIT STATUS
    0 switched; 2 bad ROOT or MODE; 3 no agent running, or it refused.
)TXT";

constexpr std::string_view kHeal = R"TXT(NAME
    mamori heal - the node's health as its load balancer sees it

SYNOPSIS
    mamori heal [--json]
    mamori heal --clear
    mamori heal --fail REASON

DESCRIPTION
    A node under attack takes itself out of its load balancer's rotation: when a
    [heal] condition fires (a tamper storm, more than heal.tamper_count tampers in
    heal.tamper_window seconds, a file that could not be restored, a quarantined
    script, mamori's own baseline failing verification), the running agent removes
    or rewrites heal.health_file, answers 503 on heal.health_listen, runs heal.hook
    with the event as JSON on its stdin, and reports node-unhealthy. The state
    survives restarts of the agent.

    Without options, shows the state. --clear puts the node back in rotation now
    (after you have looked at it). --fail REASON takes it out by hand, e.g. for
    maintenance. With heal.recover_after, the agent also returns on its own once
    no condition fired for that long and a full verify then finds nothing.
    Recipes for AWS, HAProxy and nginx: docs/heal.md.

EXAMPLES
    mamori heal                          healthy, or why not
    mamori heal --clear                  back into rotation
    mamori heal --fail "kernel update"   drain this node

EXIT STATUS
    0 healthy (or the change was made); 1 unhealthy; 2 usage; 3 no agent running,
    or it refused.
)TXT";

constexpr std::string_view kLogs = R"TXT(NAME
    mamori logs test - replay an access log and show what would be banned, and why

SYNOPSIS
    mamori logs test [--format SPEC] [--rules FILE]... [--no-default-rules]
                     [--allow CIDR]... [--json] FILE

DESCRIPTION
    Reads FILE as fast as it can through the detector the agent uses: each line is
    parsed, its request normalised (percent-decoding, double encoding, case, '//',
    '/./', '/../'), matched against the rules, and counted per address for the
    threshold rules, in the log's own time. Prints each address that would be banned
    with the rule, the line and the request, then a summary. Changes nothing, needs
    no config and no root.

    --format SPEC       combined (default), common, vhost_combined, json, an nginx
                        log_format string ('$remote_addr - ... "$request" ...') or an
                        Apache LogFormat string ('%h %l %u %t "%r" %>s %b')
    --rules FILE        rules applied after the built-in defaults, in order (format:
                        docs/formats/rules.md; [[override]] turns defaults off)
    --no-default-rules  only the --rules files
    --allow CIDR        never ban these addresses (matches are still counted)

    Lines that cannot be parsed (binary garbage, a bad address, a line past 16 KiB)
    are counted by reason and skipped; they never ban anyone.

EXAMPLES
    mamori logs test /var/log/nginx/access.log
    mamori logs test --json --allow 10.0.0.0/8 access.log | jq '.bans[].ip'
    mamori logs test --rules /etc/mamori/rules.d/site.rules access.log.1

EXIT STATUS
    0 nobody would be banned; 1 some address would be; 2 bad format, rules or CIDR
    (rules errors give file:line:col); 3 FILE could not be read.
)TXT";

constexpr std::string_view kDeploy = R"TXT(NAME
    mamori deploy - make a legitimate change while the agent guards

SYNOPSIS
    mamori deploy [--review] [--root ROOT]... -- CMD [ARGS...]

DESCRIPTION
    Pauses restoring on the roots (every root, or the --root ones; changes are still
    reported, as mamori.mode "deploy"), runs CMD, then shows what changed ('mamori
    check') and takes it into the baseline ('mamori accept'). With --review, asks
    before accepting; answering no rolls back. If CMD fails, the roots are restored
    to the baseline. Restoring resumes in every case, after a verify of the roots
    (so files a failed CMD created are quarantined). Without a running agent the
    same steps run without the pause.

    Only CMD's own process tree may change the roots: the agent judges each change
    by the process that wrote it (fanotify), so a change by any other process during
    the deploy (a dropper running as the web server's user) is restored or
    quarantined at once, reported with mamori.deploy.writer "foreign", named on
    stderr and never accepted. When the agent cannot name writers (inotify),
    nothing is accepted without --review (see docs/agent.md).

EXAMPLES
    mamori deploy -- wp core update --path=/var/www/html
    mamori deploy --root /var/www/html -- wp plugin update akismet
    mamori deploy --review -- rsync -a release/ /var/www/html/

EXIT STATUS
    0 deployed and accepted (or nothing changed); 2 usage; 3 CMD failed and the
    roots were rolled back, or accepting failed, or the agent could not attribute
    the changes and --review was not given (rolled back); 4 the baseline failed
    verification.
)TXT";

constexpr std::string_view kBans = R"TXT(NAME
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

constexpr std::string_view kEvents = R"TXT(NAME
    mamori events - the agent's events as a timeline of incidents

SYNOPSIS
    mamori events [--since TIME|DURATION] [--path GLOB|PREFIX] [--ip IP] [--follow]
    mamori events --check [FILE...]

DESCRIPTION
    Reads the event log (agent.event_log, default /var/log/mamori/events.jsonl; its
    rotated PATH.1 too when --since reaches back before the log's first event) and
    shows the events that match every filter given, grouped by incident: events
    linked by their ids (mamori.related_event, mamori.heal.trigger.id;
    docs/formats/events.md, Incidents) are shown together, in time order, with the
    events they link to even when those do not match. One incident: the request
    that wrote or called a file (tamper-attributed), the guard's restore or
    quarantine of it, the ban of the address that made it.

    Each line: @timestamp, event.action, what happened, [the event id's first 8
    digits <- the ids it links to]. Attackers' strings are shown escaped.

OPTIONS
    --since TIME|DURATION  events at or after a UTC time (2026-12-04T16:00:00,
                           2026-12-04) or that long ago (30s, 10m, 2h, 7d)
    --path GLOB|PREFIX     events whose file.path matches a glob (* crosses /) or
                           is PREFIX or under it
    --ip IP                events whose source.ip is IP
    -f, --follow           then print each new matching event (or one linked to an
                           event shown) as it is written, across log rotations,
                           until interrupted (SIGINT, SIGTERM: exit 0)
    --json                 the events as written, one JSON object per line, in the
                           same order (the links are in the events)
    --check [FILE...]      check every event of the log (or of FILEs) against the
                           fields mamori may write (docs/formats/ecs-fields.tsv):
                           each problem as FILE:LINE: FIELD: what is wrong

EXAMPLES
    mamori events --ip 203.0.113.7
    mamori events --since 1h --path '/var/www/html/wp-content/uploads/*'
    mamori events --json --since 2026-12-04 | jq -c 'select(.event.dataset == "mamori.guard")'
    mamori events --follow

EXIT STATUS
    0 some event matched (--check: every event is valid; --follow: interrupted);
    1 no event matched (--check: some event is invalid); 2 usage error or invalid
    config; 3 the event log could not be read.
)TXT";

std::string_view help_text(std::string_view command) {
  if (command.empty()) return kOverview;
  if (command == "init") return kInit;
  if (command == "check") return kCheck;
  if (command == "diff") return kDiff;
  if (command == "restore") return kRestore;
  if (command == "accept") return kAccept;
  if (command == "status") return kStatus;
  if (command == "gc") return kGc;
  if (command == "evidence") return kEvidence;
  if (command == "agent") return kAgent;
  if (command == "mode") return kMode;
  if (command == "deploy") return kDeploy;
  if (command == "heal") return kHeal;
  if (command == "logs") return kLogs;
  if (command == "bans") return kBans;
  if (command == "events") return kEvents;
  return {};
}

}  // namespace mamori::cli
