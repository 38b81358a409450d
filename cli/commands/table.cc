// The table of mamori's commands, in the order `mamori --help` lists them.
//
// To add a command: write cli/commands/NAME.cc defining `Command NAME_command()`
// (command.h), add it to mamori_cli_lib's SRCS, and add X(NAME) below.

#include <cstdio>
#include <string>

#include "cli/commands/command.h"

#define MAMORI_COMMANDS(X) \
  X(setup)                 \
  X(init)                  \
  X(check)                 \
  X(diff)                  \
  X(restore)               \
  X(accept)                \
  X(status)                \
  X(gc)                    \
  X(evidence)              \
  X(agent)                 \
  X(mode)                  \
  X(deploy)                \
  X(heal)                  \
  X(decoys)                \
  X(pages)                 \
  X(scan)                  \
  X(logs)                  \
  X(bans)                  \
  X(events)                \
  X(manager)

namespace mamori::cli {

#define MAMORI_DECLARE_COMMAND(name) Command name##_command();
MAMORI_COMMANDS(MAMORI_DECLARE_COMMAND)
#undef MAMORI_DECLARE_COMMAND

std::span<const Command> commands() {
#define MAMORI_COMMAND_ENTRY(name) name##_command(),
  static const Command kCommands[] = {MAMORI_COMMANDS(MAMORI_COMMAND_ENTRY)};
#undef MAMORI_COMMAND_ENTRY
  return kCommands;
}

const Command* find_command(std::string_view name) {
  for (const auto& c : commands())
    if (c.name == name) return &c;
  return nullptr;
}

int usage_error(std::string_view command, std::string_view message) {
  std::fprintf(stderr, "mamori: %.*s\nTry 'mamori %.*s --help'.\n",
               static_cast<int>(message.size()), message.data(), static_cast<int>(command.size()),
               command.data());
  return kExitUsage;
}

}  // namespace mamori::cli
