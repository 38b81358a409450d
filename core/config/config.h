#pragma once
// mamori.toml: what to protect and where mamori keeps its state. Loading reports every
// problem as file:line:col with a stable code, so both people and scripts can act on it.
// Format and keys: etc/mamori.toml (commented) and docs/config.md.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "core/base/result.h"

namespace mamori::config {

enum class Mode { kAlert, kRestore, kPreserve };
std::string_view mode_name(Mode mode);
std::optional<Mode> parse_mode(std::string_view name);

struct RootConfig {
  std::string path;                  // absolute, no trailing '/'
  Mode mode = Mode::kRestore;
  std::vector<std::string> exclude;  // glob patterns relative to path (core/fs/glob.h)
  // New files the real-time guard leaves in place (uploads), unless they also match
  // deny_new: a script under an upload directory is a web shell, never an upload.
  std::vector<std::string> allow_new;
  std::vector<std::string> deny_new = default_deny_new();
  static std::vector<std::string> default_deny_new();
};

enum class Backend { kAuto, kFanotify, kInotify };
std::string_view backend_name(Backend backend);

// The real-time agent (`mamori agent`).
struct AgentConfig {
  std::string socket = "/run/mamori/agent.sock";      // control socket, root only
  std::string event_log = "/var/log/mamori/events.jsonl";  // ECS JSON lines
  Backend backend = Backend::kAuto;
  uint32_t verify_interval_s = 3600;  // full verify of every root; 0 = never
  uint64_t evidence_quota_mb = 1024;
  uint64_t evidence_max_file_mb = 64;
  // More changes than this in one second is a storm: per-file events are summarised.
  uint32_t storm_changes_per_second = 200;
  // Restores of one path within one second after which its events are summarised.
  uint32_t path_restores_per_second = 5;
};

struct Config {
  std::string source;                // the file it came from, for messages
  std::string state_dir = "/var/lib/mamori";
  unsigned jobs = 0;                 // hashing threads; 0 = one per core
  int compression_level = 1;         // zstd level for the content store (-7..19)
  std::vector<RootConfig> roots;
  AgentConfig agent;
};

struct ConfigError {
  std::string file;
  uint32_t line = 0;    // 1-based; 0 when the problem has no place in the text
  uint32_t column = 0;
  std::string code;     // stable: config.syntax, config.unknown_key, config.type, ...
  std::string key;      // dotted key path, e.g. "root[1].mode"; may be empty
  std::string message;

  // "file:line:col: message [code]"
  std::string text() const;
  Error to_error() const;
};

template <class T>
using ConfigResult = tl::expected<T, ConfigError>;

ConfigResult<Config> parse_config(std::string_view text, std::string_view source_name);
ConfigResult<Config> load_config(const std::string& path);

}  // namespace mamori::config
