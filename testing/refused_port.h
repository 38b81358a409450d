#pragma once
// A TCP port on 127.0.0.1 where nobody listens, so connecting to it is refused at once
// (RST), for tests of a sink or client facing a dead server. The port is bound by a
// socket that never listens and is held for the object's life: no other process can take
// it meanwhile (a port bound and closed again could be reused by a parallel test).

#include "core/base/unique_fd.h"

namespace mamori::testing {

class RefusedPort {
 public:
  // On failure the test gets a failure and port() is 0.
  RefusedPort();
  int port() const { return port_; }

 private:
  UniqueFd fd_;
  int port_ = 0;
};

}  // namespace mamori::testing
