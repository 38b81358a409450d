#include "agent/logwatch/tailer.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/fs/admin_files.h"

namespace mamori::logwatch {
namespace {

// No IN_EXCL_UNLINK: a log deleted under us is still written by its writer, and those
// writes are reported under its old name.
constexpr uint32_t kMask = IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_MODIFY |
                           IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
// Events that may change which file a name points to, or whether we may open it.
constexpr uint32_t kNameEvents = IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB;
// Events on an ancestor that may have made a missing directory appear.
constexpr uint32_t kAppearEvents =
    IN_CREATE | IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;
constexpr size_t kReadChunk = 256 << 10;
constexpr size_t kEventsBuf = 64 << 10;
constexpr int kMaxEventReads = 8;  // per read(): unrelated traffic must not hold us
constexpr size_t kMaxPositionsBytes = 4 << 20;

std::string parent_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

bool same_error(const std::optional<Error>& a, const std::optional<Error>& b) {
  if (!a || !b) return !a && !b;
  return a->op == b->op && a->path == b->path && a->errnum == b->errnum && a->detail == b->detail;
}

}  // namespace

struct Tailer::Probe {
  enum Kind { kMissing, kSame, kNew, kError } kind = kMissing;
  UniqueFd fd;
  struct stat st {};
  std::optional<Error> error;
  bool other_file = false;  // the path names something that is not the current stream's file
};

Tailer::Probe Tailer::probe(const std::string& path, const Stream* current) {
  Probe p;
  auto failed = [&](Error e) {
    p.kind = Probe::kError;
    p.error = std::move(e);
    return std::move(p);
  };
  if (::lstat(path.c_str(), &p.st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return p;
    return failed(Error{"stat", path, errno, {}});
  }
  p.other_file = !current || !current->at.same_file(p.st);
  if (S_ISLNK(p.st.st_mode))
    return failed(Error{"open", path, ELOOP, "a symbolic link: configure the file it points to"});
  if (!S_ISREG(p.st.st_mode)) return failed(Error{"open", path, EINVAL, "not a regular file"});
  if (!p.other_file) {
    p.kind = Probe::kSame;
    return p;
  }
  auto fd = fs::open_admin_read(path);
  if (!fd) {
    if (fd.error().errnum == ENOENT) return p;
    return failed(std::move(fd).error());
  }
  // What was opened is what counts: the name may have changed since the lstat().
  if (::fstat(fd->get(), &p.st) != 0) return failed(Error{"fstat", path, errno, {}});
  if (!S_ISREG(p.st.st_mode)) return failed(Error{"open", path, EINVAL, "not a regular file"});
  p.other_file = !current || !current->at.same_file(p.st);
  p.kind = p.other_file ? Probe::kNew : Probe::kSame;
  p.fd = std::move(*fd);
  return p;
}

Result<std::unique_ptr<Tailer>> Tailer::create(Env& env, TailerOptions options) {
  if (options.paths.size() > options.max_files)
    return fail(
        "logwatch", "", EINVAL,
        fmt::format("{} logs to follow, at most {}", options.paths.size(), options.max_files));
  if (options.max_line_bytes == 0) return fail("logwatch", "", EINVAL, "max_line_bytes is 0");
  std::set<std::string_view> seen;
  for (const auto& p : options.paths) {
    if (p.empty() || p.back() == '/') return fail("logwatch", p, EINVAL, "not a file's path");
    if (!seen.insert(p).second) return fail("logwatch", p, EINVAL, "named twice");
  }
  const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return fail_errno("inotify_init1", "");
  std::unique_ptr<Tailer> t(new Tailer(env, std::move(options), UniqueFd(fd)));
  t->load_positions();
  // Watches first, then the first look: a file created in between is then both found
  // and reported, never neither.
  for (size_t d = 0; d < t->dirs_.size(); ++d) t->attach(d);
  for (size_t f = 0; f < t->files_.size(); ++f) t->check_path(f);
  return t;
}

Tailer::Tailer(Env& env, TailerOptions options, UniqueFd inotify)
    : env_(env),
      options_(std::move(options)),
      inotify_(std::move(inotify)),
      buf_(kReadChunk),
      events_buf_(kEventsBuf) {
  for (const auto& path : options_.paths) {
    File f;
    f.path = path;
    const auto slash = path.rfind('/');
    f.name = slash == std::string::npos ? path : path.substr(slash + 1);
    const std::string dir = parent_of(path);
    auto it = std::find_if(dirs_.begin(), dirs_.end(), [&](const Dir& d) { return d.path == dir; });
    if (it == dirs_.end()) {
      it = dirs_.emplace(dirs_.end());
      it->path = dir;
    }
    f.dir = static_cast<size_t>(it - dirs_.begin());
    it->files.push_back(files_.size());
    files_.push_back(std::move(f));
  }
}

Tailer::~Tailer() = default;

void Tailer::load_positions() {
  if (options_.positions_path.empty()) return;
  auto report = [&](Error e) {
    if (options_.on_error) options_.on_error(kPositions, std::move(e));
  };
  auto text = fs::read_small_file(options_.positions_path, kMaxPositionsBytes);
  if (!text) {
    if (text.error().errnum != ENOENT) report(std::move(text).error());
    return;
  }
  const auto j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  const auto version = j.is_object() ? j.find("version") : j.end();
  const auto list = j.is_object() ? j.find("files") : j.end();
  if (version == j.end() || *version != 1 || list == j.end() || !list->is_array())
    return report(Error{"load positions", options_.positions_path, 0, "not a positions file"});
  for (const auto& e : *list) {
    if (!e.is_object()) continue;
    auto number = [&](const char* key) -> std::optional<uint64_t> {
      const auto it = e.find(key);
      if (it == e.end() || !it->is_number_unsigned()) return std::nullopt;
      return it->get<uint64_t>();
    };
    const auto path = e.find("path");
    const auto dev = number("dev"), ino = number("ino"), offset = number("offset"),
               tail_len = number("tail_len"), hash = number("tail_hash");
    if (path == e.end() || !path->is_string() || !dev || !ino || !offset || !tail_len || !hash ||
        *tail_len > fs::FileCursor::kTailBytes || *tail_len > *offset)
      continue;
    for (auto& f : files_) {
      if (f.path != path->get_ref<const std::string&>()) continue;
      f.saved = fs::FileCursor{*dev, *ino, *offset, static_cast<uint32_t>(*tail_len), *hash};
      f.committed = f.saved;
    }
  }
}

void Tailer::attach(size_t d) {
  Dir& dir = dirs_[d];
  dir.reattach = false;
  // A directory that does not exist yet: watch the closest ancestor that does, until
  // it appears.
  std::string target = dir.path;
  int wd;
  while ((wd = ::inotify_add_watch(inotify_.get(), target.c_str(), kMask)) < 0) {
    const int err = errno;
    if ((err == ENOENT || err == ENOTDIR) && target != "/" && target != ".") {
      target = parent_of(target);
      continue;
    }
    detach(d);
    for (const size_t f : dir.files) set_error(f, Error{"inotify_add_watch", target, err, {}});
    return;
  }
  if (wd != dir.wd) {
    detach(d);
    watches_[wd].push_back(d);
    dir.wd = wd;
  }
  dir.self = target == dir.path;
  if (dir.self) {
    for (const size_t f : dir.files) files_[f].check = files_[f].dirty = true;
  }
}

void Tailer::detach(size_t d) {
  Dir& dir = dirs_[d];
  if (dir.wd < 0) return;
  if (auto it = watches_.find(dir.wd); it != watches_.end()) {
    std::erase(it->second, d);
    if (it->second.empty()) {
      ::inotify_rm_watch(inotify_.get(), dir.wd);  // EINVAL if the kernel dropped it: fine
      watches_.erase(it);
    }
  }
  dir.wd = -1;
}

Result<bool> Tailer::read(const LineFn& on_line, size_t max_lines) {
  MAMORI_TRY(handle_events());
  size_t budget = max_lines;
  const size_t n = files_.size();
  for (size_t k = 0; k < n && budget > 0; ++k) {
    const size_t f = (next_file_ + k) % n;
    // Rotated files are looked at on every call, so they close once their time is up.
    const File& file = files_[f];
    if (file.dirty || file.streams.size() > (file.has_current ? 1u : 0u))
      read_file(f, on_line, budget);
  }
  if (n) next_file_ = (next_file_ + 1) % n;
  return std::any_of(files_.begin(), files_.end(), [](const File& f) { return f.dirty; });
}

Status Tailer::handle_events() {
  for (int reads = 0; reads < kMaxEventReads; ++reads) {
    const ssize_t n = ::read(inotify_.get(), events_buf_.data(), events_buf_.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      return fail_errno("read", "inotify");
    }
    for (size_t at = 0; at + sizeof(inotify_event) <= static_cast<size_t>(n);) {
      inotify_event ev;
      std::memcpy(&ev, events_buf_.data() + at, sizeof ev);
      const char* name = events_buf_.data() + at + sizeof ev;
      on_event(ev.wd, ev.mask, ev.len ? std::string_view(name, ::strnlen(name, ev.len)) : "");
      at += sizeof ev + ev.len;
    }
  }
  for (size_t d = 0; d < dirs_.size(); ++d) {
    if (dirs_[d].reattach) attach(d);
  }
  for (size_t f = 0; f < files_.size(); ++f) {
    if (files_[f].check) check_path(f);
  }
  return ok();
}

void Tailer::on_event(int wd, uint32_t mask, std::string_view name) {
  if (mask & IN_Q_OVERFLOW) {
    // Events were lost: look at everything again; what we hold tells what changed.
    ++stats_.overflows;
    for (auto& f : files_) f.check = f.dirty = true;
    return;
  }
  const auto it = watches_.find(wd);
  if (it == watches_.end()) return;
  if (mask & IN_IGNORED) {
    for (const size_t d : it->second) {
      dirs_[d].wd = -1;
      dirs_[d].reattach = true;
    }
    watches_.erase(it);
    return;
  }
  for (const size_t d : it->second) {
    Dir& dir = dirs_[d];
    if (!dir.self) {
      if (mask & kAppearEvents) dir.reattach = true;
      continue;
    }
    if (mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
      dir.reattach = true;
      continue;
    }
    for (const size_t f : dir.files) {
      File& file = files_[f];
      const bool ours = name.empty() || name == file.name;  // empty: the directory itself
      // A path in trouble is tried again on any news in its directory.
      if (file.error || (ours && (name.empty() || (mask & kNameEvents)))) file.check = true;
      if (ours) {
        if (mask & (IN_CREATE | IN_MOVED_TO)) file.created = true;
        file.dirty = true;
      } else if ((mask & (IN_MODIFY | IN_CLOSE_WRITE)) &&
                 file.streams.size() > (file.has_current ? 1u : 0u)) {
        file.dirty = true;  // perhaps one of its rotated files, under its new name
      }
    }
  }
}

void Tailer::check_path(size_t f) {
  File& file = files_[f];
  file.check = false;
  const Stream* current = file.has_current ? &file.streams.back() : nullptr;
  auto p = probe(file.path, current);
  if (p.kind == Probe::kError) {
    ++stats_.reopen_errors;
    set_error(f, std::move(p.error));
    if (current && p.other_file) demote_current(f);
    return;
  }
  set_error(f, std::nullopt);
  if (!file.started) return first_open(f, p);
  if (p.kind == Probe::kSame) return;
  if (current) demote_current(f);
  if (p.kind == Probe::kNew) push_stream(f, open_stream(p, 0), true);
}

void Tailer::first_open(size_t f, Probe& p) {
  File& file = files_[f];
  file.started = true;
  if (!file.saved) {
    // Never seen. What was there when we started is history (see the header), also if
    // it could only be opened later; a file created since is new.
    const bool history = !file.created && !options_.from_start;
    if (p.kind == Probe::kNew) push_stream(f, open_stream(p, history ? p.st.st_size : 0), true);
    return;
  }
  const fs::FileCursor saved = *file.saved;
  auto resume = [&](Probe& at) {
    Stream s = open_stream(at, 0);
    if (static_cast<uint64_t>(at.st.st_size) >= saved.offset &&
        fs::still_there(s.fd.get(), saved)) {
      s.at = saved;
      s.read_off = saved.offset;
    } else {
      ++stats_.truncations;
    }
    return s;
  };
  if (p.kind == Probe::kNew && saved.same_file(p.st)) return push_stream(f, resume(p), true);
  // Rotated while we were stopped: finish the old file (logrotate's PATH.1) first.
  Probe old;
  if (auto fd = fs::open_rotated(file.path, saved); fd.valid() && ::fstat(fd.get(), &old.st) == 0) {
    old.fd = std::move(fd);
    push_stream(f, resume(old), false);
    ++stats_.rotations;
  }
  if (p.kind == Probe::kNew) push_stream(f, open_stream(p, 0), true);
}

Tailer::Stream Tailer::open_stream(Probe& p, uint64_t offset) {
  Stream s;
  s.fd = std::move(p.fd);
  s.st = p.st;
  s.at = fs::cursor_after(p.st, 0, {});
  if (offset) {
    // The tail is read for the fingerprint; without it the cursor only checks the size.
    auto at = fs::cursor_at(s.fd.get(), p.st, offset);
    s.at = at ? *at : fs::cursor_after(p.st, offset, {});
  }
  s.read_off = offset;
  s.last_growth_ns = now_ns();
  return s;
}

void Tailer::push_stream(size_t f, Stream s, bool current) {
  File& file = files_[f];
  if (file.streams.size() >= kMaxStreamsPerPath) {
    // Rotated faster than read: the oldest file's unread rest is given up.
    Stream& oldest = file.streams.front();
    struct stat st {};
    if (!oldest.partial.empty() ||
        (::fstat(oldest.fd.get(), &st) == 0 && static_cast<uint64_t>(st.st_size) > oldest.read_off))
      ++stats_.unread_dropped;
    file.saved = oldest.at;
    file.streams.erase(file.streams.begin());
  }
  if (!file.committed) file.committed = s.at;
  file.streams.push_back(std::move(s));
  file.has_current = current;
  file.dirty = true;
}

void Tailer::demote_current(size_t f) {
  File& file = files_[f];
  file.has_current = false;
  file.streams.back().last_growth_ns = now_ns();
  file.dirty = true;
  ++stats_.rotations;
}

void Tailer::read_file(size_t f, const LineFn& on_line, size_t& budget) {
  File& file = files_[f];
  for (size_t i = 0; i < file.streams.size();) {
    if (!read_stream(f, file.streams[i], on_line, budget)) return;  // stays dirty
    const bool current = file.has_current && i + 1 == file.streams.size();
    if (!current && may_close(file, i)) {
      flush_partial(f, file.streams[i], on_line);
      file.saved = file.streams[i].at;
      file.streams.erase(file.streams.begin() + static_cast<ptrdiff_t>(i));
      continue;
    }
    ++i;
  }
  file.dirty = false;
}

bool Tailer::may_close(const File& file, size_t i) const {
  // Not before every writer has moved on: nginx's workers reopen their logs one by one,
  // so the old file may still get a line after the new one got its first.
  if (now_ns() - file.streams[i].last_growth_ns < options_.rotate_wait_ms * 1'000'000) return false;
  for (size_t k = i + 1; k < file.streams.size(); ++k) {
    struct stat st {};
    if (::fstat(file.streams[k].fd.get(), &st) == 0 && st.st_size > 0) return true;
  }
  return false;
}

bool Tailer::read_stream(size_t f, Stream& s, const LineFn& on_line, size_t& budget) {
  struct stat now {};
  if (::fstat(s.fd.get(), &now) != 0) return true;
  if (static_cast<uint64_t>(now.st_size) < s.read_off || !fs::still_there(s.fd.get(), s.at)) {
    // Truncated in place (copytruncate): what is there now is new.
    flush_partial(f, s, on_line);
    s.at = fs::cursor_after(s.st, 0, {});
    s.read_off = 0;
    s.skipping = false;
    s.progressed = true;
    ++stats_.truncations;
  }
  if (static_cast<uint64_t>(now.st_size) == s.read_off) return true;
  const size_t max = options_.max_line_bytes;
  while (true) {
    if (budget == 0) return false;
    const ssize_t n = ::pread(s.fd.get(), buf_.data(), buf_.size(), static_cast<off_t>(s.read_off));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return true;  // the end; an I/O error is tried again on the next event
    s.last_growth_ns = now_ns();
    const char* const begin = buf_.data();
    const char* const end = begin + n;
    const char* p = begin;
    const uint64_t base = s.read_off;
    const auto off = [&](const char* q) { return base + static_cast<uint64_t>(q - begin); };
    const bool at_end = static_cast<size_t>(n) < buf_.size();

    if (s.skipping) {
      const auto* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
      if (!nl) {
        s.read_off += static_cast<uint64_t>(n);
        if (at_end) return true;
        continue;
      }
      p = nl + 1;
      s.skipping = false;
      // The line's first max bytes, kept in `partial`, now that its end is known.
      deliver(f, s, s.partial, s.long_start, off(p), {begin, p}, false, true, on_line);
      --budget;
      s.partial.clear();
    }
    if (!s.partial.empty()) {
      const auto* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
      if (!nl) {
        if (s.partial.size() + static_cast<size_t>(end - p) > max) {
          // Bounded memory: the first max bytes are kept, the rest is skipped.
          ++stats_.too_long;
          s.long_start = base - s.partial.size();
          s.partial.append(p, max - s.partial.size());
          s.skipping = true;
        } else {
          s.partial.append(p, end);
        }
        s.read_off += static_cast<uint64_t>(n);
        if (at_end) return true;
        continue;
      }
      const char* next = nl + 1;
      if (s.partial.size() + static_cast<size_t>(nl - p) > max) {
        ++stats_.too_long;
        const uint64_t start = base - s.partial.size();
        s.partial.append(p, max - s.partial.size());
        deliver(f, s, s.partial, start, off(next), {begin, next}, false, true, on_line);
        --budget;
        s.partial.clear();
      } else {
        s.partial.append(p, next);
        const std::string_view line(s.partial.data(), s.partial.size() - 1);
        deliver(f, s, line, off(next) - s.partial.size(), off(next), s.partial, false, false,
                on_line);
        --budget;
        s.partial.clear();
      }
      p = next;
    }
    while (true) {
      if (budget == 0) {
        s.read_off = off(p);  // the rest is read again by the next call
        return false;
      }
      const auto* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
      if (!nl) break;
      const char* next = nl + 1;
      // The fingerprint may reach into the lines before: more bytes, surer.
      const std::string_view tail(
          std::max(begin, next - fs::FileCursor::kTailBytes),
          static_cast<size_t>(next - std::max(begin, next - fs::FileCursor::kTailBytes)));
      const bool cut = static_cast<size_t>(nl - p) > max;
      if (cut) ++stats_.too_long;
      deliver(f, s, {p, cut ? max : static_cast<size_t>(nl - p)}, off(p), off(next), tail, false,
              cut, on_line);
      --budget;
      p = next;
    }
    if (static_cast<size_t>(end - p) > max) {
      ++stats_.too_long;
      s.long_start = off(p);
      s.partial.assign(p, max);
      s.skipping = true;
    } else {
      s.partial.assign(p, end);
    }
    s.read_off = base + static_cast<uint64_t>(n);
    if (at_end) return true;
  }
}

void Tailer::deliver(size_t f, Stream& s, std::string_view line, uint64_t start, uint64_t end,
                     std::string_view tail, bool unterminated, bool truncated,
                     const LineFn& on_line) {
  const LinePos pos{start, fs::cursor_after(s.st, end, tail), unterminated, truncated};
  s.at = pos.next;
  s.progressed = true;
  ++stats_.lines;
  stats_.bytes += end - start;
  if (unterminated) ++stats_.truncated_tails;
  on_line(f, line, pos);
}

void Tailer::flush_partial(size_t f, Stream& s, const LineFn& on_line) {
  // Its '\n' will never come: the parser gets it marked, and counts it.
  if (s.partial.empty()) return;
  const std::string partial = std::move(s.partial);
  s.partial.clear();
  // Inside an over-long line: its kept start, from where that line began.
  const bool cut = std::exchange(s.skipping, false);
  deliver(f, s, partial, cut ? s.long_start : s.read_off - partial.size(), s.read_off,
          cut ? std::string_view() : std::string_view(partial), true, cut, on_line);
}

void Tailer::commit(size_t f, const LinePos& pos) { files_[f].committed = pos.next; }

std::optional<fs::FileCursor> Tailer::position(const File& f) const {
  if (!options_.commit_on_delivery) return f.committed;
  // The newest file that lines came from: an older one still open was read to its end
  // then, and saving its position would read the newer one again after a restart.
  for (auto it = f.streams.rbegin(); it != f.streams.rend(); ++it) {
    if (it->progressed) return it->at;
  }
  if (!f.streams.empty()) return f.streams.front().at;
  return f.saved;
}

Status Tailer::save() {
  if (options_.positions_path.empty()) return ok();
  nlohmann::json list = nlohmann::json::array();
  for (const auto& f : files_) {
    const auto pos = position(f);
    if (!pos) continue;
    list.push_back({{"path", f.path},
                    {"dev", pos->dev},
                    {"ino", pos->ino},
                    {"offset", pos->offset},
                    {"tail_len", pos->tail_len},
                    {"tail_hash", pos->tail_hash}});
  }
  const nlohmann::json doc = {{"version", 1}, {"files", std::move(list)}};
  // A path that is not UTF-8 is written with U+FFFD and so not resumed: no exception.
  std::string text = doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  if (text == last_saved_) return ok();
  auto st = fs::write_file_atomic(env_, options_.positions_path, text, 0600);
  if (!st && st.error().errnum == ENOENT) {
    MAMORI_TRY(fs::make_private_dirs(parent_of(options_.positions_path)));
    st = fs::write_file_atomic(env_, options_.positions_path, text, 0600);
  }
  if (!st) return st;
  last_saved_ = std::move(text);
  return ok();
}

void Tailer::set_error(size_t f, std::optional<Error> error) {
  File& file = files_[f];
  if (same_error(file.error, error)) return;
  file.error = std::move(error);
  if (options_.on_error) options_.on_error(f, file.error);
}

}  // namespace mamori::logwatch
