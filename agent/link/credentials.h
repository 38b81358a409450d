#pragma once
// What the agent keeps to reach its manager (docs/manager.md, docs/formats/manager-channel.md):
//   - the enrollment token, a file the administrator writes (config manager.token_file):
//     `mamori-token-v1.` + base64url (no padding) of {"url","fp","secret"};
//   - the credential the manager gave at enrollment, STATE/manager.json (0600, replaced
//     atomically): {"url","fp","agent_key","credential"}.
// Both are secrets: the token lets anyone enroll an agent in its group, the credential
// lets anyone speak as this agent. Neither is ever logged.
//
// Threads: plain functions, no state.

#include <optional>
#include <string>
#include <string_view>

#include "core/base/env.h"
#include "core/base/result.h"
#include "core/proto/channel.h"

namespace mamori::link {

// The manager's address, split from "https://HOST:PORT" (HOST may be "[v6]").
struct Endpoint {
  std::string host;  // without brackets
  std::string port;  // default 443
};
// Only https, no user info, no path but "/", no query: the token and the config carry
// nothing else.
Result<Endpoint> parse_url(std::string_view url);

using Token = proto::channel::Token;
// The codec's decode_token (core/proto/channel.h) plus a URL this link can use. Errors
// name what is wrong (prefix, encoding, JSON, a field) and never quote the secret.
Result<Token> decode_token(std::string_view text);

// Reads and decodes the token file (its first line). Refuses a file that is not a regular file, or
// that someone other than root (or the agent's user) could have written: whoever can write it
// chooses the manager this agent trusts. A file others may read is used, and
// `warning` says so (the token is a secret; 0600 is expected).
Result<Token> read_token_file(const std::string& path, std::string& warning);

struct Credentials {
  std::string url;
  std::string fp;
  std::string agent_key;
  std::string credential;
};
inline std::string credentials_path(const std::string& state_dir) {
  return state_dir + "/manager.json";
}
// nullopt: no file (not enrolled). A file that does not parse is an error (EBADMSG): the
// caller decides (the link enrolls again when it has a token).
Result<std::optional<Credentials>> load_credentials(const std::string& path);
// Written 0600 atomically (fs::write_file_atomic): a crash leaves the old file or the new.
Status save_credentials(Env& env, const std::string& path, const Credentials& c);

}  // namespace mamori::link
