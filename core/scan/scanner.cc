#include "core/scan/scanner.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <yara.h>

namespace mamori::scan {
namespace {

struct ScanContext {
  std::vector<Match> matches;
};

Match match_of(const YR_RULE* rule) {
  Match m;
  m.rule = rule->identifier;
  m.ns = rule->ns->name;
  const char* tag = nullptr;
  yr_rule_tags_foreach(rule, tag) { m.tags.emplace_back(tag); }
  const YR_META* meta = nullptr;
  yr_rule_metas_foreach(rule, meta) {
    if (meta->type != META_TYPE_STRING) continue;
    if (std::strcmp(meta->identifier, "description") == 0) m.description = meta->string;
    if (std::strcmp(meta->identifier, "severity") == 0) m.severity = meta->string;
  }
  return m;
}

int on_scan_message(YR_SCAN_CONTEXT* /*context*/, int message, void* data, void* user) {
  if (message == CALLBACK_MSG_RULE_MATCHING)
    static_cast<ScanContext*>(user)->matches.push_back(match_of(static_cast<YR_RULE*>(data)));
  // CALLBACK_MSG_TOO_MANY_MATCHES (a string matching everywhere): libyara stops
  // collecting that string and goes on, which is what a verdict needs.
  return CALLBACK_CONTINUE;
}

const Matches& no_matches() {
  static const Matches kNone = std::make_shared<const std::vector<Match>>();
  return kNone;
}

}  // namespace

Scanner::Scanner(std::shared_ptr<const RuleSet> rules, Limits limits)
    : rules_(std::move(rules)), limits_(limits), cache_(limits.cache_entries) {}

Scanner::~Scanner() {
  MutexLock lock(mu_);
  for (YR_SCANNER* s : idle_) yr_scanner_destroy(s);
}

Result<YR_SCANNER*> Scanner::borrow() {
  {
    MutexLock lock(mu_);
    if (!idle_.empty()) {
      YR_SCANNER* s = idle_.back();
      idle_.pop_back();
      return s;
    }
  }
  YR_SCANNER* s = nullptr;
  if (const int rc = yr_scanner_create(rules_->get(), &s); rc != ERROR_SUCCESS)
    return fail_msg("yr_scanner_create", "", "yara error " + std::to_string(rc));
  // Fast mode: a string's first hit is enough for a verdict. libyara still finds every
  // hit of a string a condition counts (#a > 100): only the others stop at the first.
  yr_scanner_set_flags(s, SCAN_FLAGS_FAST_MODE);
  yr_scanner_set_timeout(s, static_cast<int>(std::max<int64_t>(1, limits_.timeout.count())));
  return s;
}

void Scanner::give_back(YR_SCANNER* s) {
  MutexLock lock(mu_);
  idle_.push_back(s);
}

void Scanner::count(const Verdict& v) {
  MutexLock lock(mu_);
  if (v.cached)
    ++stats_.cache_hits;
  else
    ++stats_.scans;
  if (v.truncated) ++stats_.truncated;
  if (v.timed_out) ++stats_.timeouts;
  if (v.matched()) ++stats_.matched;
}

ScanStats Scanner::stats() const {
  MutexLock lock(mu_);
  return stats_;
}

Status Scanner::scan_capped(std::string_view data, Verdict& v) {
  v.scanned = data.size();
  v.sha256 = hash::sha256(data);
  v.matches = no_matches();
  // A truncated verdict speaks for a prefix only (and `filesize` differs): never cached.
  if (!v.truncated)
    if (auto hit = cache_.find(v.sha256)) {
      v.matches = std::move(*hit);
      v.cached = true;
      count(v);
      return ok();
    }
  YR_SCANNER* s = MAMORI_TRY(borrow());
  ScanContext context;
  yr_scanner_set_callback(s, on_scan_message, &context);
  const int rc = yr_scanner_scan_mem(s, reinterpret_cast<const uint8_t*>(data.data()), data.size());
  give_back(s);
  if (rc == ERROR_SCAN_TIMEOUT) {
    v.timed_out = true;
  } else if (rc != ERROR_SUCCESS) {
    return fail_msg("yr_scanner_scan_mem", "", "yara error " + std::to_string(rc));
  } else {
    if (!context.matches.empty())
      v.matches = std::make_shared<const std::vector<Match>>(std::move(context.matches));
    if (!v.truncated) cache_.insert(v.sha256, v.matches);
  }
  count(v);
  return ok();
}

Result<Verdict> Scanner::scan_buffer(std::string_view data) {
  Verdict v;
  v.size = data.size();
  v.truncated = data.size() > limits_.max_scan_bytes;
  MAMORI_TRY(scan_capped(data.substr(0, limits_.max_scan_bytes), v));
  return v;
}

Result<Verdict> Scanner::scan_fd(int fd, std::string_view name,
                                 const std::optional<hash::Digest>& known) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail_errno("fstat", std::string(name));
  if (!S_ISREG(st.st_mode)) return fail("scan", std::string(name), EINVAL, "not a regular file");
  Verdict v;
  v.size = static_cast<uint64_t>(st.st_size);
  v.truncated = v.size > limits_.max_scan_bytes;
  if (known && !v.truncated)
    if (auto hit = cache_.find(*known)) {
      v.sha256 = *known;
      v.scanned = v.size;
      v.matches = std::move(*hit);
      v.cached = true;
      count(v);
      return v;
    }
  std::string buf(std::min(v.size, limits_.max_scan_bytes), '\0');
  size_t have = 0;
  while (have < buf.size()) {
    const ssize_t n = ::pread(fd, buf.data() + have, buf.size() - have, static_cast<off_t>(have));
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("pread", std::string(name));
    }
    if (n == 0) break;  // shrank since fstat: scan what is there
    have += static_cast<size_t>(n);
  }
  buf.resize(have);
  MAMORI_TRY(scan_capped(buf, v));
  return v;
}

}  // namespace mamori::scan
