#include "core/outbox/cursor.h"

#include <dirent.h>

#include <cerrno>
#include <charconv>

#include <fmt/format.h>

#include "core/fs/admin_files.h"
#include "core/outbox/format.h"

namespace mamori::outbox {
namespace {

constexpr std::string_view kPrefix = "mamori-outbox-cursor 1 ";
constexpr std::string_view kSuffix = ".cursor";

std::optional<uint64_t> parse_u64(std::string_view s) {
  uint64_t v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

}  // namespace

bool valid_cursor_name(std::string_view name) {
  if (name.empty() || name.size() > 96 || name[0] == '.') return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

std::string cursor_path(const std::string& outbox_dir, std::string_view name) {
  return outbox_dir + "/cursors/" + std::string(name) + std::string(kSuffix);
}

std::string encode_cursor(uint64_t next) {
  const std::string n = std::to_string(next);
  return fmt::format("{}{} {}\n", kPrefix, n, crc32c(0, n));
}

std::optional<uint64_t> decode_cursor(std::string_view text) {
  if (!text.starts_with(kPrefix) || !text.ends_with('\n')) return std::nullopt;
  text.remove_prefix(kPrefix.size());
  text.remove_suffix(1);
  const auto space = text.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  const auto next = parse_u64(text.substr(0, space));
  const auto crc = parse_u64(text.substr(space + 1));
  if (!next || !crc || crc32c(0, text.substr(0, space)) != *crc) return std::nullopt;
  return next;
}

Status save_cursor(Env& env, const std::string& outbox_dir, std::string_view name, uint64_t next) {
  if (!valid_cursor_name(name)) return fail("save cursor", std::string(name), EINVAL);
  const std::string path = cursor_path(outbox_dir, name);
  auto st = fs::write_file_atomic(env, path, encode_cursor(next), 0600);
  if (!st && st.error().errnum == ENOENT) {
    MAMORI_TRY(fs::make_private_dirs(outbox_dir + "/cursors"));
    st = fs::write_file_atomic(env, path, encode_cursor(next), 0600);
  }
  return st;
}

Result<std::optional<uint64_t>> load_cursor(const std::string& outbox_dir, std::string_view name) {
  const std::string path = cursor_path(outbox_dir, name);
  auto text = fs::read_small_file(path, 256);
  if (!text) {
    if (text.error().errnum == ENOENT) return std::optional<uint64_t>();
    return tl::unexpected(std::move(text).error());
  }
  const auto next = decode_cursor(*text);
  if (!next) return fail("read cursor", path, EBADMSG, "damaged cursor file");
  return std::optional<uint64_t>(*next);
}

Status remove_cursor(const std::string& outbox_dir, std::string_view name) {
  return fs::remove_file(cursor_path(outbox_dir, name));
}

Result<std::vector<CursorEntry>> list_cursors(const std::string& outbox_dir) {
  std::vector<CursorEntry> out;
  const std::string dir = outbox_dir + "/cursors";
  auto fd = fs::open_admin_read(dir);
  if (!fd) {
    if (fd.error().errnum == ENOENT) return out;
    return tl::unexpected(std::move(fd).error());
  }
  DIR* d = ::fdopendir(fd->get());
  if (!d) return fail_errno("opendir", dir);
  (void)fd->release();
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (!n.ends_with(kSuffix)) continue;
    n.remove_suffix(kSuffix.size());
    if (valid_cursor_name(n)) names.emplace_back(n);
  }
  ::closedir(d);
  for (auto& n : names) {
    auto c = load_cursor(outbox_dir, n);
    if (c && !*c) continue;  // removed meanwhile
    out.push_back({std::move(n), c ? **c : std::optional<uint64_t>()});
  }
  return out;
}

}  // namespace mamori::outbox
