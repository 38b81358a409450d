#pragma once
// What the honeypot does before it serves, in order (main.cc): host keys (read, or made
// on the first start: 0600 in a 0700 directory, as root), the listening socket (bound as
// root, so port 22 works), the state handed to the unprivileged user, the privilege drop,
// then the node seed (the fake system's identity) as that user.

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/base/env.h"
#include "core/base/result.h"
#include "core/base/unique_fd.h"

struct ssh_key_struct;

namespace mamori::honeypot {

// One host key and the file it is kept in; the key is owned (ssh_key_free) by whoever
// takes it (the ssh_bind).
struct HostKey {
  std::string path;
  ssh_key_struct* key = nullptr;
  bool created = false;
};

// The ed25519, ECDSA P-256 and RSA 3072 keys of `dir` (as OpenSSH's sshd has them),
// each made when missing. The directory is made 0700; a key file readable by others is
// refused (a host key is a secret).
Result<std::vector<HostKey>> load_or_create_host_keys(Env& env, const std::string& dir);

// A listening TCP socket on address:port (SO_REUSEADDR, non-blocking, close-on-exec).
Result<UniqueFd> listen_on(const std::string& address, uint16_t port, int backlog);

struct DropTarget {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name;
};
// The user to drop to; an error names a missing user.
Result<DropTarget> lookup_user(const std::string& name);

// Gives `dir` and the regular files directly in it to `to` (never through a symlink: the
// directory is opened O_NOFOLLOW, its entries changed with AT_SYMLINK_NOFOLLOW), so the
// dropped process can write its outbox and state there. Subdirectories are left alone
// (the host keys stay root's).
// With `files` false only the directory is given (STATE/downloads: what is in it was
// written by that user already). A file with more than one link is never given.
Status give_dir_to(const std::string& dir, const DropTarget& to, bool files = true);

// setgroups(none), setgid, setuid, then PR_SET_NO_NEW_PRIVS and not dumpable (the host
// keys are in memory); checks that root cannot be regained.
Status drop_privileges(const DropTarget& to);

// Started unprivileged (systemd's User= with AmbientCapabilities=CAP_NET_BIND_SERVICE for
// port 22): once the port is bound no capability is needed any more, so every set is
// cleared (ambient, effective, permitted, inheritable), then PR_SET_NO_NEW_PRIVS.
Status drop_capabilities();

// Raises the soft limit on open files to the hard one (each connection is a descriptor)
// and returns it.
uint64_t raise_fd_limit();

// STATE/node-seed: 16 hex digits made once per node (random), the fake system's
// identity; an unreadable or malformed file is an error (a new seed would change the
// fake host under a returning attacker's eyes).
Result<uint64_t> load_or_create_node_seed(Env& env, const std::string& state_dir);

}  // namespace mamori::honeypot
