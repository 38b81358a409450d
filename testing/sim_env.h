#pragma once
// An Env with the real filesystem and a simulated clock (SimClock): tests move time with
// sim().advance() or sim().set() instead of sleeping. The one SimEnv of the unit tests
// (the guard's, the healer's and the tailer's used to keep a copy each).

#include "core/base/env.h"
#include "testing/sim_clock.h"

namespace mamori::testing {

class SimEnv final : public Env {
 public:
  const Clock& clock() const override { return clock_; }
  SimClock& sim() { return clock_; }

 private:
  SimClock clock_;
};

}  // namespace mamori::testing
