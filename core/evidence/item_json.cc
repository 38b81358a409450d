#include "core/evidence/item_json.h"

#include <sys/stat.h>

#include <ctime>

#include <fmt/format.h>

#include "core/base/quote.h"

namespace mamori::evidence {
namespace {

const char* file_type(uint32_t mode) {
  if (S_ISREG(mode)) return "file";
  if (S_ISDIR(mode)) return "dir";
  if (S_ISLNK(mode)) return "symlink";
  return nullptr;
}

}  // namespace

std::string json_text(const std::string& s) { return is_valid_utf8(s) ? s : escape(s); }

std::string absolute(const std::string& root, const std::string& rel) {
  if (rel.empty()) return root;
  return root == "/" ? "/" + rel : root + "/" + rel;
}

nlohmann::json path_json(const std::string& root, const std::string& rel) {
  const std::string abs = absolute(root, rel);
  nlohmann::json j;
  if (is_valid_utf8(abs)) {
    j["path"] = abs;
  } else {
    // JSON strings must be UTF-8: give the escaped form and the exact bytes in hex.
    j["path"] = escape(abs);
    std::string hex;
    for (unsigned char c : abs) hex += fmt::format("{:02x}", c);
    j["path_hex"] = hex;
  }
  return j;
}

std::string format_time_ns(int64_t ns) {
  const time_t secs = static_cast<time_t>(ns / 1'000'000'000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:09d}Z", buf, ns % 1'000'000'000);
}

nlohmann::json item_json(const Item& it) {
  nlohmann::json file = path_json(it.root, it.path);
  file["hash"] = {{"sha256", it.sha256.hex()}};
  file["size"] = it.size;
  if (const char* t = file_type(it.mode)) file["type"] = t;
  file["mode"] = fmt::format("{:04o}", it.mode & 07777);
  file["uid"] = std::to_string(it.uid);
  file["gid"] = std::to_string(it.gid);
  file["mtime"] = format_time_ns(it.mtime_ns);
  nlohmann::json j = {{"@timestamp", format_time_ns(it.time_ns)}, {"file", file}};
  if (!it.event_id.empty()) j["event"] = {{"id", json_text(it.event_id)}};

  const auto& w = it.who;
  nlohmann::json process = nlohmann::json::object(), parent = nlohmann::json::object(),
                 user = nlohmann::json::object();
  if (w.pid >= 0) process["pid"] = w.pid;
  if (!w.executable.empty()) process["executable"] = json_text(w.executable);
  if (!w.command_line.empty()) process["command_line"] = json_text(w.command_line);
  if (w.ppid >= 0) parent["pid"] = w.ppid;
  if (!w.parent_executable.empty()) parent["executable"] = json_text(w.parent_executable);
  if (!parent.empty()) process["parent"] = parent;
  if (!process.empty()) j["process"] = process;
  if (w.uid >= 0) user["id"] = std::to_string(w.uid);
  if (!w.user.empty()) user["name"] = json_text(w.user);
  if (!user.empty()) j["user"] = user;

  j["mamori"] = {
      {"evidence", {{"id", it.id}, {"reason", json_text(it.reason)}, {"truncated", it.truncated}}},
      {"root", json_text(it.root)}};
  if (it.baseline_sha256) j["mamori"]["baseline"] = {{"sha256", it.baseline_sha256->hex()}};
  // As on the event (mamori.scan.rules): absent when the content was never scanned.
  if (it.scan) {
    nlohmann::json rules = nlohmann::json::array();
    for (const auto& r : it.scan->rules) rules.push_back(json_text(r));
    j["mamori"]["scan"] = {{"rules", rules}, {"truncated", it.scan->truncated}};
  }
  return j;
}

}  // namespace mamori::evidence
