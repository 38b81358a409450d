#include "core/webconf/plan.h"

#include <dirent.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <map>
#include <set>

#include <fmt/format.h>

#include "core/base/quote.h"
#include "core/fs/beneath.h"
#include "core/logparse/format.h"

namespace mamori::webconf {
namespace {

// Subdirectories of a root looked at for applications (a blog/ or wiki/ beside the
// site); more are not looked at, and a note says so.
constexpr size_t kMaxSubdirs = 256;

bool exists_beneath(int root_fd, const std::string& rel, bool dir) {
  auto st = fs::stat_beneath(root_fd, rel);
  return st && (dir ? S_ISDIR(st->st_mode) : S_ISREG(st->st_mode));
}

std::string prefixed(const std::string& dir, const std::string& rel) {
  return dir.empty() ? rel : dir + "/" + rel;
}

bool inside(const std::string& path, const std::string& dir) {
  return dir == "/" ? path != "/"
                    : path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
                          path[dir.size()] == '/';
}

std::optional<std::string> canonical(const std::string& path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) == nullptr) return std::nullopt;
  return std::string(buf);
}

std::string site_label(const ServerConf& s, const Site& site) {
  std::string label = s.server + " ";
  label += s.server == "nginx" ? "server" : "VirtualHost";
  if (!site.names.empty())
    label += " " + site.names;
  else if (!site.listen.empty())
    label += " " + site.listen;
  return label + " (" + site.from.text() + ")";
}

// The [opcache] socket key's form: an absolute path, or ADDRESS:PORT.
std::string opcache_socket(const std::string& listen) {
  if (!listen.empty() && listen[0] == '/') return listen;
  if (listen.find(':') == std::string::npos) return "127.0.0.1:" + listen;
  if (listen.rfind("localhost:", 0) == 0) return "127.0.0.1:" + listen.substr(10);
  return listen;
}

void add_unique(std::vector<std::string>& v, const std::string& s) {
  if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
}

}  // namespace

bool is_system_dir(const std::string& c) {
  if (c == "/" || c.empty()) return true;
  if (std::count(c.begin(), c.end(), '/') == 1) return true;  // /var, /usr, /home, /srv...
  static const std::set<std::string> kSystem = {
      "/usr/share",      "/usr/lib",   "/usr/local",   "/usr/bin",       "/usr/sbin",
      "/usr/include",    "/usr/lib64", "/usr/libexec", "/var/lib",       "/var/log",
      "/var/cache",      "/var/tmp",   "/var/spool",   "/var/mail",      "/var/backups",
      "/var/run",        "/var/lock",  "/usr/src",     "/usr/local/lib", "/usr/local/bin",
      "/usr/local/share"};
  if (kSystem.count(c)) return true;
  for (const char* pseudo : {"/proc/", "/sys/", "/dev/", "/run/", "/boot/", "/etc/"})
    if (c.rfind(pseudo, 0) == 0) return true;
  return false;
}

std::vector<AppFound> detect_apps(int root_fd, const std::string& dir,
                                  std::vector<std::string>& remarks) {
  std::vector<AppFound> apps;
  const auto at = [&](const std::string& rel) { return prefixed(dir, rel); };
  const std::string where = dir.empty() ? "the root" : dir + "/";
  if (exists_beneath(root_fd, at("wp-includes/version.php"), false) ||
      (exists_beneath(root_fd, at("wp-config.php"), false) &&
       exists_beneath(root_fd, at("wp-content"), true))) {
    AppFound a{"wordpress", dir, {}};
    if (exists_beneath(root_fd, at("wp-config.php"), false))
      a.guarded.push_back(at("wp-config.php"));
    else
      remarks.push_back("WordPress at " + where +
                        " has no wp-config.php in the tree (WordPress also reads it from the "
                        "directory above): that one is not guarded");
    auto wc = fs::stat_beneath(root_fd, at("wp-content"));
    if (wc && S_ISLNK(wc->st_mode))
      remarks.push_back("WordPress at " + where +
                        ": wp-content is a symlink (Debian's package: "
                        "/var/lib/wordpress/wp-content); its themes, plugins and uploads are "
                        "outside this root: add its target as a [[root]] of its own");
    apps.push_back(std::move(a));
  }
  if (exists_beneath(root_fd, at("libraries/classes/Version.php"), false) ||
      (exists_beneath(root_fd, at("config.sample.inc.php"), false) &&
       exists_beneath(root_fd, at("libraries"), true))) {
    AppFound a{"phpmyadmin", dir, {}};
    if (exists_beneath(root_fd, at("config.inc.php"), false))
      a.guarded.push_back(at("config.inc.php"));
    apps.push_back(std::move(a));
  }
  if (exists_beneath(root_fd, at("LocalSettings.php"), false) ||
      (exists_beneath(root_fd, at("includes/Defines.php"), false) &&
       exists_beneath(root_fd, at("api.php"), false))) {
    AppFound a{"mediawiki", dir, {}};
    if (exists_beneath(root_fd, at("LocalSettings.php"), false))
      a.guarded.push_back(at("LocalSettings.php"));
    apps.push_back(std::move(a));
  }
  return apps;
}

namespace {

void apply_app(const AppFound& a, int root_fd, PlannedRoot& r) {
  const auto at = [&](const std::string& rel) { return prefixed(a.dir, rel); };
  const std::string where = a.dir.empty() ? "" : " in " + a.dir + "/";
  std::string text;
  if (a.kind == "wordpress") {
    add_unique(r.allow_new, at("wp-content/uploads/**"));
    add_unique(r.exclude, at("wp-content/cache/**"));
    text = "WordPress" + where +
           ": uploads may be added (wp-content/uploads), its cache is not recorded";
  } else if (a.kind == "phpmyadmin") {
    add_unique(r.exclude, at("tmp/**"));
    text = "phpMyAdmin" + where + ": its tmp/ is not recorded";
  } else if (a.kind == "mediawiki") {
    add_unique(r.allow_new, at("images/**"));
    add_unique(r.exclude, at("cache/**"));
    text = "MediaWiki" + where + ": uploads may be added (images/), its cache/ is not recorded";
  }
  r.remarks.push_back(text);
  for (const auto& g : a.guarded) {
    std::string line =
        g + " holds the database password: guarded (restored if changed, never an upload)";
    auto st = fs::stat_beneath(root_fd, g);
    if (st && (st->st_mode & S_IROTH))
      line += fmt::format("; it is readable by every local user (mode {:04o}): chmod o-r",
                          st->st_mode & 07777);
    r.remarks.push_back(line);
  }
  r.apps.push_back(a);
}

class Planner {
 public:
  Plan run(const std::vector<ServerConf>& servers, const std::vector<FpmConf>& fpm) {
    for (const auto& s : servers) {
      plan_.read.push_back(fmt::format("{}: {} ({} file{})", s.server, s.main_file, s.files.size(),
                                       s.files.size() == 1 ? "" : "s"));
      for (const auto& p : s.problems) plan_.notes.push_back(p);
      if (!s.user.empty()) plan_.users.push_back({s.server, s.user, s.user_from.text()});
    }
    for (const auto& f : fpm) {
      plan_.read.push_back(fmt::format("php-fpm: {} ({} file{}, {} pool{})", f.main_file,
                                       f.files.size(), f.files.size() == 1 ? "" : "s",
                                       f.pools.size(), f.pools.size() == 1 ? "" : "s"));
      for (const auto& p : f.problems) plan_.notes.push_back(p);
      for (const auto& p : f.pools)
        if (!p.user.empty())
          plan_.users.push_back({"php-fpm pool " + p.name, p.user, p.from.text()});
    }
    for (const auto& s : servers)
      for (const auto& site : s.sites) add_site(s, site);
    merge_nested();
    for (auto& r : plan_.roots) look_inside(r);
    owners();
    opcache(servers, fpm);
    return std::move(plan_);
  }

 private:
  // The canonical root for a document root, or nullopt with a note.
  std::optional<std::string> usable_root(const DocRoot& d, const std::string& label) {
    const std::string at = d.from.text();
    if (d.path.empty() || d.path[0] != '/') {
      note(d.from,
           "root '" + d.path + "' of " + label +
               " is relative (nginx reads it against its prefix): left out; set an absolute root");
      return std::nullopt;
    }
    if (d.path.find('$') != std::string::npos) {
      note(d.from, "root '" + d.path + "' of " + label + " holds variables: left out");
      return std::nullopt;
    }
    struct stat st {};
    if (::lstat(d.path.c_str(), &st) != 0) {
      note(d.from, "root '" + d.path + "' of " + label + " does not exist: left out");
      return std::nullopt;
    }
    auto c = canonical(d.path);
    if (!c) {
      note(d.from, "root '" + d.path + "' of " + label +
                       " cannot be resolved (a dangling symlink?): left out");
      return std::nullopt;
    }
    struct stat cs {};
    if (::stat(c->c_str(), &cs) != 0 || !S_ISDIR(cs.st_mode)) {
      note(d.from, "root '" + d.path + "' of " + label + " is not a directory: left out");
      return std::nullopt;
    }
    if (is_system_dir(*c)) {
      note(d.from, "root '" + d.path + "'" + (*c != d.path ? " (" + *c + ")" : "") + " of " +
                       label +
                       (*c == "/" ? " is the whole file system" : " is a system directory") +
                       ": refused, mamori does not guard the whole system; give the site a "
                       "directory of its own (e.g. /var/www/SITE)");
      return std::nullopt;
    }
    return c;
  }

  void note(const Origin& o, std::string text) { plan_.notes.push_back({o, std::move(text)}); }

  void add_site(const ServerConf& s, const Site& site) {
    const std::string label = site_label(s, site);
    std::string site_root;
    for (const auto& d : site.roots) {
      auto c = usable_root(d, label);
      if (!c) continue;
      if (site_root.empty()) site_root = *c;
      std::string source = label + ": " + (d.context.empty() ? "root" : d.context + " root") + " " +
                           d.path + " (" + d.from.text() + ")";
      if (*c != d.path) source += ", a symlink to " + *c;
      auto it = std::find_if(plan_.roots.begin(), plan_.roots.end(),
                             [&](const PlannedRoot& r) { return r.path == *c; });
      if (it == plan_.roots.end()) {
        plan_.roots.push_back({*c, {source}, {}, {}, {}, {}});
      } else {
        it->sources.push_back(source);
      }
    }
    if (site.roots.empty())
      note(site.from,
           label + " has no document root (a proxy?): nothing to guard; its logs are still read");
    for (const auto& l : site.access_logs) add_log(s, l, site_root, label);
    for (const auto& l : site.error_logs)
      if (std::none_of(plan_.error_logs.begin(), plan_.error_logs.end(),
                       [&](const LogRef& e) { return e.path == l.path; }))
        plan_.error_logs.push_back(l);
  }

  void add_log(const ServerConf& s, const LogRef& l, const std::string& root,
               const std::string& label) {
    if (l.path.empty() || l.path[0] != '/') {
      note(l.from, "access log '" + l.path + "' is relative: left out; set an absolute path");
      return;
    }
    std::string source = label + ": " + (s.server == "nginx" ? "access_log" : "CustomLog") + " (" +
                         l.from.text() + ")";
    if (!l.format_name.empty()) source += ", format '" + l.format_name + "'";
    auto it = std::find_if(plan_.logs.begin(), plan_.logs.end(),
                           [&](const PlannedLog& p) { return p.path == l.path; });
    if (it != plan_.logs.end()) {
      it->sources.push_back(source);
      if (it->format != l.format && !l.format.empty())
        note(l.from, "access log " + l.path + " is written in two formats: the first is used");
      if (it->root != root && !root.empty())
        it->sources.push_back("(shared by sites with different roots: requests map to " +
                              (it->root.empty() ? std::string("no root") : it->root) + ")");
      return;
    }
    PlannedLog p{l.path, l.format, root, {source}, true};
    if (p.format.empty()) {
      p.usable = false;
      p.sources.push_back("its format is not known: written commented out");
    } else if (auto f = logparse::LogFormat::compile(p.format); !f) {
      p.usable = false;
      note(l.from, "log format of " + l.path + " cannot be read by mamori (" + f.error().message() +
                       "): written commented out");
    }
    struct stat st {};
    if (::lstat(l.path.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
      note(l.from,
           "access log " + l.path + " is a symlink: the agent never follows one; name its target");
    plan_.logs.push_back(std::move(p));
  }

  void merge_nested() {
    std::sort(plan_.roots.begin(), plan_.roots.end(),
              [](const PlannedRoot& a, const PlannedRoot& b) { return a.path < b.path; });
    std::vector<PlannedRoot> kept;
    for (auto& r : plan_.roots) {
      auto outer = std::find_if(kept.begin(), kept.end(),
                                [&](const PlannedRoot& k) { return inside(r.path, k.path); });
      if (outer == kept.end()) {
        kept.push_back(std::move(r));
        continue;
      }
      for (auto& s : r.sources) outer->sources.push_back(s);
      outer->remarks.push_back(r.path + " lies inside this root: guarded as part of it");
      nested_[outer->path].push_back(r.path.substr(outer->path.size() + 1));
    }
    plan_.roots = std::move(kept);
  }

  void look_inside(PlannedRoot& r) {
    auto fd = fs::open_root(r.path);
    if (!fd) {
      note({}, "cannot open root " + r.path + ": " + fd.error().message());
      return;
    }
    std::vector<std::string> dirs = {""};
    for (const auto& n : nested_[r.path]) add_unique(dirs, n);
    // The root's own subdirectories: a blog/ or wiki/ beside the site.
    const int dup = ::fcntl(fd->get(), F_DUPFD_CLOEXEC, 0);
    if (DIR* d = dup >= 0 ? ::fdopendir(dup) : nullptr) {
      std::vector<std::string> subdirs;
      size_t seen = 0;
      while (dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        if (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN) continue;
        if (++seen > kMaxSubdirs) {
          r.remarks.push_back(fmt::format(
              "more than {} subdirectories: applications were looked for in the first {} only",
              kMaxSubdirs, kMaxSubdirs));
          break;
        }
        if (exists_beneath(fd->get(), name, true)) subdirs.push_back(name);
      }
      ::closedir(d);
      std::sort(subdirs.begin(), subdirs.end());
      for (const auto& s : subdirs) add_unique(dirs, s);
    } else if (dup >= 0) {
      ::close(dup);
    }
    for (const auto& dir : dirs)
      for (const auto& a : detect_apps(fd->get(), dir, r.remarks)) apply_app(a, fd->get(), r);
  }

  void owners() {
    for (auto& r : plan_.roots) {
      struct stat st {};
      if (::stat(r.path.c_str(), &st) != 0) continue;
      for (const auto& u : plan_.users) {
        const passwd* pw = ::getpwnam(u.user.c_str());
        if (pw && pw->pw_uid == st.st_uid && st.st_uid != 0) {
          r.remarks.push_back("owned by " + u.user + ", the user " + u.server +
                              " runs as: PHP can change every file here (mamori puts them "
                              "back); consider chown -R root and write access for uploads only");
          break;
        }
      }
    }
  }

  void opcache(const std::vector<ServerConf>& servers, const std::vector<FpmConf>& fpm) {
    std::vector<std::string> targets;  // in the order the sites name them
    std::map<std::string, std::string> who;
    for (const auto& s : servers)
      for (const auto& site : s.sites)
        for (const auto& t : site.fastcgi) {
          add_unique(targets, t);
          who.emplace(t, site_label(s, site));
        }
    std::vector<std::string> unmatched;
    for (const auto& t : targets) {
      const FpmConf* master = nullptr;
      const FpmPool* pool = nullptr;
      for (const auto& f : fpm)
        for (const auto& p : f.pools)
          if (!pool && fpm_listens_on(p, t)) {
            master = &f;
            pool = &p;
          }
      if (!pool) {
        unmatched.push_back(t);
        continue;
      }
      auto& o = plan_.opcache;
      const std::string socket = opcache_socket(pool->listen);
      if (!o.found) {
        o.found = true;
        o.socket = socket;
        o.pid_file = master->pid_file;
        o.sources.push_back("php-fpm pool '" + pool->name + "' (" + pool->from.text() +
                            (pool->user.empty() ? "" : ", user " + pool->user) + ") listens on " +
                            pool->listen + ", where " + who[t] + " passes PHP");
        if (!master->pid_file.empty())
          o.sources.push_back("pid_file: [global] pid of " + master->main_file);
      } else if (socket != o.socket) {
        note(pool->from, "php-fpm pool '" + pool->name + "' (" + pool->listen +
                             ") serves sites too; [opcache] names one pool: with mode = \"reload\" "
                             "and a pid_file, one php-fpm master's whole cache is dropped instead");
      }
    }
    for (const auto& t : unmatched)
      note({},
           "FastCGI back end " + t + " (" + who[t] +
               ") is no php-fpm pool found in the php-fpm configuration: not used for [opcache]");
  }

  Plan plan_;
  std::map<std::string, std::vector<std::string>> nested_;
};

std::string comment(std::string_view text) {
  // One line, the administrator's bytes escaped: a path holding '\n' cannot end the
  // comment and inject a key.
  // (escape() also escapes quotes, which a comment need not.)
  std::string e = escape(text);
  for (const std::string_view q : {"\\'", "\\\""})
    for (size_t at = 0; (at = e.find(q, at)) != std::string::npos;) e.erase(at, 1), ++at;
  return "# " + e + "\n";
}

std::string toml_array(const std::vector<std::string>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + toml_string(v[i]);
  return s + "]";
}

}  // namespace

std::string toml_string(std::string_view s) {
  std::string out = "\"";
  for (const unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\u{:04X}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

Plan make_plan(const std::vector<ServerConf>& servers, const std::vector<FpmConf>& fpm) {
  return Planner().run(servers, fpm);
}

std::string render_toml(const Plan& plan) {
  std::string t;
  t += "# mamori.toml written by `mamori setup` from the web servers' own configuration:\n";
  for (const auto& r : plan.read) t += comment("  " + r);
  t += "# Review it; then `mamori init` records the baseline and\n";
  t += "# `systemctl enable --now mamori-agent` starts the guard. Every key: "
       "docs/formats/config.md.\n\n";
  t += "state_dir = " + toml_string(plan.state_dir) + "\n\n";
  for (const auto& u : plan.users)
    t += comment("The web server's user: " + u.user + " (" + u.server + ", " + u.from + ")");
  if (!plan.users.empty()) t += "\n";
  if (plan.roots.empty())
    t += "# No document root was found that mamori can guard (see the notes at the end).\n\n";
  for (const auto& r : plan.roots) {
    t += "[[root]]\n";
    for (const auto& s : r.sources) t += comment(s);
    for (const auto& s : r.remarks) t += comment(s);
    t += "path = " + toml_string(r.path) + "\n";
    t += "mode = \"restore\"\n";
    if (!r.exclude.empty()) t += "exclude = " + toml_array(r.exclude) + "\n";
    if (!r.allow_new.empty()) t += "allow_new = " + toml_array(r.allow_new) + "\n";
    t += "\n";
  }
  for (const auto& l : plan.logs) {
    const std::string p = l.usable ? "" : "# ";
    t += p + "[[log]]\n";
    for (const auto& s : l.sources) t += comment(s);
    t += p + "path = " + toml_string(l.path) + "\n";
    t += p + "format = " + toml_string(l.format.empty() ? "?" : l.format) + "\n";
    if (!l.root.empty()) t += p + "root = " + toml_string(l.root) + "\n";
    t += "\n";
  }
  if (!plan.error_logs.empty()) {
    t += "# Error logs (not read by mamori; where to look when a site breaks):\n";
    for (const auto& e : plan.error_logs) t += comment("  " + e.path + " (" + e.from.text() + ")");
    t += "\n";
  }
  if (plan.opcache.found) {
    t += "[opcache]\n";
    for (const auto& s : plan.opcache.sources) t += comment(s);
    t += "# After a restore the pool drops the stale compiled code (docs/opcache.md); the helper\n";
    t += "# script must be allowed by the pool's open_basedir, if it sets one.\n";
    t += "mode = \"invalidate\"\n";
    t += "socket = " + toml_string(plan.opcache.socket) + "\n";
    if (!plan.opcache.pid_file.empty())
      t += "pid_file = " + toml_string(plan.opcache.pid_file) + "\n";
    t += "\n";
  }
  if (!plan.notes.empty()) {
    t += "# Notes (what was found and not used, and why):\n";
    for (const auto& n : plan.notes) t += comment("  " + n.text());
  }
  return t;
}

}  // namespace mamori::webconf
