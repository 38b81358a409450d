#include "honeypot/fetch.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <curl/curl.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/fs/admin_files.h"
#include "honeypot/downloads.h"

namespace mamori::honeypot {
namespace {

constexpr int kStatusFd = 3;
constexpr size_t kMaxStatusBytes = 4096;
constexpr size_t kMaxErrorBytes = 256;
constexpr size_t kMaxContentTypeBytes = 128;
// What wget on Debian 12 sends: the server sees the tool the attacker typed for, not a
// library's name.
constexpr const char* kUserAgent = "Wget/1.21.3";

// --- the child ------------------------------------------------------------------------

#if defined(__x86_64__)
constexpr uint32_t kAuditArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr uint32_t kAuditArch = AUDIT_ARCH_AARCH64;
#else
#error "the fetch child's seccomp filter knows x86_64 and aarch64"
#endif

// Killed on sight: running anything, making processes, looking into others, changing
// the system. Threads (clone with CLONE_THREAD) stay: libcurl resolves on one.
constexpr int kDenied[] = {
    __NR_execve,
    __NR_execveat,
    __NR_ptrace,
    __NR_process_vm_readv,
    __NR_process_vm_writev,
    __NR_mount,
    __NR_umount2,
    __NR_pivot_root,
    __NR_chroot,
    __NR_setns,
    __NR_unshare,
    __NR_kexec_load,
    __NR_kexec_file_load,
    __NR_init_module,
    __NR_finit_module,
    __NR_delete_module,
    __NR_bpf,
    __NR_perf_event_open,
    __NR_userfaultfd,
    __NR_keyctl,
    __NR_add_key,
    __NR_request_key,
    __NR_io_uring_setup,
    __NR_open_by_handle_at,
    __NR_name_to_handle_at,
    __NR_swapon,
    __NR_swapoff,
    __NR_reboot,
    __NR_acct,
    __NR_settimeofday,
    __NR_clock_settime,
    __NR_setuid,
    __NR_setgid,
    __NR_setreuid,
    __NR_setregid,
    __NR_setresuid,
    __NR_setresgid,
    __NR_setgroups,
#if defined(__x86_64__)
    __NR_fork,
    __NR_vfork,
    __NR_iopl,
    __NR_ioperm,
#endif
};

bool install_seccomp() {
  std::vector<sock_filter> f;
  const auto stmt = [&](uint16_t code, uint32_t k) { f.push_back(BPF_STMT(code, k)); };
  const auto jump = [&](uint16_t code, uint32_t k, uint8_t jt, uint8_t jf) {
    f.push_back(BPF_JUMP(code, k, jt, jf));
  };
  stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch));
  jump(BPF_JMP | BPF_JEQ | BPF_K, kAuditArch, 1, 0);
  stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
  stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr));
#if defined(__x86_64__)
  jump(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1);  // the x32 ABI: another table
  stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
#endif
  for (const int nr : kDenied) {
    jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 1);
    stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
  }
  // clone3's flags are in memory a filter cannot read: ENOSYS makes glibc use clone.
  jump(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1);
  stmt(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
  // clone: a thread only (the low word of flags; little-endian on both architectures).
  jump(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 3);
  stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0]));
  jump(BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD, 1, 0);
  stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
  stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  sock_fprog prog{static_cast<unsigned short>(f.size()), f.data()};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

void limit(int resource, rlim_t soft, rlim_t hard) {
  const rlimit r{soft, hard};
  setrlimit(resource, &r);
}

struct ChildState {
  uint64_t max_bytes = 0;
  uint64_t written = 0;
  bool truncated = false;
  bool allow_private = false;
  bool address_refused = false;
  bool write_failed = false;
};

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto& s = *static_cast<ChildState*>(user);
  const size_t len = size * n;
  const uint64_t room = s.max_bytes - s.written;
  const size_t take = static_cast<size_t>(std::min<uint64_t>(len, room));
  for (size_t off = 0; off < take;) {
    const ssize_t w = ::write(STDOUT_FILENO, data + off, take - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      s.write_failed = true;
      return 0;
    }
    off += static_cast<size_t>(w);
  }
  s.written += take;
  if (take < len) {
    s.truncated = true;
    return 0;  // stops the transfer: CURLE_WRITE_ERROR, read as "cut at max_kb"
  }
  return len;
}

// Every connect, the first and each redirect's, names its address here first.
curl_socket_t on_open_socket(void* user, curlsocktype, curl_sockaddr* a) {
  auto& s = *static_cast<ChildState*>(user);
  if (!s.allow_private && !public_address(&a->addr, a->addrlen)) {
    s.address_refused = true;
    return CURL_SOCKET_BAD;
  }
  return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

[[noreturn]] void report(const nlohmann::json& status) {
  const std::string line =
      status.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  (void)!::write(kStatusFd, line.data(), line.size());
  _exit(0);
}

}  // namespace

void fetch_child_main(const FetchRequest& req) {
  signal(SIGXFSZ, SIG_IGN);  // a write past RLIMIT_FSIZE fails (EFBIG) instead
  signal(SIGPIPE, SIG_IGN);
  limit(RLIMIT_CPU, req.timeout_s + 1, req.timeout_s + 2);
  limit(RLIMIT_FSIZE, req.max_bytes + 65536, req.max_bytes + 65536);
  limit(RLIMIT_NOFILE, 64, 64);
  limit(RLIMIT_AS, rlim_t{1} << 30, rlim_t{1} << 30);
  limit(RLIMIT_CORE, 0, 0);
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  nlohmann::json status = {{"result", std::string(kResultFailed)}};
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    status["error"] = "libcurl did not initialise";
    report(status);
  }
  // After libcurl and OpenSSL are loaded and initialised, before any network byte.
  if (!install_seccomp()) {
    status["error"] = std::string("seccomp: ") + std::strerror(errno);
    report(status);
  }
  CURL* h = curl_easy_init();
  if (h == nullptr) {
    status["error"] = "libcurl: no handle";
    report(status);
  }
  ChildState s;
  s.max_bytes = req.max_bytes;
  s.allow_private = req.allow_private;
  char errbuf[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(h, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(h, CURLOPT_PROXY, "");  // never a proxy (the environment is empty too)
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, long{req.timeout_s} * 1000);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, long{req.timeout_s} * 1000);
  curl_easy_setopt(h, CURLOPT_USERAGENT, kUserAgent);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  // Malware hosts rarely have valid certificates, and a capture is what is wanted: the
  // bytes are never trusted for anything.
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
  curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
  curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, &s);
  const CURLcode rc = curl_easy_perform(h);
  long code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  char* type = nullptr;
  curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &type);
  status["http_status"] = code;
  if (type != nullptr) status["content_type"] = std::string(type).substr(0, kMaxContentTypeBytes);
  const std::string why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
  if (s.address_refused) {
    status["result"] = std::string(kResultRefused);
    status["policy"] = std::string(kPolicyAddress);
  } else if (rc == CURLE_UNSUPPORTED_PROTOCOL) {
    status["result"] = std::string(kResultRefused);
    status["policy"] = std::string(kPolicyScheme);
    status["error"] = why;
  } else if (rc == CURLE_OPERATION_TIMEDOUT) {
    status["policy"] = std::string(kPolicyTimeout);
    status["error"] = why;
  } else if ((rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && s.truncated)) && !s.write_failed) {
    if (code >= 200 && code < 300) {
      status["result"] = std::string(kResultFetched);
      if (s.truncated) {
        status["truncated"] = true;
        status["policy"] = std::string(kPolicyMaxKb);
      }
    } else {
      status["error"] = fmt::format("HTTP status {}", code);
    }
  } else {
    status["error"] = why;
  }
  report(status);
}

// --- the parent -----------------------------------------------------------------------

Result<FetchProcess> FetchProcess::spawn(int exe_fd, const FetchRequest& req) {
  FetchProcess p;
  p.max_bytes_ = req.max_bytes;
  p.body_.reset(memfd_create("mamori-fetch", MFD_CLOEXEC));
  if (!p.body_.valid()) return fail_errno("memfd_create", "fetch");
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return fail_errno("pipe2", "fetch");
  p.status_.reset(fds[0]);
  UniqueFd status_w(fds[1]);
  UniqueFd null_fd = MAMORI_TRY(fs::open_admin_read("/dev/null"));
  // Everything the child needs is made before fork: it only moves descriptors and execs.
  const std::string max = std::to_string(req.max_bytes);
  const std::string timeout = std::to_string(req.timeout_s);
  const std::string allow = req.allow_private ? "1" : "0";
  const char* argv[] = {"mamori-honeypot", "--fetch-child", req.url.c_str(), max.c_str(),
                        timeout.c_str(),   allow.c_str(),   nullptr};
  const char* envp[] = {nullptr};
  const pid_t pid = fork();
  if (pid < 0) return fail_errno("fork", "fetch");
  if (pid == 0) {
    // The binary's descriptor out of the way of 0-3 first, close-on-exec; every other
    // descriptor closed, so the child holds no socket or file of the honeypot's.
    const int exe = fcntl(exe_fd, F_DUPFD_CLOEXEC, kStatusFd + 8);
    if (exe < 0 || dup2(null_fd.get(), STDIN_FILENO) < 0 ||
        dup2(p.body_.get(), STDOUT_FILENO) < 0 || dup2(status_w.get(), kStatusFd) < 0)
      _exit(127);
    close_range(kStatusFd + 1, static_cast<unsigned>(exe) - 1, 0);
    close_range(static_cast<unsigned>(exe) + 1, ~0U, 0);
    syscall(SYS_execveat, exe, "", const_cast<char* const*>(argv), const_cast<char* const*>(envp),
            AT_EMPTY_PATH);
    _exit(127);
  }
  p.pid_ = pid;
  return p;
}

FetchProcess::FetchProcess(FetchProcess&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)),
      body_(std::move(o.body_)),
      status_(std::move(o.status_)),
      max_bytes_(o.max_bytes_) {}

FetchProcess& FetchProcess::operator=(FetchProcess&& o) noexcept {
  if (this != &o) {
    if (pid_ > 0) (void)kill("", "");
    pid_ = std::exchange(o.pid_, -1);
    body_ = std::move(o.body_);
    status_ = std::move(o.status_);
    max_bytes_ = o.max_bytes_;
  }
  return *this;
}

FetchProcess::~FetchProcess() {
  if (pid_ > 0) (void)kill("", "");
}

std::optional<FetchOutcome> FetchProcess::poll() {
  if (pid_ <= 0) return std::nullopt;
  int status = 0;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == 0) return std::nullopt;
  if (r < 0 && errno == EINTR) return std::nullopt;
  pid_ = -1;
  return collect(r < 0 ? -1 : status);
}

FetchOutcome FetchProcess::kill(std::string_view policy, std::string_view why) {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }
  FetchOutcome o;
  o.result = std::string(kResultFailed);
  o.policy = std::string(policy);
  o.error = std::string(why);
  return o;
}

FetchOutcome FetchProcess::collect(int wait_status) {
  FetchOutcome o;
  o.result = std::string(kResultFailed);
  // The child is over: the pipe holds all it said (one line, well under a pipe's buffer).
  std::string line;
  char buf[1024];
  while (line.size() < kMaxStatusBytes) {
    const ssize_t n = ::read(status_.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
  }
  const auto j = nlohmann::json::parse(line, nullptr, false);
  if (!j.is_object()) {
    if (wait_status >= 0 && WIFSIGNALED(wait_status))
      o.error = fmt::format("the fetch process was killed by signal {}", WTERMSIG(wait_status));
    else if (wait_status >= 0 && WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 127)
      o.error = "the fetch process could not be started (exec of the honeypot's binary)";
    else
      o.error = "the fetch process said nothing";
    return o;
  }
  // What the child says is checked: it parsed the attacker's bytes.
  const auto text = [&](const char* key, size_t max) {
    const auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>().substr(0, max) : std::string();
  };
  const std::string result = text("result", 16);
  if (result == kResultFetched || result == kResultRefused) o.result = result;
  const std::string policy = text("policy", 16);
  for (const auto known : {kPolicyAddress, kPolicyScheme, kPolicyTimeout, kPolicyMaxKb})
    if (policy == known) o.policy = policy;
  o.error = text("error", kMaxErrorBytes);
  o.content_type = text("content_type", kMaxContentTypeBytes);
  if (const auto it = j.find("http_status"); it != j.end() && it->is_number_integer())
    o.http_status = std::clamp<long>(it->get<long>(), 0, 999);
  if (const auto it = j.find("truncated"); it != j.end() && it->is_boolean())
    o.truncated = it->get<bool>();
  if (o.result != kResultFetched) return o;
  struct stat st {};
  if (fstat(body_.get(), &st) != 0) {
    o.result = std::string(kResultFailed);
    o.error = "the fetched body cannot be read";
    return o;
  }
  const uint64_t size = std::min<uint64_t>(static_cast<uint64_t>(st.st_size), max_bytes_);
  if (static_cast<uint64_t>(st.st_size) > max_bytes_) {
    o.truncated = true;
    o.policy = std::string(kPolicyMaxKb);
  }
  o.body.resize(size);
  size_t got = 0;
  while (got < size) {
    const ssize_t n = pread(body_.get(), o.body.data() + got, size - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  o.body.resize(got);
  return o;
}

}  // namespace mamori::honeypot
