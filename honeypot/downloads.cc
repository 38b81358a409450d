#include "honeypot/downloads.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "core/fs/admin_files.h"
#include "core/hash/sha256.h"

namespace mamori::honeypot {
namespace {

constexpr int64_t kHourNs = 3600'000'000'000;
constexpr std::string_view kTempPrefix = "tmp-";

struct Net4 {
  uint32_t net;
  int bits;
};
// Not public (RFC 6890 and friends): this host, private networks, CGNAT, loopback,
// link-local (cloud metadata at 169.254.169.254), IETF protocol assignments, the
// documentation and benchmark nets, multicast, reserved and broadcast.
constexpr std::array<Net4, 15> kNotPublic4 = {{
    {0x00000000, 8},
    {0x0a000000, 8},
    {0x64400000, 10},
    {0x7f000000, 8},
    {0xa9fe0000, 16},
    {0xac100000, 12},
    {0xc0000000, 24},
    {0xc0000200, 24},
    {0xc0a80000, 16},
    {0xc6120000, 15},
    {0xc6336400, 24},
    {0xcb007100, 24},
    {0xe0000000, 4},
    {0xf0000000, 4},
    {0xffffffff, 32},
}};

bool public4(uint32_t a) {
  for (const auto& n : kNotPublic4) {
    const uint32_t mask = n.bits == 0 ? 0 : ~uint32_t{0} << (32 - n.bits);
    if ((a & mask) == n.net) return false;
  }
  return true;
}

bool public6(const in6_addr& a) {
  const uint8_t* b = a.s6_addr;
  if (IN6_IS_ADDR_V4MAPPED(&a) || IN6_IS_ADDR_V4COMPAT(&a)) {
    uint32_t v4;
    std::memcpy(&v4, b + 12, 4);
    return IN6_IS_ADDR_V4MAPPED(&a) ? public4(ntohl(v4)) : false;
  }
  // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits.
  static constexpr uint8_t kNat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  if (std::memcmp(b, kNat64, 12) == 0) {
    uint32_t v4;
    std::memcpy(&v4, b + 12, 4);
    return public4(ntohl(v4));
  }
  if (IN6_IS_ADDR_UNSPECIFIED(&a) || IN6_IS_ADDR_LOOPBACK(&a)) return false;
  if ((b[0] & 0xfe) == 0xfc) return false;                  // fc00::/7 unique local
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return false;  // fe80::/10 link-local
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return false;  // fec0::/10 site-local
  if (b[0] == 0xff) return false;                           // multicast
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) return false;  // docs
  if (b[0] == 0x20 && b[1] == 0x02) return false;  // 6to4: an IPv4 address inside
  return true;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

}  // namespace

bool public_address(const sockaddr* sa, socklen_t len) {
  if (sa == nullptr) return false;
  if (sa->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in)))
    return public4(ntohl(reinterpret_cast<const sockaddr_in*>(sa)->sin_addr.s_addr));
  if (sa->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6)))
    return public6(reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr);
  return false;  // no other family is fetched from
}

std::string_view url_refusal(std::string_view url, bool allow_private) {
  const size_t colon = url.find("://");
  if (colon == std::string_view::npos) return kPolicyScheme;
  const std::string scheme = lower(url.substr(0, colon));
  if (scheme != "http" && scheme != "https") return kPolicyScheme;
  if (allow_private) return {};
  // A literal address is refused here, before a process is started; a name is checked
  // at every connect the fetch makes (fetch.cc), so DNS cannot point it inside.
  std::string_view host = url.substr(colon + 3);
  host = host.substr(0, host.find_first_of("/?#"));
  if (const size_t at = host.rfind('@'); at != std::string_view::npos) host.remove_prefix(at + 1);
  std::string h;
  if (host.starts_with('[')) {
    h = std::string(host.substr(
        1, host.find(']') == std::string_view::npos ? host.size() - 1 : host.find(']') - 1));
    sockaddr_in6 a6{};
    a6.sin6_family = AF_INET6;
    if (inet_pton(AF_INET6, h.c_str(), &a6.sin6_addr) != 1) return kPolicyAddress;
    return public_address(reinterpret_cast<sockaddr*>(&a6), sizeof(a6)) ? "" : kPolicyAddress;
  }
  h = lower(host.substr(0, host.find(':')));
  if (h.empty() || h == "localhost" || h.ends_with(".localhost")) return kPolicyAddress;
  sockaddr_in a4{};
  a4.sin_family = AF_INET;
  // inet_aton takes what curl's resolver does too: "127.1", "0x7f.1", "2130706433".
  if (inet_aton(h.c_str(), &a4.sin_addr) == 1)
    return public_address(reinterpret_cast<sockaddr*>(&a4), sizeof(a4)) ? "" : kPolicyAddress;
  return {};
}

std::string_view FetchBudget::start(uint32_t& session_count, int64_t mono_ns) {
  while (!started_.empty() && mono_ns - started_.front() >= kHourNs) started_.pop_front();
  if (session_count >= d_.per_session) return kPolicyPerSession;
  if (started_.size() >= d_.per_hour) return kPolicyPerHour;
  if (running_ >= d_.concurrent) return kPolicyConcurrent;
  ++session_count;
  started_.push_back(mono_ns);
  ++running_;
  return {};
}

bool sha256_name(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

Result<DownloadStore> DownloadStore::open(const std::string& dir, uint64_t quota_bytes) {
  // Never through a symlink: the directory is the honeypot's own.
  auto fd = MAMORI_TRY(fs::open_admin_read(dir));
  struct stat dst {};
  if (fstat(fd.get(), &dst) != 0) return fail_errno("fstat", dir);
  if (!S_ISDIR(dst.st_mode)) return fail("open", dir, ENOTDIR);
  DownloadStore s(dir, std::move(fd), quota_bytes);
  const int list_fd = ::dup(s.fd_.get());
  if (list_fd < 0) return fail_errno("dup", dir);
  DIR* d = fdopendir(list_fd);
  if (d == nullptr) {
    ::close(list_fd);
    return fail_errno("fdopendir", dir);
  }
  std::vector<std::string> temps;
  while (const dirent* e = readdir(d)) {
    const std::string_view name = e->d_name;
    if (name.starts_with(kTempPrefix)) {
      temps.emplace_back(name);
      continue;
    }
    if (!sha256_name(name)) continue;  // not ours: left alone, not counted
    struct stat st {};
    if (fstatat(s.fd_.get(), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
      continue;
    s.files_.push_back({std::string(name), static_cast<uint64_t>(st.st_size),
                        int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec});
    s.bytes_ += static_cast<uint64_t>(st.st_size);
  }
  closedir(d);
  // A fetch cut short by a crash or a stop: never a whole file.
  for (const auto& t : temps) unlinkat(s.fd_.get(), t.c_str(), 0);
  std::stable_sort(s.files_.begin(), s.files_.end(),
                   [](const File& a, const File& b) { return a.stored_ns < b.stored_ns; });
  return s;
}

bool DownloadStore::has(std::string_view sha256) const {
  return std::any_of(files_.begin(), files_.end(),
                     [&](const File& f) { return f.sha256 == sha256; });
}

Result<DownloadStore::Stored> DownloadStore::store(std::string_view content, int64_t now_ns) {
  Stored out;
  out.sha256 = hash::sha256(content).hex();
  const auto known = std::find_if(files_.begin(), files_.end(),
                                  [&](const File& f) { return f.sha256 == out.sha256; });
  if (known != files_.end()) {
    // Stored once; captured again now, so it is the newest (the last to be pruned).
    out.existed = true;
    File f = *known;
    files_.erase(known);
    f.stored_ns = now_ns;
    files_.push_back(f);
    const timespec times[2] = {{now_ns / 1'000'000'000, now_ns % 1'000'000'000},
                               {now_ns / 1'000'000'000, now_ns % 1'000'000'000}};
    utimensat(fd_.get(), f.sha256.c_str(), times, AT_SYMLINK_NOFOLLOW);
    return out;
  }
  const std::string temp = std::string(kTempPrefix) + out.sha256;
  UniqueFd f(
      openat(fd_.get(), temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!f.valid()) return fail_errno("open", dir_ + "/" + temp);
  for (size_t off = 0; off < content.size();) {
    const ssize_t n = ::write(f.get(), content.data() + off, content.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      unlinkat(fd_.get(), temp.c_str(), 0);
      return fail("write", dir_ + "/" + temp, err);
    }
    off += static_cast<size_t>(n);
  }
  // Its mtime is the time it was stored: open() orders by it after a restart.
  const timespec times[2] = {{now_ns / 1'000'000'000, now_ns % 1'000'000'000},
                             {now_ns / 1'000'000'000, now_ns % 1'000'000'000}};
  futimens(f.get(), times);
  f.reset();
  if (renameat(fd_.get(), temp.c_str(), fd_.get(), out.sha256.c_str()) != 0) {
    const int err = errno;
    unlinkat(fd_.get(), temp.c_str(), 0);
    return fail("rename", dir_ + "/" + out.sha256, err);
  }
  files_.push_back({out.sha256, content.size(), now_ns});
  bytes_ += content.size();
  prune(out.sha256, out.pruned);
  return out;
}

void DownloadStore::prune(std::string_view keep, std::vector<Pruned>& out) {
  while (bytes_ > quota_ && !files_.empty()) {
    auto oldest = files_.begin();
    if (oldest->sha256 == keep) break;  // the quota holds max_kb (config): never reached
    // Gone already (removed by hand) counts as pruned too: the total is ours to keep.
    unlinkat(fd_.get(), oldest->sha256.c_str(), 0);
    bytes_ -= std::min(bytes_, oldest->size);
    out.push_back({oldest->sha256, oldest->size});
    files_.erase(oldest);
  }
}

}  // namespace mamori::honeypot
