#pragma once
// A one-line progress display on stderr (files, bytes, rate, ETA), redrawn five times
// a second from its own thread while long work runs. Draws nothing when disabled
// (stderr not a terminal, --quiet), so piped output stays clean.

#include <string>
#include <thread>

#include "core/base/mutex.h"
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
  Mutex mu_;
  CondVar cv_;
  bool stop_ MAMORI_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace mamori::cli
