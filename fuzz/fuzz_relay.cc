// The SSH honeypot's outbox records are hostile input to the agent (agent/relay): the
// honeypot is the most exposed process on the host. Whatever a record holds, relaying
// it must never crash or throw, and what is relayed is a honeypot event the field list
// accepts, with no field the honeypot may not set.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/relay/honeypot_relay.h"
#include "core/event/schema.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view payload(reinterpret_cast<const char*>(data), size);
  auto e = mamori::relay::relayed_event(payload, 1'700'000'000'000'000'000);
  if (!e) return 0;
  if (!e->get("agent").is_null() || !e->get("mamori.root").is_null() ||
      !e->get("mamori.related_event").is_null() || !e->get("event.dataset").is_null())
    __builtin_trap();
  if (!e->get("message").is_string()) __builtin_trap();
  (void)e->to_json_line();
  return 0;
}
