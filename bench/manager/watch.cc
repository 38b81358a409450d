#include "bench/manager/watch.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace mamori::bench {

std::optional<ProcSample> sample_process(int pid) {
  ProcSample s;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return std::nullopt;
  // Fields after the command name (which may hold spaces and parentheses): state is the
  // 3rd field, utime the 14th, stime the 15th.
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(close + 2));
  std::vector<std::string> f;
  for (std::string x; rest >> x;) f.push_back(x);
  if (f.size() < 13) return std::nullopt;
  const int64_t ticks = std::stoll(f[11]) + std::stoll(f[12]);
  s.cpu_ns = ticks * (1'000'000'000 / sysconf(_SC_CLK_TCK));
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  while (std::getline(status, line)) {
    int64_t kb = 0;
    if (line.starts_with("VmRSS:") && std::sscanf(line.c_str(), "VmRSS: %ld", &kb) == 1)
      s.rss_bytes = kb * 1024;
    if (line.starts_with("VmHWM:") && std::sscanf(line.c_str(), "VmHWM: %ld", &kb) == 1)
      s.hwm_bytes = kb * 1024;
  }
  return s;
}

int64_t own_cpu_ns() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto ns = [](const timeval& t) { return t.tv_sec * 1'000'000'000LL + t.tv_usec * 1000LL; };
  return ns(u.ru_utime) + ns(u.ru_stime);
}

int64_t db_bytes(const std::string& db_path) {
  int64_t total = 0;
  for (const std::string& p : {db_path, db_path + "-wal"}) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0) total += st.st_size;
  }
  return total;
}

std::optional<int64_t> parse_iso_time(const std::string& text) {
  tm t{};
  int year = 0, mon = 0, day = 0, hour = 0, min = 0, sec = 0, n = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &year, &mon, &day, &hour, &min, &sec,
                  &n) != 6)
    return std::nullopt;
  t.tm_year = year - 1900;
  t.tm_mon = mon - 1;
  t.tm_mday = day;
  t.tm_hour = hour;
  t.tm_min = min;
  t.tm_sec = sec;
  int64_t frac_ns = 0;
  size_t i = static_cast<size_t>(n);
  if (i < text.size() && text[i] == '.') {
    int64_t scale = 100'000'000;
    for (++i; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i, scale /= 10)
      frac_ns += (text[i] - '0') * scale;
  }
  return static_cast<int64_t>(timegm(&t)) * 1'000'000'000 + frac_ns;
}

OutboxFollower::OutboxFollower(std::string dir) : reader_(std::move(dir)) {
  // Start past what is there: only what happens during the run counts.
  reader_.seek(0);
  std::vector<outbox::Record> skipped;
  while (true) {
    skipped.clear();
    auto n = reader_.read(skipped, 10'000);
    if (!n || *n == 0) break;
  }
}

Result<std::vector<ManagerEvent>> OutboxFollower::poll() {
  std::vector<ManagerEvent> out;
  std::vector<outbox::Record> records;
  while (true) {
    records.clear();
    const size_t n = MAMORI_TRY(reader_.read(records, 1000));
    if (n == 0) return out;
    records_ += n;
    for (const auto& r : records) {
      const auto j = nlohmann::json::parse(r.payload, nullptr, false);
      if (!j.is_object()) continue;
      ManagerEvent e;
      const auto& ev = j.value("event", nlohmann::json::object());
      e.action = ev.value("action", "");
      const auto& m = j.value("mamori", nlohmann::json::object());
      e.agent_key = m.value("managed_agent", nlohmann::json::object()).value("key", "");
      e.reason = m.value("reason", "");
      e.at_ns = parse_iso_time(j.value("@timestamp", "")).value_or(0);
      out.push_back(std::move(e));
    }
  }
}

int64_t percentile(std::vector<int64_t>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

}  // namespace mamori::bench
