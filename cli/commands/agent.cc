// mamori agent: the real-time daemon; and the calls mode, heal and deploy make to a
// running one over its control socket (agent/control; their commands: mode.cc, heal.cc,
// deploy.cc).

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include "agent/app/agent.h"
#include "agent/control/control.h"

#include "cli/commands/command.h"
#include "cli/commands/commands.h"
#include "core/base/quote.h"
#include "core/proto/control.h"

extern char** environ;

namespace mamori::cli {
namespace {

// Runs argv and waits; returns its exit status (128+N for signal N), or an error when
// it could not be started.
Result<int> run_command(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  if (const int err = ::posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ);
      err != 0)
    return fail("run", argv[0], err);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return fail_errno("waitpid", argv[0]);
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

bool no_agent(const Error& e) { return e.errnum == ENOENT || e.errnum == ECONNREFUSED; }

// Asks the running agent (protocol version 2) and decodes its answer with `decode`.
// nullopt: no agent is running. The agent's refusal is an error with its text.
template <typename T>
Result<std::optional<T>> ask(App& app, proto::RequestBody body,
                             proto::Decoded<T> (*decode)(const nlohmann::json&)) {
  const auto& socket = app.config().agent.socket;
  auto answer = control::call(socket, proto::to_json(proto::Request{proto::kVersion, body}));
  if (!answer) {
    if (no_agent(answer.error())) return std::optional<T>();
    return tl::unexpected(std::move(answer).error());
  }
  auto typed = decode(*answer);
  if (!typed) return fail("agent", socket, 0, typed.error().message);
  return std::optional<T>(std::move(*typed));
}

}  // namespace

int run_agent_command(App& app, unsigned run_seconds) {
  agent::AgentOptions options;
  options.config = app.config();
  options.config_path = app.options().config_path;
  options.run_seconds = run_seconds;
  return agent::run_agent(app.env(), app.executor(), options);
}

int run_mode(App& app, const std::string& root, const std::string& mode) {
  if (!config::parse_mode(mode))
    return app.report(
        Error{"mode", "", 0, "MODE must be alert, restore or preserve, not " + quote(mode)},
        kExitUsage);
  std::string path = root;
  if (root != "*") {
    auto target = app.resolve(root);
    if (!target || !target->rel.empty())
      return app.report(Error{"mode", root, 0, "is not a configured root"}, kExitUsage);
    path = target->root->config->path;
  }
  proto::ModeRequest request{{}, *config::parse_mode(mode)};
  if (path != "*") request.roots.paths = {path};
  auto answer = ask(app, request, proto::decode_status_answer);
  if (!answer) return app.report(answer.error(), kExitIncomplete);
  if (!*answer)
    return app.report(Error{"mode", app.config().agent.socket, ENOENT,
                            "no agent is running; set the mode in the config instead"},
                      kExitIncomplete);
  if (app.options().json)
    print_json(proto::to_json(proto::Answer{**answer}));
  else if (!app.options().quiet)
    std::printf("%s is now in %s mode (until the agent restarts; the config keeps its own)\n",
                path == "*" ? "every root" : escape(path).c_str(), mode.c_str());
  return kExitOk;
}

int run_heal(App& app, bool clear, const std::string& fail_reason) {
  proto::HealRequest request;
  if (clear) request = {proto::HealAction::kClear, "mamori heal --clear", ""};
  if (!fail_reason.empty()) request = {proto::HealAction::kFail, "", fail_reason};
  auto answer = ask(app, request, proto::decode_heal_answer);
  if (!answer) return app.report(answer.error(), kExitIncomplete);
  if (!*answer)
    return app.report(Error{"heal", app.config().agent.socket, ENOENT, "no agent is running"},
                      kExitIncomplete);
  const proto::HealStatus& h = (*answer)->heal;
  const bool healthy = h.healthy;
  if (app.options().json) {
    print_json(proto::to_json(h));
  } else if (!app.options().quiet) {
    if (healthy)
      std::printf("healthy%s\n", clear ? ": back in rotation" : "");
    else
      std::printf("UNHEALTHY since %s: %s\n", h.since.c_str(),
                  escape(h.reason.value_or("")).c_str());
  }
  return healthy || !fail_reason.empty() ? kExitOk : kExitChanges;
}

int run_deploy(App& app, const std::vector<std::string>& roots, bool review,
               const std::vector<std::string>& command) {
  if (command.empty())
    return app.report(Error{"deploy", "", 0, "give the command to run after '--'"}, kExitUsage);
  std::vector<std::string> paths;
  for (const auto& r : roots) {
    auto target = app.resolve(r);
    if (!target || !target->rel.empty())
      return app.report(Error{"deploy", r, 0, "is not a configured root"}, kExitUsage);
    paths.push_back(target->root->config->path);
  }
  const proto::Roots which{paths};  // none: every root
  // Our pid roots the deploy's process tree: the command is our child, so everything it
  // starts descends from us, and the agent takes only that tree's writes as the deploy's.
  auto paused = ask(app, proto::PauseRequest{which, ::getpid()}, proto::decode_status_answer);
  if (!paused) return app.report(paused.error(), kExitIncomplete);
  const bool agent = paused->has_value();
  if (!agent && !app.options().quiet)
    std::fprintf(stderr, "mamori: no agent is running; deploying without pausing it\n");
  // Whatever happens below, the agent guards again (and verifies) at the end.
  struct Resume {
    App& app;
    bool agent;
    proto::Roots which;
    ~Resume() {
      if (!agent) return;
      if (auto r = ask(app, proto::ResumeRequest{which}, proto::decode_status_answer); !r)
        std::fprintf(stderr, "mamori: could not resume the agent: %s\n",
                     r.error().message().c_str());
    }
  } resume{app, agent, which};

  auto status = run_command(command);
  if (!status) return app.report(status.error(), kExitIncomplete);
  const bool all = paths.empty();
  if (*status != 0) {
    std::fprintf(stderr, "mamori: %s failed (exit %d): rolling the roots back to the baseline\n",
                 quote(command[0]).c_str(), *status);
    const int code = run_restore(app, paths, all, /*quarantine_new=*/false);
    return std::max(code, static_cast<int>(kExitIncomplete));
  }
  // What to accept: with an agent that names writers, only the deploy's own paths;
  // without one, every change (after review when the agent cannot tell who wrote).
  std::vector<std::string> accept = paths;
  bool accept_all = all;
  bool must_review = review;
  if (agent) {
    auto answer = ask(app, proto::DeployPathsRequest{}, proto::decode_deploy_paths_answer);
    if (!answer || !*answer) {
      std::fprintf(stderr,
                   "mamori: the agent did not say what the deploy wrote (%s): rolling back\n",
                   answer ? "it stopped" : answer.error().message().c_str());
      return std::max(run_restore(app, paths, all, /*quarantine_new=*/false),
                      static_cast<int>(kExitIncomplete));
    }
    const auto& a = **answer;
    const bool attributed = a.attribution == proto::Attribution::kPid;
    if (!attributed || !a.complete) {
      // Documented policy (docs/agent.md): changes nobody can attribute are not
      // accepted unreviewed.
      if (!review) {
        std::fprintf(stderr,
                     "mamori: the agent cannot tell the deploy's writes from others' (%s): "
                     "nothing accepted, rolling back; run 'mamori deploy --review' to accept "
                     "after looking at the changes\n",
                     !attributed ? "its backend names no writer" : "too many paths");
        return std::max(run_restore(app, paths, all, /*quarantine_new=*/false),
                        static_cast<int>(kExitIncomplete));
      }
      must_review = true;
    } else {
      accept.clear();
      accept_all = false;
      for (const auto& r : a.roots) {
        const std::string& root = r.path;
        for (const auto& rel : r.deploy) {
          // Accepting the root itself would take its whole tree: its own metadata is
          // left to the resume's verify (restored) rather than sweep others' changes in.
          if (rel.empty()) {
            std::fprintf(stderr, "mamori: the deploy changed the root %s itself: not accepted\n",
                         escape(root).c_str());
            continue;
          }
          accept.push_back(root + "/" + rel);
        }
        for (const auto& rel : r.foreign)
          std::fprintf(stderr,
                       "mamori: %s was changed during the deploy by a process outside it: not "
                       "accepted (restored or quarantined by the agent; see its events)\n",
                       escape(rel.empty() ? root : root + "/" + rel).c_str());
      }
    }
  } else if (!app.options().quiet) {
    std::fprintf(stderr,
                 "mamori: without an agent, a change made by another process during the deploy "
                 "cannot be told apart: every change is accepted\n");
  }
  // The change set, then (after review) into the baseline.
  const int changed = run_check(app, paths, false);
  if (changed == kExitOk) {
    if (!app.options().quiet) std::printf("nothing changed\n");
    return kExitOk;
  }
  if (changed != kExitChanges) return changed;
  if (must_review) {
    std::fprintf(stderr, "accept these changes into the baseline? [y/N] ");
    std::string answer;
    if (!std::getline(std::cin, answer) || (answer != "y" && answer != "Y" && answer != "yes")) {
      std::fprintf(stderr, "mamori: not accepted: rolling back\n");
      const int code = run_restore(app, paths, all, /*quarantine_new=*/false);
      return std::max(code, static_cast<int>(kExitIncomplete));
    }
  }
  if (!accept_all && accept.empty())
    return kExitOk;  // only others changed: the agent rolls them back
  return run_accept(app, accept, accept_all);
}

Result<std::optional<nlohmann::json>> agent_status(App& app) {
  auto answer = MAMORI_TRY(ask(app, proto::StatusRequest{}, proto::decode_status_answer));
  if (!answer) return std::optional<nlohmann::json>();
  return std::optional<nlohmann::json>(proto::to_json(answer->status));
}

namespace {

constexpr std::string_view kHelp = R"TXT(NAME
    mamori agent - guard the roots in real time

SYNOPSIS
    mamori agent [--config FILE]

DESCRIPTION
    The daemon (packaging/systemd/mamori-agent.service runs it, Type=notify). Runs
    as root. Start-up is ordered, and stops naming the step that failed:
      listen          the control socket (agent.socket); a second agent stops here
      open_state      the catalog (read only) and the content store
      load_origin     the agent's id (STATE/agent-id, made at the first start; a
                      corrupt one stops the agent: delete it to start over)
      open_outbox     the event outbox (STATE/outbox) and its export agent.event_log,
                      then the [[sink]]s
      start_link      the manager link ([manager] url, token_file): enrolls once
                      (STATE/manager.json, 0600) and streams events to the manager
                      in the background; an unreachable manager never stops the
                      agent (docs/manager.md)
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

    Every detection and action is a record in the outbox (STATE/outbox), synced
    before anything else sees it, and one line of Elastic Common Schema JSON in
    agent.event_log, numbered by event.sequence: event.action
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

Run setup(CLI::App& cmd) {
  auto run_seconds = std::make_shared<unsigned>(0);
  cmd.add_option("--run-seconds", *run_seconds);  // tests and benchmarks; not documented
  return [run_seconds](App& app) { return run_agent_command(app, *run_seconds); };
}

}  // namespace

Command agent_command() {
  return {"agent", "agent", "guard the roots in real time (the daemon)", kHelp, true, setup};
}

}  // namespace mamori::cli
