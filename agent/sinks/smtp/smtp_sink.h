#pragma once
// The e-mail sink: each batch the follower hands over becomes one message (one event, or a
// digest when the sink gathers for digest_s), sent through an SMTP relay with libcurl:
// smtp:// with STARTTLS as configured (none, try, required), or smtps://; AUTH when a
// username is set, its password read once from password_file at creation.
//
// Threads: deliver() from the sink's worker thread only; it gives up after timeout_s.

#include <memory>

#include "agent/sinks/sink.h"
#include "agent/sinks/smtp/mail_text.h"
#include "core/base/result.h"
#include "core/config/config.h"

namespace mamori::sinks {

// Validates `config` (url smtp:// or smtps:// without credentials in it, plain addresses
// in from and to, username and password_file together, a readable password_file, a
// non-zero timeout) and reads the password. Errors name the sink: they are config errors
// the agent reports at start-up. Calls init_curl_once().
Result<std::unique_ptr<Sink>> make_smtp_sink(const config::SinkConfig& config);

}  // namespace mamori::sinks
