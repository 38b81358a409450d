#include "agent/guard/guard.h"

#include <gtest/gtest.h>

namespace mamori::guard {
namespace {
TEST(Guard, Placeholder) {}
}  // namespace
}  // namespace mamori::guard
