#pragma once
// The syslog sink: one RFC 5424 message per event, sent to
//   unix:/PATH       a local datagram socket (/dev/log under rsyslog or journald); a
//                    stream socket when the path is one (then each message ends in LF)
//   udp://HOST:PORT  one datagram per message (RFC 5426), at most kMaxDatagramBytes
//                    unless the header and structured data alone are longer
//   tcp://HOST:PORT  octet-counted frames "LEN SP MSG" (RFC 6587 3.4.1)
//   tls://HOST:PORT  the same inside TLS 1.2+ (RFC 5425), the server's chain and host
//                    name verified unless tls_verify is false
// HOST is a name, an IPv4 address or [IPv6]; PORT defaults to 514 (6514 for tls).
//
// Delivery guarantees follow the transport. UDP cannot report delivery: a datagram the
// collector never got still counts as delivered (only an ICMP refusal seen on a later
// send fails that later deliver()). TCP and TLS report what the kernel accepted: a
// connection the collector closed is noticed before the next batch and reopened, but
// bytes written just before a collector crash can be lost (RFC 6587's known limit);
// the outbox is at-least-once anyway, so receivers deduplicate on event.id.
//
// The sink keeps one connection (stream transports) or one connected socket (datagram
// transports), opened by the first deliver() and reopened by the deliver() after any
// error. deliver() resolves, connects, handshakes and sends within config.timeout_s in
// all (name resolution included), and on failure returns an Error naming the sink, the
// address and the step: "syslog sink 'siem': connect 'tcp://127.0.0.1:6514': Connection
// refused". Not thread-safe: one worker thread calls deliver() (sink.h).

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "agent/sinks/sink.h"
#include "core/base/result.h"
#include "core/config/config.h"

namespace mamori::sinks {

// A message's size limit: MSG is cut (on a UTF-8 boundary) to fit; the header and the
// structured data never are, and their own caps keep them far below this. rsyslog's
// default maxMessageSize is 8096 bytes: a longer message would arrive truncated.
inline constexpr size_t kMaxMessageBytes = 8000;
// UDP: RFC 5426 receivers SHOULD accept 2048-byte datagrams.
inline constexpr size_t kMaxDatagramBytes = 2048;

// Checks config (address, facility, app_name) and builds the sink; it does not connect,
// since the collector may be down at start-up. The error names the sink and the value.
Result<std::unique_ptr<Sink>> make_syslog_sink(const config::SinkConfig& config);

// One RFC 5424 message for an outbox event, without framing:
//   <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [mamori@32473 id="..." ...] MSG
// PRI = facility (0..23) * 8 + a syslog severity from event.severity; TIMESTAMP is
// @timestamp when it is RFC 3339, HOSTNAME host.hostname (else `hostname`), MSGID
// event.action; absent fields are "-". Header fields keep only printable ASCII; control
// characters in parameter values and MSG become spaces, so one event is one line. MSG
// (the event's message, no BOM: see the .cc) is cut so the whole fits max_bytes.
std::string format_rfc5424(const nlohmann::json& event, int facility, std::string_view app_name,
                           std::string_view hostname, int pid, size_t max_bytes = kMaxMessageBytes);

}  // namespace mamori::sinks
