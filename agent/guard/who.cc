#include "agent/guard/who.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include <fmt/format.h>

#include "core/fs/admin_files.h"

namespace mamori::guard {
namespace {

// A /proc file whole ("" when the process is gone). A command line is at most ARG_MAX.
std::string proc_file(const std::string& path) {
  auto text = fs::read_small_file(path, 2 << 20);
  return text ? std::move(*text) : std::string();
}

std::string link(const std::string& path) {
  char buf[4096];
  const ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// "Uid:\treal\teffective..." and "PPid:\tN" from /proc/PID/status.
int64_t status_field(const std::string& status, std::string_view key) {
  const auto at = status.find(key);
  if (at == std::string::npos) return -1;
  size_t i = at + key.size();
  while (i < status.size() && (status[i] == '\t' || status[i] == ' ')) ++i;
  int64_t v = 0;
  bool any = false;
  for (; i < status.size() && status[i] >= '0' && status[i] <= '9'; ++i) {
    v = v * 10 + (status[i] - '0');
    any = true;
  }
  return any ? v : -1;
}

std::string user_name(int64_t uid) {
  if (uid < 0) return {};
  struct passwd pw {};
  struct passwd* found = nullptr;
  char buf[4096];
  if (::getpwuid_r(static_cast<uid_t>(uid), &pw, buf, sizeof buf, &found) != 0 || !found) return {};
  return pw.pw_name;
}

}  // namespace

const std::string& UserNames::name(int64_t uid) {
  if (auto it = names_.find(uid); it != names_.end()) return it->second;
  if (names_.size() >= kMax) names_.clear();
  return names_.emplace(uid, user_name(uid)).first->second;
}

bool runs_one_of(pid_t pid, std::span<const std::string_view> binaries, const char* proc) {
  struct stat exe {};
  if (pid <= 0 || ::stat(fmt::format("{}/{}/exe", proc, pid).c_str(), &exe) != 0) return false;
  for (std::string_view b : binaries) {
    struct stat st {};
    if (::stat(std::string(b).c_str(), &st) == 0 && st.st_dev == exe.st_dev &&
        st.st_ino == exe.st_ino)
      return true;
  }
  return false;
}

evidence::Who who_of(pid_t pid, UserNames& users, const char* proc) {
  evidence::Who w;
  if (pid <= 0) return w;
  w.pid = pid;
  const std::string base = fmt::format("{}/{}", proc, pid);
  w.executable = link(base + "/exe");
  std::string cmd = proc_file(base + "/cmdline");
  while (!cmd.empty() && cmd.back() == '\0') cmd.pop_back();
  for (char& c : cmd)
    if (c == '\0') c = ' ';
  w.command_line = std::move(cmd);
  const std::string status = proc_file(base + "/status");
  w.uid = status_field(status, "\nUid:");
  w.ppid = status_field(status, "\nPPid:");
  w.user = users.name(w.uid);
  if (w.ppid > 0) w.parent_executable = link(fmt::format("{}/{}/exe", proc, w.ppid));
  return w;
}

nlohmann::json who_json(const evidence::Who& w) {
  nlohmann::json j = nlohmann::json::object();
  if (w.pid <= 0) return j;
  j["pid"] = w.pid;
  if (!w.executable.empty()) j["executable"] = w.executable;
  if (!w.command_line.empty()) j["command_line"] = w.command_line;
  if (w.ppid > 0) {
    j["parent"]["pid"] = w.ppid;
    if (!w.parent_executable.empty()) j["parent"]["executable"] = w.parent_executable;
  }
  return j;
}

}  // namespace mamori::guard
