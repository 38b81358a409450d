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

constexpr std::string_view kTokenPrefix = "mamori-token-v1.";
constexpr size_t kMaxTokenFile = 4096;
constexpr size_t kMaxCredentialsFile = 16 * 1024;

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

bool all_base64url(std::string_view s) {
  for (char c : s)
    if (sextet(c) < 0) return false;
  return true;
}

// The string field `key` of `j`, non-empty; the error names the field.
Result<std::string> field(const nlohmann::json& j, const char* key, std::string_view what) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string() || it->get_ref<const std::string&>().empty())
    return fail_msg(std::string(what), "", fmt::format("\"{}\" is missing or not a string", key));
  return it->get<std::string>();
}

}  // namespace

std::optional<std::string> base64url_decode(std::string_view in) {
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = sextet(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  // Leftover bits must be zero: one text per byte string.
  if (bits && (acc & ((1u << bits) - 1))) return std::nullopt;
  return out;
}

std::string base64url_encode(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 63]);
    }
  }
  if (bits) out.push_back(kAlphabet[(acc << (6 - bits)) & 63]);
  return out;
}

bool is_fingerprint(std::string_view fp) {
  if (fp.size() != 64) return false;
  for (char c : fp)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

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
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
    text.remove_prefix(1);
  if (!text.starts_with(kTokenPrefix))
    return fail_msg("token", "", "does not start with mamori-token-v1. (not a mamori token?)");
  const auto json_text = base64url_decode(text.substr(kTokenPrefix.size()));
  if (!json_text) return fail_msg("token", "", "is not base64url after mamori-token-v1.");
  const auto j = nlohmann::json::parse(*json_text, nullptr, false);
  if (!j.is_object()) return fail_msg("token", "", "does not hold a JSON object");
  Token t;
  t.url = MAMORI_TRY(field(j, "url", "token"));
  t.fp = MAMORI_TRY(field(j, "fp", "token"));
  t.secret = MAMORI_TRY(field(j, "secret", "token"));
  MAMORI_TRY(parse_url(t.url));
  if (!is_fingerprint(t.fp)) return fail_msg("token", "", "\"fp\" is not a lower-case hex SHA-256");
  if (t.secret.size() != 43 || !all_base64url(t.secret))
    return fail_msg("token", "", "\"secret\" is not 43 characters of base64url");
  return t;
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
  if (!parse_url(c.url) || !is_fingerprint(c.fp) || c.agent_key.find(':') != std::string::npos)
    return fail("manager credentials", path, EBADMSG, "a field has a bad value");
  return std::optional<Credentials>(std::move(c));
}

Status save_credentials(Env& env, const std::string& path, const Credentials& c) {
  const nlohmann::json j = {
      {"url", c.url}, {"fp", c.fp}, {"agent_key", c.agent_key}, {"credential", c.credential}};
  return fs::write_file_atomic(env, path, j.dump() + "\n", 0600);
}

}  // namespace mamori::link
