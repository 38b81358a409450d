// The manager reads these bytes from any agent, and an agent from a manager it pinned:
// any input must decode to a typed message or a clean error, never a crash or an
// exception, and a decoded message must encode to something that decodes to the same.
// The manager reads events messages without the decoder (scan_events_message): it must
// take exactly what the decoder and extract_event_batch take, with the same columns; and
// its JSON scanner must accept exactly the texts nlohmann::json accepts, reading a string
// as nlohmann does.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/proto/channel.h"
#include "manager/db/event_columns.h"
#include "manager/db/json_scan.h"

namespace ch = mamori::proto::channel;

template <typename Decode>
void round_trip(std::string_view in, Decode decode) {
  if (auto m = decode(in)) {
    const auto text = ch::to_json(*m).dump();
    const auto again = decode(text);
    if (!again || ch::to_json(*again) != ch::to_json(*m)) std::abort();
  }
}

namespace mamori::manager {

// The scanner against nlohmann: the same verdict on any text; the same string or number
// where the text is one.
void same_json_as_nlohmann(std::string_view in) {
  const bool valid = nlohmann::json::accept(in);
  if (is_json(in) != valid) std::abort();
  if (!valid) return;
  const nlohmann::json j = nlohmann::json::parse(in);
  JsonScanner s(in);
  if (s.peek() == JsonScanner::Type::kString) {
    JsonString v;
    std::string decoded;
    if (!s.string(v)) std::abort();
    v.decode_to(decoded);
    if (decoded != j.get<std::string>()) std::abort();
    if (decoded.size() <= JsonString::kMaxCompared && !v.equals(decoded)) std::abort();
  } else if (s.peek() == JsonScanner::Type::kNumber) {
    JsonNumber n;
    if (!s.number(n) || n.is_integer() != j.is_number_integer()) std::abort();
    if (n.is_integer() && n.as_int64() != j.get<int64_t>()) std::abort();
  }
}

void same_as_the_decoder(std::string_view in) {
  bool resent = false;
  auto scanned = scan_events_message("k", in, &resent);
  auto decoded = ch::decode_agent_message(in);
  const ch::Events* ev = decoded ? std::get_if<ch::Events>(&*decoded) : nullptr;
  auto extracted = ev ? std::optional(extract_event_batch("k", ev->events)) : std::nullopt;
  if (!scanned) {  // refused: so is it by one of the two
    if (extracted && *extracted) std::abort();
    return;
  }
  if (!*scanned) {  // not a version-1 events message
    if (ev) std::abort();
    return;
  }
  if (!extracted || !*extracted || resent != ev->resent) std::abort();
  const auto& a = (*scanned)->rows;
  const auto& b = (*extracted)->rows;
  if (a.size() != b.size() || (*scanned)->max_sequence != (*extracted)->max_sequence ||
      (*scanned)->min_sequence != (*extracted)->min_sequence)
    std::abort();
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].id != b[i].id || a[i].action != b[i].action || a[i].path != b[i].path ||
        a[i].ip != b[i].ip || a[i].sequence != b[i].sequence || a[i].time_ns != b[i].time_ns ||
        a[i].severity != b[i].severity ||
        nlohmann::json::parse(a[i].json) != nlohmann::json::parse(b[i].json))
      std::abort();
}

}  // namespace mamori::manager

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  round_trip(in, ch::decode_agent_message);
  mamori::manager::same_json_as_nlohmann(in);
  mamori::manager::same_as_the_decoder(in);
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
