#include "honeypot/setup.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <charconv>
#include <cstring>

#include <fmt/format.h>
#include <libssh/libssh.h>

#include "core/fs/admin_files.h"

namespace mamori::honeypot {
namespace {

struct KeySpec {
  const char* file;
  ssh_keytypes_e type;
  int bits;
};
constexpr KeySpec kKeys[] = {
    {"ssh_host_ed25519_key", SSH_KEYTYPE_ED25519, 0},
    {"ssh_host_ecdsa_key", SSH_KEYTYPE_ECDSA_P256, 256},
    {"ssh_host_rsa_key", SSH_KEYTYPE_RSA, 3072},
};

Result<ssh_key> import_key(const std::string& path) {
  MAMORI_TRY(fs::make_private_file(path, false));  // 0600 if it was looser
  const auto text = MAMORI_TRY(fs::read_small_file(path, 64 << 10));
  ssh_key key = nullptr;
  if (ssh_pki_import_privkey_base64(text.c_str(), nullptr, nullptr, nullptr, &key) != SSH_OK)
    return fail_msg("import host key", path, "not a private key libssh can read");
  return key;
}

}  // namespace

Result<std::vector<HostKey>> load_or_create_host_keys(Env& env, const std::string& dir) {
  MAMORI_TRY(fs::make_private_dir(dir));
  std::vector<HostKey> keys;
  for (const auto& spec : kKeys) {
    HostKey k;
    k.path = dir + "/" + spec.file;
    struct stat st {};
    if (fstatat(AT_FDCWD, k.path.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT) return fail_errno("stat", k.path);
      ssh_key key = nullptr;
      if (ssh_pki_generate(spec.type, spec.bits, &key) != SSH_OK)
        return fail_msg("generate host key", k.path, "libssh could not make the key");
      char* b64 = nullptr;
      const int rc = ssh_pki_export_privkey_base64(key, nullptr, nullptr, nullptr, &b64);
      ssh_key_free(key);
      if (rc != SSH_OK) return fail_msg("export host key", k.path, "libssh could not write it");
      const std::string text(b64);
      ssh_string_free_char(b64);
      // The first of two starting honeypots wins; both then read the same key.
      k.created = MAMORI_TRY(fs::create_file_exclusive(env, k.path, text, 0600));
    }
    k.key = MAMORI_TRY(import_key(k.path));
    keys.push_back(k);
  }
  return keys;
}

Result<UniqueFd> listen_on(const std::string& address, uint16_t port, int backlog) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_INET;
  if (address.find(':') != std::string::npos) {
    family = AF_INET6;
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    if (inet_pton(AF_INET6, address.c_str(), &a->sin6_addr) != 1)
      return fail("listen", address, EINVAL);
    len = sizeof(*a);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    if (inet_pton(AF_INET, address.c_str(), &a->sin_addr) != 1)
      return fail("listen", address, EINVAL);
    len = sizeof(*a);
  }
  UniqueFd fd(socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  const std::string where = fmt::format("{}:{}", address, port);
  if (fd.get() < 0) return fail_errno("socket", where);
  const int one = 1;
  if (setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
    return fail_errno("setsockopt SO_REUSEADDR", where);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) return fail_errno("bind", where);
  if (listen(fd.get(), backlog) != 0) return fail_errno("listen", where);
  return fd;
}

Result<DropTarget> lookup_user(const std::string& name) {
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  const int rc = getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found);
  if (rc != 0) return fail("getpwnam", name, rc);
  if (found == nullptr)
    return fail_msg("getpwnam", name,
                    "no such user: create it (useradd --system --no-create-home --shell "
                    "/usr/sbin/nologin " +
                        name + ") or set user = \"nobody\"");
  if (pw.pw_uid == 0) return fail_msg("drop privileges", name, "the user is root");
  return DropTarget{pw.pw_uid, pw.pw_gid, name};
}

Status give_dir_to(const std::string& dir, const DropTarget& to, bool files) {
  UniqueFd fd = MAMORI_TRY(fs::open_admin_read(dir));
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return fail_errno("fstat", dir);
  if (!S_ISDIR(st.st_mode)) return fail("give to user", dir, ENOTDIR);
  if (fchown(fd.get(), to.uid, to.gid) != 0) return fail_errno("fchown", dir);
  DIR* d = fdopendir(dup(fd.get()));
  if (d == nullptr) return fail_errno("fdopendir", dir);
  Status result = ok();
  while (files) {
    const dirent* e = readdir(d);
    if (e == nullptr) break;
    if (e->d_type != DT_REG) continue;
    // A file with another link may be a hard link the dropped user planted to a file of
    // root's (where protected_hardlinks is off): never given away.
    struct stat fst {};
    if (fstatat(fd.get(), e->d_name, &fst, AT_SYMLINK_NOFOLLOW) != 0 || fst.st_nlink != 1) continue;
    if (fchownat(fd.get(), e->d_name, to.uid, to.gid, AT_SYMLINK_NOFOLLOW) != 0) {
      result = fail_errno("fchownat", dir + "/" + e->d_name);
      break;
    }
  }
  closedir(d);
  return result;
}

Status drop_privileges(const DropTarget& to) {
  if (setgroups(0, nullptr) != 0) return fail_errno("setgroups", to.name);
  if (setgid(to.gid) != 0) return fail_errno("setgid", to.name);
  if (setuid(to.uid) != 0) return fail_errno("setuid", to.name);
  if (setuid(0) == 0 || geteuid() == 0)
    return fail_msg("drop privileges", to.name, "root could be regained");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    return fail_errno("PR_SET_NO_NEW_PRIVS", to.name);
  // Not dumpable: no core file or ptrace by the same uid reads the host keys.
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return fail_errno("PR_SET_DUMPABLE", to.name);
  return ok();
}

Status drop_capabilities() {
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0)
    return fail_errno("PR_CAP_AMBIENT_CLEAR_ALL", "");
  // capset(2) without libcap: version 3 headers, two 32-bit words of each set, all zero.
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capset, &header, data) != 0) return fail_errno("capset", "");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return fail_errno("PR_SET_NO_NEW_PRIVS", "");
  return ok();
}

uint64_t raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    const rlim_t old = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) rl.rlim_cur = old;  // the old limit still works
  }
  return rl.rlim_cur;
}

Result<uint64_t> load_or_create_node_seed(Env& env, const std::string& state_dir) {
  const std::string path = state_dir + "/node-seed";
  uint64_t fresh = 0;
  if (getrandom(&fresh, sizeof(fresh), 0) != static_cast<ssize_t>(sizeof(fresh)))
    return fail_errno("getrandom", path);
  MAMORI_TRY(fs::create_file_exclusive(env, path, fmt::format("{:016x}\n", fresh), 0600));
  const auto text = MAMORI_TRY(fs::read_small_file(path, 64));
  uint64_t seed = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seed, 16);
  if (ec != std::errc() || end - text.data() != 16)
    return fail_msg("read node seed", path,
                    "not 16 hex digits; remove the file to make a new fake system");
  return seed;
}

}  // namespace mamori::honeypot
