#include "cli/progress.h"

#include <chrono>
#include <cstdio>

#include <fmt/format.h>

#include "cli/app.h"
#include "core/base/env.h"

namespace mamori::cli {

ProgressBar::ProgressBar(const baseline::Progress& progress, std::string label, bool enabled)
    : progress_(progress), label_(std::move(label)) {
  if (!enabled) return;
  thread_ = std::thread([this] {
    const SystemClock clock;
    const auto start = clock.monotonic();
    MutexLock lock(mu_);
    while (!cv_.wait_for(mu_, std::chrono::milliseconds(200),
                         [this]() MAMORI_REQUIRES(mu_) { return stop_; })) {
      draw(std::chrono::duration<double>(clock.monotonic() - start).count());
    }
    std::fputs("\r\033[K", stderr);  // leave a clean line for the result
  });
}

ProgressBar::~ProgressBar() {
  if (!thread_.joinable()) return;
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void ProgressBar::draw(double seconds) const {
  const uint64_t files = progress_.files_done, files_total = progress_.files_total;
  if (files_total == 0) {  // still walking the tree
    std::fputs(fmt::format("\r\033[K{}  reading the tree...", label_).c_str(), stderr);
    std::fflush(stderr);
    return;
  }
  const uint64_t bytes = progress_.bytes_done, bytes_total = progress_.bytes_total;
  const double rate = seconds > 0 ? static_cast<double>(bytes) / seconds : 0;
  std::string eta = "--:--";
  if (rate > 0 && bytes_total >= bytes) {
    const auto left = static_cast<uint64_t>(static_cast<double>(bytes_total - bytes) / rate);
    eta = fmt::format("{}:{:02d}", left / 60, left % 60);
  }
  const int pct = bytes_total ? static_cast<int>(100 * bytes / bytes_total) : 0;
  const std::string line = fmt::format(
      "\r\033[K{} {:3d}%  {}/{} files  {}/{}  {}/s  ETA {}", label_, pct, files, files_total,
      human_bytes(bytes), human_bytes(bytes_total), human_bytes(static_cast<uint64_t>(rate)), eta);
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

}  // namespace mamori::cli
