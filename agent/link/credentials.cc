#include "agent/link/credentials.h"

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cctype>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/fs/admin_files.h"

namespace mamori::link {
namespace {

constexpr size_t kMaxTokenFile = 4096;
constexpr size_t kMaxCredentialsFile = 16 * 1024;

// The string field `key` of `j`, non-empty; the error names the field.
Result<std::string> field(const nlohmann::json& j, const char* key, std::string_view what) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string() || it->get_ref<const std::string&>().empty())
    return fail_msg(std::string(what), "", fmt::format("\"{}\" is missing or not a string", key));
  return it->get<std::string>();
}

}  // namespace

Result<Endpoint> parse_url(std::string_view url) {
  constexpr std::string_view kScheme = "https://";
  const std::string u(url);
  if (!url.starts_with(kScheme)) return fail_msg("manager url", u, "must start with https://");
  std::string_view rest = url.substr(kScheme.size());
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    if (rest.substr(slash) != "/") return fail_msg("manager url", u, "must have no path");
    rest = rest.substr(0, slash);
  }
  if (rest.find_first_of("@?#") != std::string_view::npos)
    return fail_msg("manager url", u, "must have no user, query or fragment");
  Endpoint e;
  std::string_view port;
  if (rest.starts_with('[')) {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) return fail_msg("manager url", u, "unclosed '['");
    e.host = std::string(rest.substr(1, close - 1));
    rest = rest.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return fail_msg("manager url", u, "expected ':PORT' after ']'");
      port = rest.substr(1);
    }
  } else {
    const auto colon = rest.rfind(':');
    e.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) port = rest.substr(colon + 1);
  }
  if (e.host.empty()) return fail_msg("manager url", u, "has no host");
  for (char c : e.host)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':'))
      return fail_msg("manager url", u, "the host has a character a host name cannot have");
  if (port.empty()) {
    e.port = "443";
  } else {
    unsigned n = 0;
    for (char c : port) {
      if (c < '0' || c > '9' || (n = n * 10 + static_cast<unsigned>(c - '0')) > 65535)
        return fail_msg("manager url", u, "bad port");
    }
    if (n == 0) return fail_msg("manager url", u, "bad port");
    e.port = std::string(port);
  }
  return e;
}

Result<Token> decode_token(std::string_view text) {
  auto t = proto::channel::decode_token(text);
  if (!t) return fail_msg("token", "", t.error().message);
  MAMORI_TRY(parse_url(t->url));
  return std::move(*t);
}

Result<Token> read_token_file(const std::string& path, std::string& warning) {
  warning.clear();
  auto fd = MAMORI_TRY(fs::open_admin_read(path));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail_errno("fstat", path);
  if (!S_ISREG(st.st_mode)) return fail_msg("token file", path, "is not a regular file");
  if (st.st_uid != 0 && st.st_uid != ::geteuid())
    return fail_msg("token file", path,
                    "is owned by another user, who chooses the manager this agent trusts: "
                    "chown root and chmod 0600 it");
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    return fail_msg("token file", path,
                    "is writable by group or others, who could point this agent at a manager "
                    "of theirs: chmod 0600 it");
  if (st.st_mode & (S_IRGRP | S_IROTH))
    warning = fmt::format(
        "token file {} may be read by group or others (mode {:04o}): "
        "it is a secret, chmod 0600 it",
        path, static_cast<unsigned>(st.st_mode & 07777));
  std::string text(kMaxTokenFile + 1, '\0');
  size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("read", path);
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > kMaxTokenFile) return fail("token file", path, EFBIG);
  text.resize(got);
  if (const auto nl = text.find('\n'); nl != std::string::npos) text.resize(nl);
  auto t = decode_token(text);
  if (!t) {
    Error e = std::move(t).error();
    e.path = path;
    return tl::unexpected(std::move(e));
  }
  return t;
}

Result<std::optional<Credentials>> load_credentials(const std::string& path) {
  auto text = fs::read_small_file(path, kMaxCredentialsFile);
  if (!text) {
    if (text.error().errnum == ENOENT) return std::optional<Credentials>{};
    return tl::unexpected(std::move(text).error());
  }
  const auto j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object()) return fail("manager credentials", path, EBADMSG, "not a JSON object");
  Credentials c;
  auto get = [&](const char* k, std::string& out) -> Status {
    auto v = field(j, k, "manager credentials");
    if (!v) return fail("manager credentials", path, EBADMSG, v.error().detail);
    out = std::move(*v);
    return ok();
  };
  MAMORI_TRY(get("url", c.url));
  MAMORI_TRY(get("fp", c.fp));
  MAMORI_TRY(get("agent_key", c.agent_key));
  MAMORI_TRY(get("credential", c.credential));
  if (!parse_url(c.url) || !proto::channel::is_fingerprint(c.fp) ||
      c.agent_key.find(':') != std::string::npos)
    return fail("manager credentials", path, EBADMSG, "a field has a bad value");
  return std::optional<Credentials>(std::move(c));
}

Status save_credentials(Env& env, const std::string& path, const Credentials& c) {
  const nlohmann::json j = {
      {"url", c.url}, {"fp", c.fp}, {"agent_key", c.agent_key}, {"credential", c.credential}};
  return fs::write_file_atomic(env, path, j.dump() + "\n", 0600);
}

}  // namespace mamori::link
