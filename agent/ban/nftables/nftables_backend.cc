#include "agent/ban/nftables/nftables_backend.h"

#include <nftables/libnftables.h>

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>

namespace mamori::ban {
namespace {

// Elements per batch in sync(): one kernel transaction each, a few hundred KiB of text.
constexpr size_t kSyncBatch = 10'000;

bool valid_table_name(const std::string& name) {
  return !name.empty() && name.size() <= 32 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

std::string setup_commands(const std::string& t) {
  // `add` leaves what exists (and the sets' elements) alone; flushing the chain before
  // adding its rules keeps a restart from duplicating them. All in one transaction.
  return fmt::format(
      "add table inet {0}\n"
      "add set inet {0} banned4 {{ type ipv4_addr; flags timeout; }}\n"
      "add set inet {0} banned6 {{ type ipv6_addr; flags timeout; }}\n"
      "add set inet {0} banned4net {{ type ipv4_addr; flags interval, timeout; }}\n"
      "add set inet {0} banned6net {{ type ipv6_addr; flags interval, timeout; }}\n"
      "add chain inet {0} prerouting {{ type filter hook prerouting priority raw; policy accept; "
      "}}\n"
      "flush chain inet {0} prerouting\n"
      "add rule inet {0} prerouting ip saddr @banned4 counter drop\n"
      "add rule inet {0} prerouting ip6 saddr @banned6 counter drop\n"
      "add rule inet {0} prerouting ip saddr @banned4net counter drop\n"
      "add rule inet {0} prerouting ip6 saddr @banned6net counter drop\n",
      t);
}

std::string element(const IpAddress& ip, int64_t ttl_s) {
  return ttl_s > 0 ? fmt::format("{} timeout {}s", ip.to_string(), ttl_s) : ip.to_string();
}

// nft's error text is "Error: what\n<the command>\n   ^^^^" per problem: keep the first
// line of each, which is what a human needs.
std::string first_lines(const char* text) {
  std::string out;
  std::string_view rest = text ? text : "";
  while (!rest.empty()) {
    const auto nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    if (line.starts_with("Error: ")) out += (out.empty() ? "" : "; ") + std::string(line.substr(7));
    rest = nl == std::string_view::npos ? "" : rest.substr(nl + 1);
  }
  if (out.empty()) out = std::string(text ? text : "nft failed without a message");
  if (out.size() > 1024) out.resize(1024);
  return out;
}

}  // namespace

Result<std::unique_ptr<NftablesBackend>> NftablesBackend::open(const std::string& table,
                                                               const Clock& clock) {
  if (!valid_table_name(table))
    return fail("nftables", table, EINVAL, "the table name must be 1-32 letters, digits or '_'");
  nft_ctx* ctx = nft_ctx_new(NFT_CTX_DEFAULT);
  if (!ctx) return fail("nft_ctx_new", table, ENOMEM);
  if (nft_ctx_buffer_output(ctx) != 0 || nft_ctx_buffer_error(ctx) != 0) {
    nft_ctx_free(ctx);
    return fail("nft_ctx_buffer_output", table, ENOMEM);
  }
  std::unique_ptr<NftablesBackend> backend(new NftablesBackend(ctx, table, clock));
  MAMORI_TRY(backend->run(setup_commands(table)));
  return backend;
}

NftablesBackend::~NftablesBackend() { nft_ctx_free(ctx_); }

Result<std::string> NftablesBackend::run(const std::string& commands, bool json) {
  MutexLock lock(mu_);
  nft_ctx_output_set_flags(ctx_, json ? NFT_CTX_OUTPUT_JSON : 0);
  const int rc = nft_run_cmd_from_buffer(ctx_, commands.c_str());
  // Reading a buffer also empties it for the next command.
  std::string output = nft_ctx_get_output_buffer(ctx_);
  const char* error = nft_ctx_get_error_buffer(ctx_);
  if (rc != 0) return fail("nft", "table inet " + table_, 0, first_lines(error));
  return output;
}

std::string NftablesBackend::set_of(const IpAddress& ip) const {
  return fmt::format("inet {} {}", table_, ip.v4 ? "banned4" : "banned6");
}

Status NftablesBackend::ban(const IpAddress& ip, std::chrono::seconds ttl,
                            const nlohmann::json& /*event*/) {
  // Kernels before 6.10 keep an existing element's timeout on `add`: add (a no-op when
  // present), delete and add again, in one transaction, so the new TTL always wins and
  // the address is never unbanned in between.
  const std::string set = set_of(ip);
  const std::string elem = element(ip, ttl.count());
  const std::string commands = fmt::format(
      "add element {0} {{ {1} }}\ndelete element {0} {{ {2} }}\nadd element {0} {{ {1} }}\n", set,
      elem, ip.to_string());
  if (run(commands)) return ok();
  // Someone removed our table (`nft flush ruleset`): put it back and try once more.
  MAMORI_TRY(run(setup_commands(table_)));
  MAMORI_TRY(run(commands));
  return ok();
}

std::string NftablesBackend::net_set_of(const Cidr& network) const {
  return fmt::format("inet {} {}", table_, network.base.v4 ? "banned4net" : "banned6net");
}

Status NftablesBackend::ban_prefix(const Cidr& network, std::chrono::seconds ttl,
                                   const nlohmann::json& /*event*/) {
  // As ban(): add, delete, add, so the new TTL wins on every kernel.
  const std::string set = net_set_of(network);
  const std::string net = network.to_string();
  const std::string elem = ttl.count() > 0 ? fmt::format("{} timeout {}s", net, ttl.count()) : net;
  const std::string commands = fmt::format(
      "add element {0} {{ {1} }}\ndelete element {0} {{ {2} }}\nadd element {0} {{ {1} }}\n", set,
      elem, net);
  if (run(commands)) return ok();
  MAMORI_TRY(run(setup_commands(table_)));
  MAMORI_TRY(run(commands));
  return ok();
}

Status NftablesBackend::unban_prefix(const Cidr& network, const nlohmann::json& /*event*/) {
  const std::string set = net_set_of(network);
  MAMORI_TRY(run(fmt::format("add element {0} {{ {1} }}\ndelete element {0} {{ {1} }}\n", set,
                             network.to_string())));
  return ok();
}

Status NftablesBackend::unban(const IpAddress& ip, const nlohmann::json& /*event*/) {
  // Adding first makes the delete succeed whether or not the address was banned.
  const std::string set = set_of(ip);
  MAMORI_TRY(run(fmt::format("add element {0} {{ {1} }}\ndelete element {0} {{ {1} }}\n", set,
                             ip.to_string())));
  return ok();
}

Result<std::vector<AppliedBan>> NftablesBackend::list() {
  const int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(clock_.now().time_since_epoch()).count();
  std::vector<AppliedBan> out;
  for (const char* set : {"banned4", "banned6", "banned4net", "banned6net"}) {
    const std::string text =
        MAMORI_TRY(run(fmt::format("list set inet {} {}", table_, set), /*json=*/true));
    const auto doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.contains("nftables") || !doc["nftables"].is_array())
      return fail("nft list set", set, EBADMSG, "unexpected JSON from libnftables");
    // nlohmann::json throws on a shape it did not expect; that stays in here.
    try {
      for (const auto& item : doc["nftables"]) {
        if (!item.contains("set")) continue;
        for (const auto& e : item["set"].value("elem", nlohmann::json::array())) {
          // A plain string is an element without timeout; an object carries its expiry.
          // A network without timeout is {"prefix": {...}}; with one, it is the "val".
          const auto& elem = e.is_object() && e.contains("elem") ? e.at("elem") : e;
          const bool timed = elem.is_object() && elem.contains("val");
          const auto& val = timed ? elem.at("val") : elem;
          const auto expires = timed ? elem.value("expires", int64_t{-1}) : int64_t{-1};
          if (val.is_object() && val.contains("prefix")) {  // a network: {"addr", "len"}
            const auto& p = val.at("prefix");
            const auto net = Cidr::parse(
                fmt::format("{}/{}", p.at("addr").get<std::string>(), p.at("len").get<int>()));
            if (!net) return fail("nft list set", set, EBADMSG, "an element is not a network");
            out.push_back({net->base, expires >= 0 ? now + expires : 0, net->prefix});
            continue;
          }
          const auto ip = IpAddress::parse(val.get<std::string>());
          if (!ip) return fail("nft list set", set, EBADMSG, "an element is not an address");
          out.push_back({*ip, expires >= 0 ? now + expires : 0});
        }
      }
    } catch (const nlohmann::json::exception& ex) {
      return fail("nft list set", set, EBADMSG, ex.what());
    }
  }
  return out;
}

Status NftablesBackend::sync(const std::vector<AppliedBan>& bans) {
  const int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(clock_.now().time_since_epoch()).count();
  // The first batch empties the sets and refills them in one transaction, so a restart
  // with a list that fits in one batch never shows a moment without bans.
  std::string batch =
      setup_commands(table_) + fmt::format(
                                   "flush set inet {0} banned4\nflush set inet {0} banned6\n"
                                   "flush set inet {0} banned4net\nflush set inet {0} banned6net\n",
                                   table_);
  size_t in_batch = 0;
  for (const auto& b : bans) {
    if (b.expires_at != 0 && b.expires_at <= now) continue;
    const int64_t ttl = b.expires_at == 0 ? 0 : b.expires_at - now;
    if (b.prefix) {
      const Cidr net{b.ip, b.prefix};
      batch += fmt::format("add element {} {{ {}{} }}\n", net_set_of(net), net.to_string(),
                           ttl > 0 ? fmt::format(" timeout {}s", ttl) : std::string());
    } else {
      batch += fmt::format("add element {} {{ {} }}\n", set_of(b.ip), element(b.ip, ttl));
    }
    if (++in_batch == kSyncBatch) {
      MAMORI_TRY(run(batch));
      batch.clear();
      in_batch = 0;
    }
  }
  if (!batch.empty()) MAMORI_TRY(run(batch));
  return ok();
}

}  // namespace mamori::ban
