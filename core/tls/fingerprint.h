#pragma once
// A TLS certificate's fingerprint: SHA-256 of its DER, 64 lower-case hex digits. The
// manager prints it in its tokens; an agent pins it (core/proto/channel.h
// is_fingerprint), so both ends compute it here, the same way.
//
// Threads: pure functions.

#include <openssl/x509.h>

#include <string>
#include <string_view>

#include "core/base/result.h"

namespace mamori::tls {

Result<std::string> fingerprint(X509* cert);
// The fingerprint of the first certificate of a PEM text.
Result<std::string> fingerprint_of_pem(std::string_view pem);

}  // namespace mamori::tls
