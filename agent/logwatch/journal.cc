#include "agent/logwatch/journal.h"

#include <systemd/sd-journal.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <ctime>
#include <utility>

#include <fmt/format.h>

#include "core/fs/admin_files.h"

namespace mamori::logwatch {
namespace {

Error journal_error(std::string_view op, const std::string& where, int r) {
  return Error{std::string(op), where, -r, {}};
}

std::string where_of(const JournalOptions& o) {
  return o.directory.empty() ? "the system journal" : o.directory;
}

// The journal's microseconds as rsyslog's RFC 3339 time, UTC.
std::string rfc3339(uint64_t usec) {
  const time_t secs = static_cast<time_t>(usec / 1'000'000);
  struct tm tm {};
  ::gmtime_r(&secs, &tm);
  char buf[40];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:06}+00:00", std::string_view(buf, n), usec % 1'000'000);
}

template <class T>
T number_or(std::string_view text, T otherwise) {
  T v{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  return ec == std::errc() && end == text.data() + text.size() ? v : otherwise;
}

}  // namespace

Result<std::unique_ptr<JournalReader>> JournalReader::open(Env& env, JournalOptions options) {
  sd_journal* j = nullptr;
  const int r = options.directory.empty()
                    ? sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM)
                    : sd_journal_open_directory(&j, options.directory.c_str(), 0);
  if (r < 0) return tl::unexpected(journal_error("sd_journal_open", where_of(options), r));
  auto reader = std::unique_ptr<JournalReader>(new JournalReader(env, j, std::move(options)));
  for (const auto id : kIdentifiers) {
    const std::string match = fmt::format("SYSLOG_IDENTIFIER={}", id);
    if (const int m = sd_journal_add_match(j, match.data(), match.size()); m < 0)
      return tl::unexpected(journal_error("sd_journal_add_match", where_of(reader->options_), m));
  }
  reader->fd_ = sd_journal_get_fd(j);
  if (reader->fd_ < 0)
    return tl::unexpected(
        journal_error("sd_journal_get_fd", where_of(reader->options_), reader->fd_));

  // After the saved cursor when it is still in the journal; else from the end.
  std::string saved;
  if (!reader->options_.cursor_path.empty()) {
    if (auto text = fs::read_small_file(reader->options_.cursor_path, 4096)) {
      saved = std::move(*text);
      while (!saved.empty() && (saved.back() == '\n' || saved.back() == ' ')) saved.pop_back();
    }
  }
  bool resumed = false;
  if (!saved.empty() && sd_journal_seek_cursor(j, saved.c_str()) >= 0 && sd_journal_next(j) > 0) {
    // seek_cursor lands on the closest entry when that one was vacuumed: that entry is
    // still to be read, the saved one was.
    reader->current_unread_ = sd_journal_test_cursor(j, saved.c_str()) <= 0;
    reader->cursor_ = saved;
    resumed = true;
  }
  if (!resumed) {
    (void)sd_journal_seek_tail(j);
    (void)sd_journal_previous(j);  // the last entry: read() goes on after it
  }
  return reader;
}

JournalReader::JournalReader(Env& env, sd_journal* journal, JournalOptions options)
    : env_(env), journal_(journal), options_(std::move(options)) {}

JournalReader::~JournalReader() { sd_journal_close(journal_); }

std::string JournalReader::field(std::string_view name) {
  const void* data = nullptr;
  size_t len = 0;
  const std::string key(name);
  if (sd_journal_get_data(journal_, key.c_str(), &data, &len) < 0) return {};
  const std::string_view all(static_cast<const char*>(data), len);
  return std::string(all.substr(std::min(all.size(), name.size() + 1)));  // after "NAME="
}

Result<bool> JournalReader::read(const Line& line, const Forged& forged, size_t max) {
  (void)sd_journal_process(journal_);  // new files, rotation; clears the fd's wake-up
  for (size_t n = 0; n < max; ++n) {
    const int r = std::exchange(current_unread_, false) ? 1 : sd_journal_next(journal_);
    if (r < 0) return tl::unexpected(journal_error("sd_journal_next", where_of(options_), r));
    if (r == 0) return false;
    char* cursor = nullptr;
    if (sd_journal_get_cursor(journal_, &cursor) >= 0) {
      cursor_ = cursor;
      std::free(cursor);
      dirty_ = true;
    }
    uint64_t usec = 0;
    (void)sd_journal_get_realtime_usec(journal_, &usec);
    std::string message = field("MESSAGE");
    if (message.size() > kMaxMessage) message.resize(kMaxMessage);
    for (char& c : message)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
    // Trusted: set by journald from the sender's socket credentials.
    const uid_t uid = number_or<uid_t>(field("_UID"), static_cast<uid_t>(-1));
    const pid_t pid = number_or<pid_t>(field("_PID"), 0);
    if (uid != 0) {
      ++forged_;
      forged({uid, pid, field("_COMM"), field("_EXE"), std::move(message),
              static_cast<int64_t>(usec) * 1000});
      continue;
    }
    ++entries_;
    std::string host = field("_HOSTNAME");
    if (host.empty() || host.find_first_of(" \t") != std::string::npos) host = "-";
    line(fmt::format("{} {} sshd[{}]: {}", rfc3339(usec), host, pid, message));
  }
  return true;
}

Status JournalReader::save() {
  if (options_.cursor_path.empty() || !dirty_) return ok();
  const std::string text = cursor_ + "\n";
  auto st = fs::write_file_atomic(env_, options_.cursor_path, text, 0600);
  if (!st && st.error().errnum == ENOENT) {
    const auto slash = options_.cursor_path.rfind('/');
    MAMORI_TRY(fs::make_private_dirs(options_.cursor_path.substr(0, slash)));
    st = fs::write_file_atomic(env_, options_.cursor_path, text, 0600);
  }
  if (!st) return st;
  dirty_ = false;
  return ok();
}

}  // namespace mamori::logwatch
