// What a PHP-FPM pool answers mamori's opcache helper request is untrusted input (the
// socket may be the web user's: agent/opcache/fastcgi.h): reading the records, the CGI
// reply in them and the helper's answer must never crash, throw or grow past the limits.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/opcache/fastcgi.h"
#include "agent/opcache/opcache.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mamori::opcache;
  if (size == 0) return 0;
  // The first byte picks how the stream is cut into reads.
  const size_t step = 1 + data[0] % 64;
  const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  ResponseParser parser(1, {.max_out = 4096, .max_err = 512, .max_records = 1000});
  for (size_t at = 0; at < in.size(); at += step) {
    auto r = parser.feed(in.substr(at, step));
    if (!r || *r) break;
  }
  const auto& resp = parser.response();
  if (resp.out.size() > 4096 || resp.err.size() > 512) __builtin_trap();
  // The CGI reply and the helper's answer, from the records or from the raw input.
  for (std::string_view out : {std::string_view(resp.out), in}) {
    if (auto reply = parse_cgi_reply(out)) {
      if (reply->status < 0 || reply->status > 999) __builtin_trap();
      (void)parse_helper_reply(reply->body);
    }
    (void)parse_helper_reply(out);
  }
  return 0;
}
