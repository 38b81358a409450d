#include "agent/sinks/sink.h"

namespace mamori::sinks {

const nlohmann::json& field(const nlohmann::json& event, std::string_view dotted) {
  static const nlohmann::json kNull;
  const nlohmann::json* node = &event;
  while (true) {
    if (!node->is_object()) return kNull;
    const size_t dot = dotted.find('.');
    const auto it = node->find(std::string(dotted.substr(0, dot)));
    if (it == node->end()) return kNull;
    if (dot == std::string_view::npos) return *it;
    node = &*it;
    dotted.remove_prefix(dot + 1);
  }
}

std::string text(const nlohmann::json& event, std::string_view dotted) {
  const auto& v = field(event, dotted);
  if (v.is_null()) return {};
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::string out;
    for (const auto& item : v) {
      if (!out.empty()) out += ", ";
      out += item.is_string() ? item.get<std::string>() : item.dump();
    }
    return out;
  }
  return v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace mamori::sinks
