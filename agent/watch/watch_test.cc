#include "agent/watch/replay/replay_watcher.h"

#include <gtest/gtest.h>

namespace mamori::watch {
namespace {
TEST(Guard, Placeholder) {}
}  // namespace
}  // namespace mamori::watch
