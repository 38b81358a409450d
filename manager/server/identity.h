#pragma once
// The manager's TLS identity: a self-signed certificate made on the first start and
// pinned by the agents through its fingerprint (no CA needed). STATE/manager.crt (PEM,
// 0644) and STATE/manager.key (PEM, 0600): an EC P-256 key, the certificate's subject
// CN = the host name, subjectAltName DNS:<host name> (and IP:<address> when the host
// name is one), valid for ten years. An existing pair is loaded as it is (replace both
// files to rotate: the fingerprint changes and the agents must be given it again).
//
// The fingerprint (core/tls/fingerprint.h) is what tokens carry and what an agent
// compares the presented certificate with.
//
// Threads: pure functions; OpenSSL's own thread safety.

#include <string>
#include <string_view>

#include "core/base/env.h"
#include "core/base/result.h"

namespace mamori::manager {

struct Identity {
  std::string cert_path;
  std::string key_path;
  std::string cert_pem;
  std::string key_pem;
  std::string fingerprint;
  bool created = false;  // made by this call
};

// Loads STATE/manager.crt and manager.key, making both when neither exists (one without
// the other is an error naming the missing one). The key must be 0600 (or stricter).
Result<Identity> load_or_create_identity(Env& env, const std::string& state_dir,
                                         const std::string& host_name);

// `n` random bytes from the kernel (getrandom).
Result<std::string> random_bytes(size_t n);

}  // namespace mamori::manager
