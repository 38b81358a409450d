#include "honeypot/shell.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>

#include <fmt/format.h>

namespace mamori::honeypot {
namespace {

// splitmix64: a small, well-mixed generator; the seed is the secret, not the algorithm.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint32_t below(uint32_t n) { return static_cast<uint32_t>(next() % n); }
  template <class T, size_t N>
  const T& pick(const std::array<T, N>& a) {
    return a[below(N)];
  }
};

constexpr std::array<std::string_view, 16> kWords = {
    "web",  "app", "www",   "api",  "node", "prod", "srv",    "backend",
    "shop", "cms", "front", "edge", "host", "vps",  "portal", "static"};
constexpr std::array<std::string_view, 12> kPeople = {"admin",  "deploy",   "ubuntu",    "debian",
                                                      "devops", "sysadmin", "webmaster", "ops",
                                                      "maint",  "user",     "support",   "dev"};
// Debian 12 kernel ABI numbers and the upstream release each shipped (kernel.org + the
// Debian changelog); a list, so the fake host runs a kernel that existed.
struct Kernel {
  std::string_view abi, upstream, date;
};
constexpr std::array<Kernel, 8> kKernels = {{
    {"6.1.0-13", "6.1.55-1", "2023-09-29"},
    {"6.1.0-17", "6.1.69-1", "2023-12-30"},
    {"6.1.0-18", "6.1.76-1", "2024-02-01"},
    {"6.1.0-21", "6.1.90-1", "2024-05-03"},
    {"6.1.0-23", "6.1.99-1", "2024-07-15"},
    {"6.1.0-25", "6.1.106-3", "2024-08-26"},
    {"6.1.0-28", "6.1.119-1", "2024-11-22"},
    {"6.1.0-31", "6.1.128-1", "2025-02-07"},
}};

std::string make_hostname(Rng& rng) {
  switch (rng.below(4)) {
    case 0:  // cloud style: ip-10-0-12-34
      return fmt::format("ip-10-{}-{}-{}", rng.below(256), rng.below(256), 1 + rng.below(254));
    case 1:
      return fmt::format("{}-{:02d}", rng.pick(kWords), 1 + rng.below(40));
    case 2:
      return fmt::format("{}{}", rng.pick(kWords), 1 + rng.below(9));
    default:
      return fmt::format("{}-{}-{}", rng.pick(kWords), rng.pick(kWords), rng.below(1000));
  }
}

void append_bounded(std::string& out, std::string_view text, size_t limit) {
  if (out.size() >= limit) return;
  out.append(text.substr(0, limit - out.size()));
}

std::string crlf(std::string_view text) {
  std::string s;
  s.reserve(text.size() + 16);
  for (const char c : text) {
    if (c == '\n') s.push_back('\r');
    s.push_back(c);
  }
  return s;
}

std::string host_of(std::string_view url) {
  if (const size_t p = url.find("://"); p != std::string_view::npos) url.remove_prefix(p + 3);
  url = url.substr(0, url.find_first_of("/?#"));
  if (const size_t at = url.rfind('@'); at != std::string_view::npos) url.remove_prefix(at + 1);
  if (!url.starts_with('[')) url = url.substr(0, url.find(':'));
  return std::string(url);
}

}  // namespace

FakeSystem make_fake_system(uint64_t seed, std::string_view hostname) {
  Rng rng{seed};
  FakeSystem s;
  s.hostname = hostname.empty() ? make_hostname(rng) : std::string(hostname);
  const Kernel& k = rng.pick(kKernels);
  s.kernel_release = std::string(k.abi) + "-amd64";
  s.kernel_version = fmt::format("#1 SMP PREEMPT_DYNAMIC Debian {} ({})", k.upstream, k.date);
  s.admin_user = std::string(rng.pick(kPeople));
  s.admin_uid = 1000 + rng.below(3);
  s.uptime_days = 3 + rng.below(300);
  s.cpus = std::array<uint32_t, 4>{1, 2, 4, 8}[rng.below(4)];
  return s;
}

std::vector<std::string> split_words(std::string_view command) {
  std::vector<std::string> words;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (const char c : command) {
    if (quote) {
      if (c == quote)
        quote = 0;
      else
        cur.push_back(c);
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == ' ' || c == '\t') {
      if (in_word) words.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else {
      cur.push_back(c);
      in_word = true;
    }
  }
  if (in_word) words.push_back(std::move(cur));
  return words;
}

Shell::Shell(const FakeSystem& system, std::string user, uint32_t command_bytes,
             uint32_t output_bytes)
    : system_(system),
      user_(std::move(user)),
      command_bytes_(command_bytes),
      output_bytes_(output_bytes) {
  cwd_ = home();
}

std::string Shell::home() const { return user_ == "root" ? "/root" : "/home/" + user_; }

std::string Shell::prompt() const {
  std::string dir = cwd_ == home() ? "~" : cwd_;
  return fmt::format("{}@{}:{}{} ", user_, system_.hostname, dir, user_ == "root" ? "#" : "$");
}

ShellResult Shell::run(std::string_view line) {
  ShellResult r;
  if (line.size() > command_bytes_) {
    line = line.substr(0, command_bytes_);
    r.truncated = true;
  }
  // Commands: split on newlines, ';', "&&", "||" (outside quotes); '|' ends a command's
  // run part (the rest of the pipeline is not emulated).
  std::vector<std::string> commands(1);
  char quote = 0;
  bool in_pipe = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == ';' || c == '\n' || c == '\r' ||
               ((c == '&' || c == '|') && i + 1 < line.size() && line[i + 1] == c)) {
      if (c == '&' || c == '|') ++i;
      commands.emplace_back();
      in_pipe = false;
      continue;
    } else if (c == '|' || c == '&') {
      in_pipe = true;
      continue;
    }
    if (!in_pipe) commands.back().push_back(c);
  }
  for (const auto& command : commands) {
    const auto argv = split_words(command);
    if (argv.empty()) continue;
    run_one(argv, r);
    if (r.exit) break;
  }
  r.output = crlf(r.output);
  if (r.output.size() > output_bytes_) r.output.resize(output_bytes_);
  return r;
}

void Shell::run_one(const std::vector<std::string>& argv, ShellResult& r) {
  const std::string& cmd = argv[0];
  const size_t limit = output_bytes_;
  const auto out = [&](std::string_view text) { append_bounded(r.output, text, limit); };
  const bool root = user_ == "root";
  const uint32_t uid = root ? 0 : (user_ == system_.admin_user ? system_.admin_uid : 1001);
  r.exit_status = 0;

  if (cmd == "exit" || cmd == "logout") {
    r.exit = true;
  } else if (cmd == "uname") {
    const std::string all = fmt::format("Linux {} {} {} x86_64 GNU/Linux\n", system_.hostname,
                                        system_.kernel_release, system_.kernel_version);
    if (argv.size() == 1 || argv[1] == "-s")
      out("Linux\n");
    else if (argv[1] == "-a")
      out(all);
    else if (argv[1] == "-r")
      out(system_.kernel_release + "\n");
    else if (argv[1] == "-n")
      out(system_.hostname + "\n");
    else if (argv[1] == "-v")
      out(system_.kernel_version + "\n");
    else if (argv[1] == "-m" || argv[1] == "-p" || argv[1] == "-i")
      out("x86_64\n");
    else if (argv[1] == "-o")
      out("GNU/Linux\n");
    else
      out(all);
  } else if (cmd == "id") {
    out(root ? "uid=0(root) gid=0(root) groups=0(root)\n"
             : fmt::format("uid={0}({1}) gid={0}({1}) groups={0}({1}),27(sudo)\n", uid, user_));
  } else if (cmd == "whoami") {
    out(user_ + "\n");
  } else if (cmd == "hostname") {
    out(system_.hostname + "\n");
  } else if (cmd == "pwd") {
    out(cwd_ + "\n");
  } else if (cmd == "cd") {
    const std::string to = argv.size() > 1 ? argv[1] : home();
    static const std::array<std::string_view, 8> kDirs = {"/",        "/tmp",     "/etc", "/var",
                                                          "/var/tmp", "/dev/shm", "/usr", "/opt"};
    if (to == "~" || to == home()) {
      cwd_ = home();
    } else if (std::find(kDirs.begin(), kDirs.end(), to) != kDirs.end()) {
      cwd_ = to;
    } else if (to == "..") {
      const size_t slash = cwd_.rfind('/');
      cwd_ = slash == 0 || slash == std::string::npos ? "/" : cwd_.substr(0, slash);
    } else {
      out(fmt::format("-bash: cd: {}: No such file or directory\n", to));
      r.exit_status = 1;
    }
  } else if (cmd == "ls" || cmd == "dir") {
    std::string path = cwd_;
    for (size_t i = 1; i < argv.size(); ++i)
      if (!argv[i].starts_with('-')) path = argv[i];
    if (path == "/")
      out("bin   dev  home  lib32  libx32  media  opt   root  sbin  sys  usr\n"
          "boot  etc  lib   lib64  lost+found  mnt    proc  run   srv   tmp  var\n");
    else if (path == "/etc")
      out("adduser.conf  crontab  fstab  group  hostname  hosts  issue  nginx  os-release  "
          "passwd  resolv.conf  shadow  ssh  sudoers  systemd\n");
    else if (path == "/home")
      out(system_.admin_user + "\n");
    else if (path == "/var")
      out("backups  cache  lib  local  lock  log  mail  opt  run  spool  tmp  www\n");
    else if (path == "/tmp" || path == "/var/tmp" || path == "/dev/shm" || path == home() ||
             path == "." || path == "/opt")
      ;  // empty, as they usually are
    else {
      out(fmt::format("ls: cannot access '{}': No such file or directory\n", path));
      r.exit_status = 2;
    }
  } else if (cmd == "cat" || cmd == "head" || cmd == "more" || cmd == "less") {
    for (size_t i = 1; i < argv.size(); ++i) {
      const std::string& f = argv[i];
      if (f.starts_with('-')) continue;
      if (f == "/etc/passwd") {
        out("root:x:0:0:root:/root:/bin/bash\n"
            "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
            "bin:x:2:2:bin:/bin:/usr/sbin/nologin\n"
            "sys:x:3:3:sys:/dev:/usr/sbin/nologin\n"
            "sync:x:4:65534:sync:/bin:/bin/sync\n"
            "games:x:5:60:games:/usr/games:/usr/sbin/nologin\n"
            "man:x:6:12:man:/var/cache/man:/usr/sbin/nologin\n"
            "lp:x:7:7:lp:/var/spool/lpd:/usr/sbin/nologin\n"
            "mail:x:8:8:mail:/var/mail:/usr/sbin/nologin\n"
            "news:x:9:9:news:/var/spool/news:/usr/sbin/nologin\n"
            "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n"
            "backup:x:34:34:backup:/var/backups:/usr/sbin/nologin\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
            "_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\n"
            "systemd-network:x:998:998:systemd Network Management:/:/usr/sbin/nologin\n"
            "messagebus:x:100:107::/nonexistent:/usr/sbin/nologin\n"
            "sshd:x:101:65534::/run/sshd:/usr/sbin/nologin\n");
        out(fmt::format("{0}:x:{1}:{1}:{0},,,:/home/{0}:/bin/bash\n", system_.admin_user,
                        system_.admin_uid));
      } else if (f == "/etc/hostname") {
        out(system_.hostname + "\n");
      } else if (f == "/etc/os-release") {
        out("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n"
            "VERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n"
            "HOME_URL=\"https://www.debian.org/\"\n");
      } else if (f == "/etc/issue") {
        out("Debian GNU/Linux 12 \\n \\l\n\n");
      } else if (f == "/proc/version") {
        out(
            fmt::format("Linux version {} (debian-kernel@lists.debian.org) (gcc-12 (Debian "
                        "12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) {}\n",
                        system_.kernel_release, system_.kernel_version));
      } else if (f == "/proc/cpuinfo") {
        for (uint32_t c = 0; c < system_.cpus; ++c)
          out(
              fmt::format("processor\t: {}\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) "
                          "Xeon(R) Gold 6248R CPU @ 3.00GHz\ncpu cores\t: {}\n\n",
                          c, system_.cpus));
      } else if (f == "/etc/shadow" && !root) {
        out("cat: /etc/shadow: Permission denied\n");
        r.exit_status = 1;
      } else {
        out(fmt::format("{}: {}: No such file or directory\n", cmd, f));
        r.exit_status = 1;
      }
    }
  } else if (cmd == "echo") {
    std::string text;
    for (size_t i = 1; i < argv.size(); ++i) {
      if (i > 1) text.push_back(' ');
      text += argv[i];
    }
    out(text + "\n");
  } else if (cmd == "nproc") {
    out(fmt::format("{}\n", system_.cpus));
  } else if (cmd == "uptime" || cmd == "w") {
    out(fmt::format(" up {} days,  1 user,  load average: 0.08, 0.03, 0.01\n",
                    system_.uptime_days));
  } else if (cmd == "wget" || cmd == "curl") {
    std::string url;
    for (size_t i = 1; i < argv.size() && url.empty(); ++i)
      if (!argv[i].starts_with('-')) url = argv[i];
    if (url.empty()) {
      out(cmd == "wget" ? "wget: missing URL\n" : "curl: try 'curl --help' for more information\n");
      r.exit_status = cmd == "wget" ? 1 : 2;
      return;
    }
    r.downloads.push_back(url);
    // The answer of a host without name resolution: nothing is fetched, ever.
    const std::string host = host_of(url);
    in6_addr any{};
    const bool literal =
        inet_pton(AF_INET, host.c_str(), &any) == 1 || (host.size() > 2 && host.front() == '[');
    if (literal) {  // no name to resolve: the connection is what fails
      if (cmd == "wget") {
        out(fmt::format("Connecting to {}... failed: Network is unreachable.\n", host));
        r.exit_status = 4;
      } else {
        out(
            fmt::format("curl: (7) Failed to connect to {} port 80 after 0 ms: Couldn't connect "
                        "to server\n",
                        host));
        r.exit_status = 7;
      }
    } else if (cmd == "wget") {
      out(
          fmt::format("Resolving {0} ({0})... failed: Temporary failure in name resolution.\n"
                      "wget: unable to resolve host address '{0}'\n",
                      host));
      r.exit_status = 4;
    } else {
      out(fmt::format("curl: (6) Could not resolve host: {}\n", host));
      r.exit_status = 6;
    }
  } else if (cmd == "true" || cmd == "export" || cmd == "unset" || cmd == "history" ||
             cmd == "clear" || cmd == "cls") {
  } else if (cmd == "false") {
    r.exit_status = 1;
  } else {
    out(fmt::format("-bash: {}: command not found\n", cmd));
    r.exit_status = 127;
  }
}

}  // namespace mamori::honeypot
