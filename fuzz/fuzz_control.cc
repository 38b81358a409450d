// Control requests come over a root-only socket, but a parser is a parser: any bytes
// must give a request object or a clean error, never a crash or an exception; a typed
// request (core/proto) must encode back to something that decodes to the same, and the
// clients' answer decoders must take any object without throwing.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "agent/control/control.h"
#include "core/proto/control.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto r = mamori::control::parse_request(in)) {
    if (!r->is_object() || !(*r)["cmd"].is_string()) std::abort();
    namespace proto = mamori::proto;
    if (auto req = proto::decode_request(*r)) {
      const auto again = proto::decode_request(proto::to_json(*req));
      if (!again || proto::to_json(*again) != proto::to_json(*req)) std::abort();
    }
    (void)proto::decode_status_answer(*r);
    (void)proto::decode_heal_answer(*r);
    (void)proto::decode_ban_answer(*r);
    (void)proto::decode_evidence_answer(*r);
    // Answers that carry names as bytes (hex when not UTF-8) survive a round trip.
    if (auto a = proto::decode_site_answer(*r)) {
      const auto again = proto::decode_site_answer(proto::to_json(proto::Answer{*a}));
      if (!again || proto::to_json(proto::Answer{*again}) != proto::to_json(proto::Answer{*a}))
        std::abort();
    }
    if (auto a = proto::decode_deploy_paths_answer(*r)) {
      const auto again = proto::decode_deploy_paths_answer(proto::to_json(proto::Answer{*a}));
      if (!again || proto::to_json(proto::Answer{*again}) != proto::to_json(proto::Answer{*a}))
        std::abort();
    }
  }
  return 0;
}
