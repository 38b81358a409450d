// Pages are the attacker's bytes (whoever can write a post, a comment or a row of the
// database writes them): whatever they are, extracting their active content never
// crashes, keeps its limits (element count, value length, sorted and unique), and the
// record that holds it reads back the same. Any bytes read as a record fail cleanly.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/page/active_content.h"
#include "core/page/record.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace page = mamori::page;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)page::parse_record(in, "fuzz");  // damage is an error value, never a crash
  page::Limits limits;
  limits.max_elements = 64;
  limits.max_value_bytes = 256;
  auto c = page::extract(in, "https://www.example.com/a/b?c", limits);
  if (!c) return 0;
  if (c->elements.size() > limits.max_elements) std::abort();
  for (size_t i = 0; i < c->elements.size(); ++i) {
    const page::Element& e = c->elements[i];
    if (e.value.size() > limits.max_value_bytes || e.origin.size() > limits.max_value_bytes ||
        e.snippet.size() > limits.snippet_bytes || e.kind.empty())
      std::abort();
    if (i > 0 && !(c->elements[i - 1] < e)) std::abort();
  }
  page::PageRecord r;
  r.url = "https://www.example.com/a/b?c";
  r.baseline = *c;
  r.current = *c;
  r.reported = c->elements;
  auto back = page::parse_record(page::record_json(r), "fuzz");
  if (!back || back->baseline.elements.size() != c->elements.size() ||
      back->reported.size() != c->elements.size())
    std::abort();
  for (size_t i = 0; i < c->elements.size(); ++i)
    if (!back->baseline.elements[i].same(c->elements[i])) std::abort();
  return 0;
}
