#include "agent/guard/deploy_tree.h"

#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "core/fs/admin_files.h"

namespace mamori::guard {
namespace {

// Subscribes a netlink socket to the process connector; an invalid fd when that is not
// possible here (the /proc walk remains).
UniqueFd open_connector() {
  UniqueFd fd(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_CONNECTOR));
  if (!fd.valid()) return {};
  // Room for a burst of forks between two batches (a deploy running `find -exec`).
  const int rcvbuf = 8 << 20;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0)
    (void)::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  addr.nl_groups = CN_IDX_PROC;
  addr.nl_pid = 0;  // the kernel assigns one
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return {};
  // nlmsghdr, cn_msg, then the operation (cn_msg ends in a flexible array: a buffer).
  alignas(nlmsghdr) char msg[NLMSG_SPACE(sizeof(cn_msg) + sizeof(proc_cn_mcast_op))] = {};
  auto* nl = reinterpret_cast<nlmsghdr*>(msg);
  nl->nlmsg_len = NLMSG_LENGTH(sizeof(cn_msg) + sizeof(proc_cn_mcast_op));
  nl->nlmsg_type = NLMSG_DONE;
  auto* cn = static_cast<cn_msg*>(NLMSG_DATA(nl));
  cn->id.idx = CN_IDX_PROC;
  cn->id.val = CN_VAL_PROC;
  cn->len = sizeof(proc_cn_mcast_op);
  const proc_cn_mcast_op op = PROC_CN_MCAST_LISTEN;
  std::memcpy(cn->data, &op, sizeof op);
  if (::send(fd.get(), msg, nl->nlmsg_len, 0) != static_cast<ssize_t>(nl->nlmsg_len)) return {};
  return fd;
}

}  // namespace

bool DeployTree::stat_of(pid_t pid, pid_t& ppid, uint64_t& start) const {
  auto text = fs::read_small_file(fmt::format("{}/{}/stat", proc_, pid), 4096);
  if (!text) return false;
  // "PID (comm) S PPID ... starttime(22nd)": comm may hold spaces and ')'.
  const auto close = text->rfind(')');
  if (close == std::string::npos) return false;
  std::vector<std::string_view> fields;
  std::string_view rest = std::string_view(*text).substr(close + 1);
  while (!rest.empty()) {
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    const auto end = rest.find(' ');
    fields.push_back(rest.substr(0, end));
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end);
  }
  // fields[0] is the state (field 3): the parent is field 4, the start time field 22.
  if (fields.size() < 20) return false;
  ppid = static_cast<pid_t>(std::strtol(std::string(fields[1]).c_str(), nullptr, 10));
  start = std::strtoull(std::string(fields[19]).c_str(), nullptr, 10);
  return true;
}

Result<std::unique_ptr<DeployTree>> DeployTree::start(pid_t root, std::string proc,
                                                      bool follow_forks) {
  std::unique_ptr<DeployTree> t(new DeployTree(root, 0, std::move(proc)));
  pid_t ppid = 0;
  if (root <= 1 || !t->stat_of(root, ppid, t->root_start_))
    return fail("deploy", fmt::format("pid {}", root), ESRCH, "is not a running process");
  if (follow_forks) t->nl_ = open_connector();
  t->members_.insert(root);
  return t;
}

bool DeployTree::root_alive() const {
  pid_t ppid = 0;
  uint64_t start = 0;
  return stat_of(root_, ppid, start) && start == root_start_;
}

void DeployTree::update() {
  if (!nl_.valid()) return;
  alignas(nlmsghdr) char buf[1 << 16];
  while (true) {
    const ssize_t n = ::recv(nl_.get(), buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {  // the socket overflowed: forks were lost, walk /proc for them
        ++lost_;
        continue;
      }
      return;  // EAGAIN: all read
    }
    auto len = static_cast<size_t>(n);
    for (auto* nl = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(nl, len); nl = NLMSG_NEXT(nl, len)) {
      if (nl->nlmsg_type != NLMSG_DONE) continue;
      // Copied out, not cast: the event sits 4-byte aligned behind the headers and
      // proc_event needs 8 (UBSan).
      cn_msg cn{};
      if (nl->nlmsg_len < NLMSG_LENGTH(sizeof cn)) continue;
      std::memcpy(&cn, NLMSG_DATA(nl), sizeof cn);
      if (cn.id.idx != CN_IDX_PROC || cn.id.val != CN_VAL_PROC) continue;
      proc_event ev{};
      const size_t have =
          std::min<size_t>({cn.len, sizeof ev, nl->nlmsg_len - NLMSG_LENGTH(sizeof cn)});
      if (have < offsetof(proc_event, event_data) + sizeof ev.event_data.fork) continue;
      std::memcpy(&ev, static_cast<const char*>(NLMSG_DATA(nl)) + sizeof cn, have);
      if (ev.what != proc_event::PROC_EVENT_FORK) continue;
      const auto& f = ev.event_data.fork;
      if (f.child_pid != f.child_tgid) continue;  // a new thread: same process
      const auto child = static_cast<pid_t>(f.child_tgid);
      walked_.erase(child);
      if (members_.count(static_cast<pid_t>(f.parent_tgid))) {
        if (members_.size() >= kMaxMembers) {  // past the bound, the walk decides
          members_.clear();
          members_.insert(root_);
          ++lost_;
        }
        members_.insert(child);
      } else {
        members_.erase(child);  // a pid reused outside the tree
      }
    }
  }
}

bool DeployTree::owns(pid_t pid) {
  if (pid <= 0) return false;
  if (members_.count(pid)) return true;
  // Not seen forking from the tree. With the connector and no loss, that settles it;
  // otherwise walk up the live parent chain.
  if (nl_.valid() && lost_ == 0) return false;
  std::vector<std::pair<pid_t, uint64_t>> chain;
  bool member = false;
  for (pid_t p = pid; chain.size() < kMaxDepth;) {
    pid_t ppid = 0;
    uint64_t start = 0;
    if (!stat_of(p, ppid, start)) break;  // gone: not known to be ours
    if (p == root_) {
      member = start == root_start_;
      break;
    }
    if (auto it = walked_.find(p); it != walked_.end() && it->second.first == start) {
      member = it->second.second;
      break;
    }
    chain.emplace_back(p, start);
    if (ppid <= 1) break;
    p = ppid;
  }
  if (walked_.size() + chain.size() > kMaxWalked) walked_.clear();
  for (const auto& [p, start] : chain) walked_[p] = {start, member};
  return member;
}

}  // namespace mamori::guard
