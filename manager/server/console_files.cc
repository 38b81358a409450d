#include "manager/server/console_files.h"

#include <fcntl.h>

#include <optional>

#include <fmt/format.h>

#include "core/fs/beneath.h"
#include "core/fs/walk.h"
#include "core/hash/sha256.h"

namespace mamori::manager {
namespace {

std::string_view content_type_of(std::string_view path) {
  static const std::pair<std::string_view, std::string_view> kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".woff2", "font/woff2"},
      {".json", "application/json"},
      {".txt", "text/plain; charset=utf-8"},
  };
  for (const auto& [suffix, type] : kTypes)
    if (path.ends_with(suffix)) return type;
  return "application/octet-stream";
}

}  // namespace

Result<ConsoleFiles> ConsoleFiles::load(const std::string& dir) {
  const UniqueFd root = MAMORI_TRY(fs::open_root(dir));
  ConsoleFiles out;
  size_t bytes = 0;
  std::optional<Error> problem;
  auto walked = fs::walk(
      root.get(), "", {},
      [&](fs::WalkEntry&& e) {
        if (problem || !S_ISREG(e.st.st_mode)) return;
        if (out.files_.size() >= kMaxConsoleFiles) {
          problem = Error{"load the console", dir, 0,
                          fmt::format("more than {} files", kMaxConsoleFiles)};
          return;
        }
        auto fd = fs::open_beneath(root.get(), e.path, O_RDONLY | O_NONBLOCK);
        if (!fd) {
          problem = fd.error();
          return;
        }
        auto body = fs::read_fd(fd->get(), kMaxConsoleBytes - bytes, dir + "/" + e.path);
        if (!body) {
          problem = body.error();
          return;
        }
        bytes += body->size();
        ConsoleFile f;
        f.etag = "\"" + hash::sha256(*body).hex().substr(0, 16) + "\"";
        f.content_type = content_type_of(e.path);
        f.immutable = e.path.starts_with("assets/");
        f.body = std::move(*body);
        out.files_.emplace(std::move(e.path), std::move(f));
      },
      [&](Error&& e) {
        if (!problem) problem = std::move(e);
      });
  if (!walked) return tl::unexpected(walked.error());
  if (problem) return tl::unexpected(*problem);
  if (!out.files_.contains("index.html"))
    return fail_msg("load the console", dir, "it has no index.html (build the console target)");
  return out;
}

const ConsoleFile* ConsoleFiles::find(std::string_view path) const {
  if (!path.starts_with('/')) return nullptr;
  path.remove_prefix(1);
  if (auto it = files_.find(path); it != files_.end()) return &it->second;
  // A page's path is letters, digits, '-', '_' and '/' (its ids are hex): anything else
  // (a dot, '%', a stray "..") is a file that was not loaded.
  if (path.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_/") !=
      std::string_view::npos)
    return nullptr;
  return &files_.find("index.html")->second;
}

const std::vector<std::pair<std::string_view, std::string_view>>& console_security_headers() {
  static const std::vector<std::pair<std::string_view, std::string_view>> kHeaders = {
      {"Content-Security-Policy",
       "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'"},
      {"X-Content-Type-Options", "nosniff"},
      {"X-Frame-Options", "DENY"},
      {"Referrer-Policy", "no-referrer"},
      {"Cross-Origin-Opener-Policy", "same-origin"},
      {"Cross-Origin-Resource-Policy", "same-origin"},
      {"Permissions-Policy", "camera=(), microphone=(), geolocation=(), usb=()"},
  };
  return kHeaders;
}

}  // namespace mamori::manager
