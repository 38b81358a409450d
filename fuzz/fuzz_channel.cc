// The manager reads these bytes from any agent, and an agent from a manager it pinned:
// any input must decode to a typed message or a clean error, never a crash or an
// exception, and a decoded message must encode to something that decodes to the same.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/proto/channel.h"

namespace ch = mamori::proto::channel;

template <typename Decode>
void round_trip(std::string_view in, Decode decode) {
  if (auto m = decode(in)) {
    const auto text = ch::to_json(*m).dump();
    const auto again = decode(text);
    if (!again || ch::to_json(*again) != ch::to_json(*m)) std::abort();
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  round_trip(in, ch::decode_agent_message);
  round_trip(in, ch::decode_manager_message);
  round_trip(in, ch::decode_enroll_request);
  round_trip(in, ch::decode_enroll_answer);
  (void)ch::decode_enroll_error(in);
  if (auto t = ch::decode_token(in)) {
    const auto again = ch::decode_token(ch::encode_token(*t));
    if (!again || ch::encode_token(*again) != ch::encode_token(*t)) std::abort();
  }
  return 0;
}
