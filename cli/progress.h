#pragma once
// A one-line progress display on stderr (files, bytes, rate, ETA), redrawn five times
// a second from its own thread while long work runs. Draws nothing when disabled
// (stderr not a terminal, --quiet), so piped output stays clean.

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "core/baseline/scan.h"

namespace mamori::cli {

class ProgressBar {
 public:
  ProgressBar(const baseline::Progress& progress, std::string label, bool enabled);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

 private:
  void draw(double seconds) const;

  const baseline::Progress& progress_;
  std::string label_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace mamori::cli
