#include "agent/ban/ban_list.h"

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>

namespace mamori::ban {
namespace {

constexpr int kSchemaVersion = 2;

// docs/bans.md describes this schema. The count of current bans is kept by triggers, so
// the size limit costs one row read, not a scan, whichever process changed the list.
constexpr const char* kSchema = R"SQL(
CREATE TABLE IF NOT EXISTS bans(
  ip TEXT PRIMARY KEY,
  first_seen INTEGER NOT NULL,
  last_ban INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  offences INTEGER NOT NULL,
  rule TEXT NOT NULL,
  reason TEXT NOT NULL,
  source TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS bans_by_expiry ON bans(expires_at);
CREATE TABLE IF NOT EXISTS offences(
  ip TEXT PRIMARY KEY,
  count INTEGER NOT NULL,
  last_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS offences_by_time ON offences(last_at);
CREATE TABLE IF NOT EXISTS prefix_offenders(
  prefix TEXT NOT NULL,
  ip TEXT NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY(prefix, ip)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS prefix_offenders_by_time ON prefix_offenders(at);
CREATE TABLE IF NOT EXISTS counts(name TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO counts VALUES('bans', 0);
CREATE TRIGGER IF NOT EXISTS bans_added AFTER INSERT ON bans
  BEGIN UPDATE counts SET n = n + 1 WHERE name = 'bans'; END;
CREATE TRIGGER IF NOT EXISTS bans_removed AFTER DELETE ON bans
  BEGIN UPDATE counts SET n = n - 1 WHERE name = 'bans'; END;
PRAGMA user_version = 2;
)SQL";

constexpr const char* kColumns =
    "ip, first_seen, last_ban, expires_at, offences, rule, reason, source";

// Far more offences than any TTL needs: factor^64 is past every cap.
constexpr uint32_t kMaxCount = 64;

// The network of `len` bits (in the address's own family) that holds `ip`.
Cidr network_of(const IpAddress& ip, uint8_t len) {
  Cidr c;
  c.base = ip;
  c.prefix = len;
  const unsigned bits = ip.v4 ? 96u + len : len;
  for (unsigned i = 0; i < 16; ++i) {
    const unsigned lo = i * 8;
    if (bits <= lo) {
      c.base.bytes[i] = 0;
    } else if (bits < lo + 8) {
      c.base.bytes[i] &= static_cast<uint8_t>(0xff << (lo + 8 - bits));
    }
  }
  return c;
}

bool overlaps(const Cidr& a, const Cidr& b) { return a.contains(b.base) || b.contains(a.base); }

Result<BanEntry> read_entry(const db::Stmt& s, const std::string& path) {
  BanEntry e;
  const std::string_view key = s.blob(0);
  if (key.find('/') != std::string_view::npos) {
    auto net = Cidr::parse(key);
    if (!net) return fail("ban list", path, EBADMSG, fmt::format("bad prefix '{}'", key));
    e.ip = net->base;
    e.prefix = net->prefix;
  } else {
    const auto ip = IpAddress::parse(key);
    if (!ip) return fail("ban list", path, EBADMSG, fmt::format("bad address '{}'", key));
    e.ip = *ip;
  }
  e.first_seen = s.int64(1);
  e.last_ban = s.int64(2);
  e.expires_at = s.int64(3);
  e.offences = static_cast<uint32_t>(s.int64(4));
  e.rule = std::string(s.blob(5));
  e.reason = std::string(s.blob(6));
  e.source = std::string(s.blob(7));
  return e;
}

Result<std::vector<BanEntry>> read_all(db::Stmt& s, const std::string& path) {
  std::vector<BanEntry> out;
  while (MAMORI_TRY(s.step())) out.push_back(MAMORI_TRY(read_entry(s, path)));
  return out;
}

}  // namespace

Cidr BanEntry::network() const {
  return prefix ? network_of(ip, prefix) : network_of(ip, ip.v4 ? 32 : 128);
}

std::string BanEntry::key() const { return prefix ? network().to_string() : ip.to_string(); }

Result<BanList> BanList::open(const std::string& path, BanOptions options) {
  std::vector<Cidr> allow;
  for (const auto& text : options.allowlist) {
    auto cidr = Cidr::parse(text);
    if (!cidr)
      return fail("ban allowlist", text, EINVAL,
                  cidr.error().detail.empty() ? cidr.error().message() : cidr.error().detail);
    allow.push_back(*cidr);
  }
  auto db = MAMORI_TRY(db::Db::open(path, db::Db::Mode::kReadWrite));
  auto version = MAMORI_TRY(db.prepare("PRAGMA user_version"));
  MAMORI_TRY(version.step());
  const int64_t found = version.int64(0);
  version.reset();
  if (found > kSchemaVersion)
    return fail(
        "ban list", path, EBADMSG,
        fmt::format("schema version {} is newer than this mamori's {}", found, kSchemaVersion));
  // Any other file (a catalog, a foreign database) has tables but no version of ours.
  auto tables = MAMORI_TRY(
      db.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT IN "
                 "('bans', 'offences', 'counts', 'prefix_offenders')"));
  MAMORI_TRY(tables.step());
  if (tables.int64(0) != 0)
    return fail("ban list", path, EBADMSG, "the file holds other tables: not a ban list");
  tables.reset();
  auto txn = MAMORI_TRY(db::Transaction::begin(db));
  MAMORI_TRY(db.exec(kSchema));
  MAMORI_TRY(txn.commit());
  return BanList(std::move(db), std::move(options), std::move(allow));
}

bool BanList::allowlisted(const IpAddress& ip) const { return find_network(allow_, ip) != nullptr; }

std::chrono::seconds BanList::ttl_for(uint32_t offences) const {
  int64_t ttl = std::max<int64_t>(1, options_.base_ttl_s);
  for (uint32_t i = 1; i < offences && ttl < options_.max_ttl_s; ++i)
    ttl = ttl > options_.max_ttl_s / std::max(1, options_.factor) ? options_.max_ttl_s
                                                                  : ttl * options_.factor;
  return std::chrono::seconds(std::min(ttl, std::max<int64_t>(1, options_.max_ttl_s)));
}

Result<std::optional<BanEntry>> BanList::get_locked(const std::string& key) {
  auto* s = MAMORI_TRY(db_.cached(fmt::format("SELECT {} FROM bans WHERE ip = ?", kColumns)));
  s->bind_text(1, key);
  if (!MAMORI_TRY(s->step())) return std::optional<BanEntry>();
  auto entry = read_entry(*s, db_.path());
  s->reset();
  if (!entry) return tl::unexpected(std::move(entry).error());
  return std::optional<BanEntry>(std::move(*entry));
}

Result<std::optional<BanEntry>> BanList::get(const IpAddress& ip) {
  return get_locked(ip.to_string());
}

Result<uint64_t> BanList::size() {
  auto* s = MAMORI_TRY(db_.cached("SELECT n FROM counts WHERE name = 'bans'"));
  const bool row = MAMORI_TRY(s->step());
  const int64_t n = row ? s->int64(0) : 0;
  s->reset();
  return static_cast<uint64_t>(std::max<int64_t>(0, n));
}

Result<int64_t> BanList::data_version() {
  auto* s = MAMORI_TRY(db_.cached("PRAGMA data_version"));
  MAMORI_TRY(s->step());
  const int64_t v = s->int64(0);
  s->reset();
  return v;
}

Result<BanDecision> BanList::ban(const IpAddress& ip, const BanRequest& request, int64_t now) {
  const std::string key = ip.to_string();
  if (!request.force && allowlisted(ip))
    return fail("ban", key, EPERM, "the address is on the ban allowlist");
  auto txn = MAMORI_TRY(db::Transaction::begin(db_));
  const auto current = MAMORI_TRY(get_locked(key));
  const bool active = current && (current->expires_at == 0 || current->expires_at > now);
  const auto remaining = [&](int64_t expires_at) {
    return expires_at == 0 ? kPermanent : std::chrono::seconds(expires_at - now);
  };

  BanDecision d;
  if (active && !request.ttl) {
    d.outcome = BanOutcome::kAlreadyBanned;
    d.entry = *current;
    d.ttl = remaining(current->expires_at);
    return d;
  }
  if (active) {
    d.outcome = BanOutcome::kReplaced;
    d.entry = *current;
  } else {
    const uint32_t count = MAMORI_TRY(next_offence(key, now));
    if (!current) {
      const uint64_t n = MAMORI_TRY(size());
      if (n >= options_.max_entries)
        return fail(
            "ban", key, ENOSPC,
            fmt::format("the ban list is full: {} bans, the limit is {}", n, options_.max_entries));
    }
    d.outcome = BanOutcome::kNew;
    d.entry.ip = ip;
    d.entry.first_seen = now;
    d.entry.offences = count;
  }
  d.ttl = request.ttl ? *request.ttl : ttl_for(d.entry.offences);
  d.entry.last_ban = now;
  d.entry.expires_at = d.ttl == kPermanent ? 0 : now + d.ttl.count();
  d.entry.rule = request.rule;
  // Changing a ban's TTL by hand keeps why it was banned, unless a new reason is given.
  if (!active || !request.reason.empty()) d.entry.reason = request.reason;
  d.entry.source = request.source;
  auto* w = MAMORI_TRY(db_.cached(
      current
          ? "UPDATE bans SET first_seen = ?2, last_ban = ?3, expires_at = ?4, offences = ?5, "
            "rule = ?6, reason = ?7, source = ?8 WHERE ip = ?1"
          : fmt::format("INSERT INTO bans({}) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", kColumns)));
  w->bind_text(1, key)
      .bind(2, d.entry.first_seen)
      .bind(3, d.entry.last_ban)
      .bind(4, d.entry.expires_at)
      .bind(5, int64_t{d.entry.offences})
      .bind_text(6, d.entry.rule)
      .bind_text(7, d.entry.reason)
      .bind_text(8, d.entry.source);
  MAMORI_TRY(w->run());
  if (d.outcome == BanOutcome::kNew && request.source != "manual" && options_.prefix_offenders)
    d.prefix_ban = MAMORI_TRY(escalate(ip, now));
  MAMORI_TRY(txn.commit());
  return d;
}

Result<uint32_t> BanList::next_offence(const std::string& key, int64_t now) {
  // A new offence: the next in the series if the previous one was within the window.
  auto* h = MAMORI_TRY(db_.cached("SELECT count, last_at FROM offences WHERE ip = ?"));
  h->bind_text(1, key);
  uint32_t count = 1;
  if (MAMORI_TRY(h->step()) && now - h->int64(1) <= options_.escalation_window_s)
    count = static_cast<uint32_t>(std::min<int64_t>(h->int64(0), kMaxCount - 1)) + 1;
  h->reset();
  auto* put = MAMORI_TRY(db_.cached(
      "INSERT INTO offences(ip, count, last_at) VALUES(?, ?, ?) "
      "ON CONFLICT(ip) DO UPDATE SET count = excluded.count, last_at = excluded.last_at"));
  MAMORI_TRY(put->bind_text(1, key).bind(2, int64_t{count}).bind(3, now).run());
  return count;
}

Result<std::optional<PrefixBan>> BanList::escalate(const IpAddress& ip, int64_t now) {
  const Cidr net = network_of(ip, ip.v4 ? options_.prefix_v4 : options_.prefix_v6);
  const std::string key = net.to_string();
  auto* put =
      MAMORI_TRY(db_.cached("INSERT INTO prefix_offenders(prefix, ip, at) VALUES(?, ?, ?) "
                            "ON CONFLICT(prefix, ip) DO UPDATE SET at = excluded.at"));
  MAMORI_TRY(put->bind_text(1, key).bind_text(2, ip.to_string()).bind(3, now).run());
  auto* old = MAMORI_TRY(db_.cached("DELETE FROM prefix_offenders WHERE prefix = ? AND at < ?"));
  MAMORI_TRY(old->bind_text(1, key).bind(2, now - options_.prefix_window_s).run());
  auto* count = MAMORI_TRY(db_.cached("SELECT count(*) FROM prefix_offenders WHERE prefix = ?"));
  count->bind_text(1, key);
  MAMORI_TRY(count->step());
  const auto offenders = static_cast<uint32_t>(count->int64(0));
  count->reset();
  std::optional<PrefixBan> none;
  if (offenders < options_.prefix_offenders) return none;
  // Never over an address the operator said must not be banned.
  if (std::any_of(allow_.begin(), allow_.end(), [&](const Cidr& a) { return overlaps(a, net); }))
    return none;
  if (const auto current = MAMORI_TRY(get_locked(key));
      current && (current->expires_at == 0 || current->expires_at > now))
    return none;
  auto* prefixes = MAMORI_TRY(db_.cached(
      "SELECT count(*) FROM bans WHERE instr(ip, '/') > 0 AND (expires_at = 0 OR expires_at > ?)"));
  prefixes->bind(1, now);
  MAMORI_TRY(prefixes->step());
  const auto current_prefixes = static_cast<uint64_t>(prefixes->int64(0));
  prefixes->reset();
  if (current_prefixes >= options_.max_prefix_bans) return none;
  if (MAMORI_TRY(size()) >= options_.max_entries) return none;

  PrefixBan p;
  p.offenders = offenders;
  p.entry.ip = net.base;
  p.entry.prefix = net.prefix;
  p.entry.first_seen = now;
  p.entry.last_ban = now;
  p.entry.offences = MAMORI_TRY(next_offence(key, now));
  p.ttl = ttl_for(p.entry.offences);
  p.entry.expires_at = now + p.ttl.count();
  p.entry.rule = "prefix-escalation";
  p.entry.reason = fmt::format("{} addresses of {} banned within {} s", offenders, key,
                               options_.prefix_window_s);
  p.entry.source = "escalation";
  auto* w = MAMORI_TRY(db_.cached(fmt::format(
      "INSERT OR REPLACE INTO bans({}) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", kColumns)));
  w->bind_text(1, key)
      .bind(2, p.entry.first_seen)
      .bind(3, p.entry.last_ban)
      .bind(4, p.entry.expires_at)
      .bind(5, int64_t{p.entry.offences})
      .bind_text(6, p.entry.rule)
      .bind_text(7, p.entry.reason)
      .bind_text(8, p.entry.source);
  MAMORI_TRY(w->run());
  return std::optional<PrefixBan>(std::move(p));
}

Result<bool> BanList::unban(const IpAddress& ip) { return unban_key(ip.to_string()); }

Result<bool> BanList::unban(const Cidr& network) {
  const bool single = network.prefix == (network.base.v4 ? 32 : 128);
  return unban_key(single ? network.base.to_string() : network.to_string());
}

Result<bool> BanList::unban_key(const std::string& key) {
  auto txn = MAMORI_TRY(db::Transaction::begin(db_));
  auto* del = MAMORI_TRY(db_.cached("DELETE FROM bans WHERE ip = ?"));
  MAMORI_TRY(del->bind_text(1, key).run());
  const bool removed = sqlite3_changes(db_.raw()) > 0;
  auto* forget = MAMORI_TRY(db_.cached("DELETE FROM offences WHERE ip = ?"));
  MAMORI_TRY(forget->bind_text(1, key).run());
  MAMORI_TRY(txn.commit());
  return removed;
}

Result<std::vector<BanEntry>> BanList::list() {
  auto s = MAMORI_TRY(db_.prepare(
      fmt::format("SELECT {} FROM bans ORDER BY expires_at = 0, expires_at, ip", kColumns)));
  return read_all(s, db_.path());
}

Result<std::vector<BanEntry>> BanList::expire(int64_t now) {
  auto txn = MAMORI_TRY(db::Transaction::begin(db_));
  auto s = MAMORI_TRY(db_.prepare(
      fmt::format("SELECT {} FROM bans WHERE expires_at != 0 AND expires_at <= ?", kColumns)));
  s.bind(1, now);
  auto expired = MAMORI_TRY(read_all(s, db_.path()));
  auto del = MAMORI_TRY(db_.prepare("DELETE FROM bans WHERE expires_at != 0 AND expires_at <= ?"));
  MAMORI_TRY(del.bind(1, now).run());
  auto old = MAMORI_TRY(db_.prepare("DELETE FROM offences WHERE last_at < ?"));
  MAMORI_TRY(old.bind(1, now - options_.escalation_window_s).run());
  auto cap = MAMORI_TRY(
      db_.prepare("DELETE FROM offences WHERE ip IN (SELECT ip FROM offences ORDER BY last_at "
                  "LIMIT max(0, (SELECT count(*) FROM offences) - ?))"));
  MAMORI_TRY(cap.bind(1, static_cast<int64_t>(options_.max_entries)).run());
  auto prefixes = MAMORI_TRY(db_.prepare("DELETE FROM prefix_offenders WHERE at < ?"));
  MAMORI_TRY(prefixes.bind(1, now - options_.prefix_window_s).run());
  MAMORI_TRY(txn.commit());
  return expired;
}

std::vector<AppliedBan> BanList::applied(const std::vector<BanEntry>& entries) {
  std::vector<AppliedBan> out;
  out.reserve(entries.size());
  for (const auto& e : entries) out.push_back({e.ip, e.expires_at, e.prefix});
  return out;
}

}  // namespace mamori::ban
