// The server's route table (api.h, api_routes()) against docs/openapi.yaml: the same
// paths, methods and least roles, so that neither changes without the other. The YAML is
// read by its lines, in the layout the file's header comment fixes ("  /path:" per path,
// "    method:" per operation, "      x-mamori-min-role: ROLE" when a login is needed).
#include <fstream>
#include <regex>
#include <set>
#include <string>
#include <tuple>

#include <gtest/gtest.h>

#include "manager/server/api.h"

namespace mamori::manager {
namespace {

using Row = std::tuple<std::string, std::string, std::string>;  // method, path, role or "-"

std::set<Row> from_yaml() {
  std::ifstream in(MAMORI_SOURCE_DIR "/docs/openapi.yaml");
  EXPECT_TRUE(in) << "docs/openapi.yaml";
  const std::regex path_re(R"(^  (/[^:]*):\s*$)"),
      method_re(R"(^    (get|post|put|patch|delete):\s*$)"),
      role_re(R"(^      x-mamori-min-role:\s*(\w+)\s*$)");
  std::set<Row> out;
  std::string line, path, method, role;
  bool in_paths = false;
  auto flush = [&] {
    if (!method.empty()) out.emplace(method, path, role.empty() ? "-" : role);
    method.clear();
    role.clear();
  };
  std::smatch m;
  while (std::getline(in, line)) {
    if (line == "paths:") {
      in_paths = true;
      continue;
    }
    if (!in_paths) continue;
    if (std::regex_match(line, m, path_re)) {
      flush();
      path = m[1];
    } else if (std::regex_match(line, m, method_re)) {
      flush();
      method = m[1];
    } else if (std::regex_match(line, m, role_re)) {
      role = m[1];
    }
  }
  flush();
  return out;
}

TEST(ApiRoutes, TheServersTableIsTheOpenApiFiles) {
  std::set<Row> server;
  for (const auto& r : api_routes()) {
    std::string method(boost::beast::http::to_string(r.method));
    for (auto& c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    server.emplace(method, std::string(r.path),
                   r.min_role ? std::string(to_string(*r.min_role)) : "-");
  }
  const std::set<Row> yaml = from_yaml();
  EXPECT_GE(yaml.size(), 14u);
  for (const auto& r : server)
    EXPECT_TRUE(yaml.count(r)) << "served, not in docs/openapi.yaml (or another role): "
                               << std::get<0>(r) << " " << std::get<1>(r) << " " << std::get<2>(r);
  for (const auto& r : yaml)
    EXPECT_TRUE(server.count(r)) << "in docs/openapi.yaml, not served (or another role): "
                                 << std::get<0>(r) << " " << std::get<1>(r) << " "
                                 << std::get<2>(r);
}

}  // namespace
}  // namespace mamori::manager
