// mamori: parses the command line and runs one subcommand (cli/commands/).

#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/app.h"
#include "cli/commands/commands.h"
#include "cli/help.h"

namespace {

int print_help(std::string_view command) {
  const auto text = mamori::cli::help_text(command);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return mamori::cli::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace mamori::cli;
  GlobalOptions global;
  bool help = false, version = false, full = false, all = false, quarantine_new = false;
  std::vector<std::string> paths;
  std::string evidence_action;
  EvidenceOptions evidence_options;
  std::string bans_action;
  BansOptions bans_options;
  unsigned run_seconds = 0;
  bool review = false;
  std::vector<std::string> deploy_roots, command;
  std::string mode_root, mode_name;
  std::string logs_action;
  LogsOptions logs_options;
  EventsOptions events_options;
  bool heal_clear = false;
  std::string heal_fail;

  CLI::App cli("mamori");
  cli.set_help_flag();
  cli.require_subcommand(0, 1);
  cli.fallthrough();
  cli.add_flag("-h,--help", help);
  cli.add_flag("--version", version);
  cli.add_option("-c,--config", global.config_path);
  cli.add_flag("--json", global.json);
  cli.add_flag("-q,--quiet", global.quiet);
  cli.add_flag("--nice", global.nice);
  cli.add_option("-j,--jobs", global.jobs)->check(CLI::Range(1, 1024));

  auto sub = [&](const char* name) {
    auto* s = cli.add_subcommand(name);
    s->set_help_flag();
    s->add_flag("-h,--help", help);
    return s;
  };
  auto* init = sub("init");
  init->add_option("paths", paths);
  auto* check = sub("check");
  check->add_flag("--full", full);
  check->add_option("paths", paths);
  auto* diff = sub("diff");
  diff->add_option("path", paths);
  auto* restore = sub("restore");
  restore->add_flag("--all", all);
  restore->add_flag("--quarantine-new", quarantine_new);
  restore->add_option("paths", paths);
  auto* accept = sub("accept");
  accept->add_flag("--all", all);
  accept->add_option("paths", paths);
  auto* status = sub("status");
  auto* gc = sub("gc");
  auto* agent = sub("agent");
  agent->add_option("--run-seconds", run_seconds);
  auto* mode = sub("mode");
  mode->add_option("root", mode_root);
  mode->add_option("mode", mode_name);
  auto* logs = sub("logs");
  logs->add_option("action", logs_action);
  logs->add_option("file", paths);
  logs->add_option("--format", logs_options.format);
  logs->add_option("--rules", logs_options.rules)->allow_extra_args(false);  // one file per --rules
  logs->add_flag("--no-default-rules", logs_options.no_default_rules);
  logs->add_option("--allow", logs_options.allow)->allow_extra_args(false);
  auto* heal = sub("heal");
  heal->add_flag("--clear", heal_clear);
  heal->add_option("--fail", heal_fail);
  auto* deploy = sub("deploy");
  deploy->add_flag("--review", review);
  deploy->add_option("--root", deploy_roots);
  deploy->add_option("command", command);
  auto* evidence = sub("evidence");
  evidence->add_option("action", evidence_action);
  evidence->add_option("args", paths);
  evidence->add_option("--limit", evidence_options.limit);
  evidence->add_option("-o,--output", evidence_options.output);
  auto* events = sub("events");
  events->add_option("--since", events_options.since);
  events->add_option("--path", events_options.path);
  events->add_option("--ip", events_options.ip);
  events->add_flag("-f,--follow", events_options.follow);
  events->add_flag("--check", events_options.check);
  events->add_option("files", events_options.files);
  auto* bans = sub("bans");
  bans->add_option("action", bans_action);
  bans->add_option("args", paths);
  bans->add_option("--ttl", bans_options.ttl_s);
  bans->add_flag("--permanent", bans_options.permanent);
  bans->add_option("--reason", bans_options.reason);
  bans->add_flag("--force", bans_options.force);

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "mamori: %s\nTry 'mamori --help'.\n", e.what());
    return kExitUsage;
  }
  const auto chosen = cli.get_subcommands();
  const std::string name = chosen.empty() ? "" : chosen.front()->get_name();
  if (help) return print_help(name);
  if (version) {
    std::printf("mamori 0.1.0\n");
    return kExitOk;
  }
  if (name.empty()) {
    print_help("");
    return kExitUsage;
  }
  if (name == "diff" && paths.size() != 1) {
    std::fprintf(stderr, "mamori: diff takes exactly one PATH\nTry 'mamori diff --help'.\n");
    return kExitUsage;
  }

  if (name == "mode" && (mode_root.empty() || mode_name.empty())) {
    std::fprintf(stderr, "mamori: mode takes ROOT and MODE\nTry 'mamori mode --help'.\n");
    return kExitUsage;
  }

  if (name == "heal" && heal_clear && !heal_fail.empty()) {
    std::fprintf(
        stderr,
        "mamori: heal takes --clear or --fail REASON, not both\nTry 'mamori heal --help'.\n");
    return kExitUsage;
  }

  if (logs->parsed()) {
    if (logs_action != "test" || paths.size() != 1) {
      std::fprintf(stderr, "mamori: logs takes 'test FILE'\nTry 'mamori logs --help'.\n");
      return kExitUsage;
    }
    return run_logs_test(global, logs_options, paths.front());  // no config needed
  }

  App app(global);
  if (auto code = app.load()) return *code;
  if (init->parsed()) return run_init(app, paths);
  if (check->parsed()) return run_check(app, paths, full);
  if (diff->parsed()) return run_diff(app, paths.front());
  if (restore->parsed()) return run_restore(app, paths, all, quarantine_new);
  if (accept->parsed()) return run_accept(app, paths, all);
  if (status->parsed()) return run_status(app);
  if (gc->parsed()) return run_gc(app);
  if (agent->parsed()) return run_agent_command(app, run_seconds);
  if (mode->parsed()) return run_mode(app, mode_root, mode_name);
  if (heal->parsed()) return run_heal(app, heal_clear, heal_fail);
  if (deploy->parsed()) return run_deploy(app, deploy_roots, review, command);
  if (evidence->parsed()) return run_evidence(app, evidence_action, paths, evidence_options);
  if (events->parsed()) {
    if (!events_options.files.empty() && !events_options.check) {
      std::fprintf(stderr,
                   "mamori: events takes FILE only with --check\nTry 'mamori events --help'.\n");
      return kExitUsage;
    }
    return run_events(app, events_options);
  }
  if (bans->parsed()) return run_bans(app, bans_action, paths, bans_options);
  return kExitUsage;
}
