#include "cli/help.h"

#include "cli/commands/command.h"

namespace mamori::cli {
namespace {

// The overview page around its COMMANDS section, which comes from the table.
constexpr std::string_view kBefore = R"TXT(NAME
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

)TXT";

constexpr std::string_view kAfter = R"TXT(
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
    STATE/outbox/             the event outbox: segments, and a cursor per [[sink]]

EXAMPLES
    mamori init                          baseline every configured root
    mamori check --json | jq .summary    what changed, for a script
    mamori diff /var/www/html/wp-config.php
    mamori restore --all --quarantine-new   undo every change, web shells included
    mamori accept /var/www/html/wp-content/plugins/akismet
)TXT";

constexpr size_t kSynopsisColumn = 26;  // the summaries start at column 30

}  // namespace

std::string overview_text() {
  std::string out(kBefore);
  out += "COMMANDS\n";
  for (const auto& c : commands()) {
    std::string line = "    " + std::string(c.synopsis);
    line.append(c.synopsis.size() < kSynopsisColumn ? kSynopsisColumn - c.synopsis.size() : 1, ' ');
    std::string_view summary = c.summary;
    for (size_t nl; (nl = summary.find('\n')) != std::string_view::npos;) {
      if (nl == 0) line.erase(line.find_last_not_of(' ') + 1);  // the summary starts below
      out += line;
      out.append(summary.substr(0, nl));
      out += '\n';
      line.assign(4 + kSynopsisColumn, ' ');
      summary.remove_prefix(nl + 1);
    }
    out += line;
    out.append(summary);
    out += '\n';
  }
  out += kAfter;
  return out;
}

std::string help_text(std::string_view command) {
  if (command.empty()) return overview_text();
  const Command* c = find_command(command);
  return c ? std::string(c->help) : std::string();
}

}  // namespace mamori::cli
