#pragma once
// The client's first bytes (its version line and its SSH_MSG_KEXINIT, both sent before
// any encryption, RFC 4253 4.2 and 7.1) read without consuming them, for what libssh does
// not expose: the algorithms the client offered and its HASSH
// (md5("kex;ciphers;macs;compression"), client to server lists; salesforce/hassh), the
// fingerprint that names a client's SSH stack whatever version text it sends.
//
// Pure: bytes in, a verdict out. The server peeks (recv MSG_PEEK) into a bounded buffer
// and asks again with more bytes while the verdict is kNeedMore.

#include <cstddef>
#include <string>
#include <string_view>

namespace mamori::honeypot {

struct ClientHello {
  std::string version;  // "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3" without CR LF; "" if unseen
  std::string kex, host_keys, ciphers, macs, compression;  // client to server lists
  std::string hassh;                                       // 32 hex digits
  std::string hassh_algorithms;                            // what was hashed
};

enum class HelloStatus {
  kNeedMore,  // not all there yet: `need` says how many bytes in total to wait for
  kDone,
  kInvalid,  // not an SSH client's start (or past the limits below): give up on HASSH
};

struct HelloParse {
  HelloStatus status = HelloStatus::kNeedMore;
  size_t need = 0;  // kNeedMore: total bytes wanted from the start of `data` (at least +1)
  ClientHello hello;
};

// The longest version line (RFC 4253: 255 with CR LF) and KEXINIT packet accepted.
inline constexpr size_t kMaxVersionLine = 255;
inline constexpr size_t kMaxKexinitPacket = 16384;

// `data` starts where the client's bytes start, or just after its version line when
// libssh already took that (then `version` stays empty).
HelloParse parse_client_hello(std::string_view data);

// HASSH of the four lists.
std::string hassh_of(std::string_view kex, std::string_view ciphers, std::string_view macs,
                     std::string_view compression);

}  // namespace mamori::honeypot
