#include "honeypot/kexinit.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace mamori::honeypot {
namespace {

void put32(std::string& s, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>((v >> shift) & 0xff));
}

// A client KEXINIT packet as it goes on the wire before encryption.
std::string kexinit_packet(const std::vector<std::string>& lists) {
  std::string payload;
  payload.push_back(20);
  payload.append(16, 'c');  // cookie
  for (const auto& l : lists) {
    put32(payload, static_cast<uint32_t>(l.size()));
    payload += l;
  }
  payload.push_back(0);  // first_kex_packet_follows
  put32(payload, 0);
  const size_t padding = 8 - (payload.size() + 5) % 8 + 4;
  std::string packet;
  put32(packet, static_cast<uint32_t>(1 + payload.size() + padding));
  packet.push_back(static_cast<char>(padding));
  packet += payload;
  packet.append(padding, '\0');
  return packet;
}

const std::vector<std::string> kLists = {"curve25519-sha256,ext-info-c",
                                         "ssh-ed25519",
                                         "aes128-ctr",
                                         "aes256-ctr",
                                         "hmac-sha2-256",
                                         "hmac-sha2-512",
                                         "none",
                                         "zlib",
                                         "",
                                         ""};

TEST(ClientHello, VersionLineAndKexinitGiveTheHassh) {
  const std::string wire = "SSH-2.0-Go\r\n" + kexinit_packet(kLists);
  const auto r = parse_client_hello(wire);
  ASSERT_EQ(r.status, HelloStatus::kDone);
  EXPECT_EQ(r.hello.version, "SSH-2.0-Go");
  EXPECT_EQ(r.hello.kex, "curve25519-sha256,ext-info-c");
  EXPECT_EQ(r.hello.host_keys, "ssh-ed25519");
  EXPECT_EQ(r.hello.ciphers, "aes128-ctr");  // client to server only
  EXPECT_EQ(r.hello.macs, "hmac-sha2-256");
  EXPECT_EQ(r.hello.compression, "none");
  EXPECT_EQ(r.hello.hassh_algorithms, "curve25519-sha256,ext-info-c;aes128-ctr;hmac-sha2-256;none");
  // md5 of that text, computed independently (Python hashlib).
  EXPECT_EQ(r.hello.hassh, "cafb69eb1dbb2a4a505b5b25342a4940");
}

TEST(ClientHello, KexinitAloneWhenLibsshTookTheVersionLine) {
  const auto r = parse_client_hello(kexinit_packet(kLists));
  ASSERT_EQ(r.status, HelloStatus::kDone);
  EXPECT_EQ(r.hello.version, "");
  EXPECT_EQ(r.hello.hassh, "cafb69eb1dbb2a4a505b5b25342a4940");
}

// Every prefix asks for more, naming a size past what it has, never past the whole.
TEST(ClientHello, PrefixesNeedMore) {
  const std::string wire = "SSH-2.0-OpenSSH_9.2p1\r\n" + kexinit_packet(kLists);
  for (size_t n = 0; n < wire.size(); ++n) {
    const auto r = parse_client_hello(std::string_view(wire).substr(0, n));
    ASSERT_EQ(r.status, HelloStatus::kNeedMore) << n;
    EXPECT_GT(r.need, n) << n;
    EXPECT_LE(r.need, wire.size()) << n;
  }
}

std::string corpus(const char* name) {
  std::ifstream in(std::string(MAMORI_SOURCE_DIR) + "/fuzz/corpus/honeypot/" + name,
                   std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// What Debian 12's ssh and paramiko really send first (captured into the fuzz corpus).
TEST(ClientHello, RealClients) {
  const auto openssh = parse_client_hello(corpus("openssh_client_hello"));
  ASSERT_EQ(openssh.status, HelloStatus::kDone);
  EXPECT_TRUE(openssh.hello.version.starts_with("SSH-2.0-OpenSSH_9.2p1"));
  EXPECT_NE(openssh.hello.kex.find("curve25519-sha256"), std::string::npos);
  EXPECT_EQ(openssh.hello.hassh, hassh_of(openssh.hello.kex, openssh.hello.ciphers,
                                          openssh.hello.macs, openssh.hello.compression));
  const auto paramiko = parse_client_hello(corpus("paramiko_client_hello"));
  ASSERT_EQ(paramiko.status, HelloStatus::kDone);
  EXPECT_TRUE(paramiko.hello.version.starts_with("SSH-2.0-paramiko_"));
  EXPECT_NE(paramiko.hello.hassh, openssh.hello.hassh);
}

TEST(ClientHello, GarbageAndOversizeAreInvalid) {
  EXPECT_EQ(parse_client_hello("GET / HTTP/1.1\r\n\r\n").status, HelloStatus::kInvalid);
  EXPECT_EQ(parse_client_hello("SSH-2.0-" + std::string(300, 'x')).status, HelloStatus::kInvalid);
  std::string huge = "SSH-2.0-x\r\n";
  put32(huge, 1 << 20);
  huge += std::string("\x04\x14", 2);
  EXPECT_EQ(parse_client_hello(huge).status, HelloStatus::kInvalid);
  // Not a KEXINIT (message 21) and a name-list that runs past its packet.
  std::string other = kexinit_packet(kLists);
  other[5] = 21;
  EXPECT_EQ(parse_client_hello(other).status, HelloStatus::kInvalid);
  std::string cut = kexinit_packet(kLists);
  cut[5 + 17 + 3] = 127;  // the first list claims 127 bytes more than the packet has
  EXPECT_EQ(parse_client_hello(cut).status, HelloStatus::kInvalid);
}

}  // namespace
}  // namespace mamori::honeypot
