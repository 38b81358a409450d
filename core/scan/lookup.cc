#include "core/scan/lookup.h"

#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <utility>

#include <curl/curl.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/base/json_depth.h"
#include "core/base/quote.h"
#include "core/fs/admin_files.h"

namespace mamori::scan {
namespace {

constexpr std::string_view kFormat = "mamori-lookup-1";
constexpr size_t kMaxKeyBytes = 256;
constexpr size_t kMaxNameBytes = 256;
// The state file: 100,000 cached verdicts at ~250 bytes each, with room to spare.
constexpr size_t kMaxStateBytes = 64 << 20;

using Json = nlohmann::json;

int64_t to_ns(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
std::chrono::system_clock::time_point from_ns(int64_t ns) {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(ns)));
}

// A count from VirusTotal's stats: a non-negative integer, else 0 (an odd field must not
// throw out of the adapter).
uint32_t count_of(const Json& stats, const char* name) {
  auto it = stats.find(name);
  if (it == stats.end() || !it->is_number_unsigned()) return 0;
  return static_cast<uint32_t>(std::min<uint64_t>(it->get<uint64_t>(), UINT32_MAX));
}

std::string short_string(const Json& obj, const char* name) {
  auto it = obj.find(name);
  if (it == obj.end() || !it->is_string()) return {};
  std::string s = it->get<std::string>();
  if (s.size() > kMaxNameBytes) s.resize(kMaxNameBytes);
  return s;
}

// VirusTotal's error code ({"error": {"code": "QuotaExceededError"}}), for messages:
// printable and short, else empty.
std::string error_code(std::string_view body) {
  if (body.size() > 64 * 1024 || !json_depth_within(body)) return {};
  Json j = Json::parse(body, nullptr, false);
  if (!j.is_object()) return {};
  auto e = j.find("error");
  if (e == j.end() || !e->is_object()) return {};
  std::string code = short_string(*e, "code");
  if (code.size() > 64 ||
      !std::all_of(code.begin(), code.end(), [](char c) { return std::isalnum(c) != 0; }))
    return {};
  return code;
}

LookupAnswer answer(LookupAnswer::Kind kind, std::string why) {
  LookupAnswer a;
  a.kind = kind;
  a.why = std::move(why);
  return a;
}

struct Body {
  std::string text;
  size_t cap = 0;
  bool truncated = false;
};

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto& body = *static_cast<Body*>(user);
  const size_t len = size * n;
  if (body.text.size() + len > body.cap) {
    body.truncated = true;
    return 0;  // aborts the transfer: no point reading megabytes we will not parse
  }
  body.text.append(data, len);
  return len;
}

}  // namespace

Result<LookupAnswer> interpret_vt_reply(long status, std::string_view body, bool truncated) {
  using Kind = LookupAnswer::Kind;
  if (status == 404) {
    LookupAnswer a = answer(Kind::kVerdict, {});
    a.verdict.known = false;
    return a;
  }
  if (status == 401 || status == 403) {
    const std::string code = error_code(body);
    return fail_msg("virustotal look-up", "",
                    fmt::format("the API key was refused (HTTP {}{}{})", status,
                                code.empty() ? "" : " ", code));
  }
  if (status == 429 || status == 408 || status == 503 || status == 502 || status == 504 ||
      status >= 500) {
    const std::string code = error_code(body);
    return answer(Kind::kRetryLater,
                  fmt::format("HTTP {}{}{}", status, code.empty() ? "" : " ", code));
  }
  if (status != 200) return answer(Kind::kFailed, fmt::format("unexpected HTTP {}", status));
  if (truncated) return answer(Kind::kFailed, "reply larger than the cap");
  if (!json_depth_within(body)) return answer(Kind::kFailed, "reply nested too deeply");
  Json j = Json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return answer(Kind::kFailed, "reply is not JSON");
  auto data = j.find("data");
  if (data == j.end() || !data->is_object())
    return answer(Kind::kFailed, "reply has no \"data\" object");
  auto attrs = data->find("attributes");
  if (attrs == data->end() || !attrs->is_object())
    return answer(Kind::kFailed, "reply has no data.attributes");
  auto stats = attrs->find("last_analysis_stats");
  if (stats == attrs->end() || !stats->is_object())
    return answer(Kind::kFailed, "reply has no data.attributes.last_analysis_stats");
  LookupAnswer a = answer(Kind::kVerdict, {});
  a.verdict.known = true;
  a.verdict.stats = {count_of(*stats, "malicious"), count_of(*stats, "suspicious"),
                     count_of(*stats, "undetected"), count_of(*stats, "harmless")};
  a.verdict.name = short_string(*attrs, "meaningful_name");
  if (auto ptc = attrs->find("popular_threat_classification");
      ptc != attrs->end() && ptc->is_object())
    a.verdict.label = short_string(*ptc, "suggested_threat_label");
  return a;
}

Result<std::string> read_api_key_file(const std::string& path) {
  auto fd = MAMORI_TRY(fs::open_admin_read(path));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail_errno("fstat", path);
  if (!S_ISREG(st.st_mode)) return fail_msg("read API key", path, "not a regular file");
  if ((st.st_mode & 077) != 0)
    return fail_msg("read API key", path,
                    fmt::format("mode {:04o}: the key file must be readable by its owner only "
                                "(chmod 600)",
                                st.st_mode & 07777));
  std::string text(kMaxKeyBytes + 2, '\0');
  size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("read", path);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  text.resize(got);
  if (auto nl = text.find('\n'); nl != std::string::npos) text.resize(nl);
  if (!text.empty() && text.back() == '\r') text.pop_back();
  if (text.empty()) return fail_msg("read API key", path, "the first line is empty");
  if (text.size() > kMaxKeyBytes ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c > 0x20 && c < 0x7f; }))
    return fail_msg("read API key", path,
                    "the first line must be the key alone: at most 256 printable characters");
  return text;
}

VtClient::VtClient(VtClientOptions options) : options_(std::move(options)) {}

VtClient::~VtClient() {
  if (curl_ != nullptr) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

Result<std::unique_ptr<VtClient>> VtClient::make(VtClientOptions options) {
  std::string& url = options.base_url;
  while (url.ends_with('/')) url.pop_back();
  if (!url.starts_with("http://") && !url.starts_with("https://"))
    return fail_msg("virustotal look-up", url, "the base URL must be http:// or https://");
  if (url.find_first_of(std::string_view("?#@ \0\r\n", 7)) != std::string::npos)
    return fail_msg("virustotal look-up", url,
                    "the base URL must hold no credentials, query or spaces");
  const std::string& key = options.api_key;
  if (key.empty() || key.size() > kMaxKeyBytes ||
      !std::all_of(key.begin(), key.end(), [](char c) { return c > 0x20 && c < 0x7f; }))
    return fail_msg("virustotal look-up", "", "the API key must be 1-256 printable characters");
  std::unique_ptr<VtClient> client(new VtClient(std::move(options)));
  client->curl_ = curl_easy_init();
  if (client->curl_ == nullptr) return fail_msg("curl_easy_init", "", "out of memory");
  return client;
}

Result<LookupAnswer> VtClient::lookup(const hash::Digest& sha256) {
  CURL* c = static_cast<CURL*>(curl_);
  curl_easy_reset(c);
  const std::string url = options_.base_url + "/api/v3/files/" + sha256.hex();
  const std::string header = "x-apikey: " + options_.api_key;
  curl_slist* headers = curl_slist_append(nullptr, header.c_str());
  if (headers == nullptr) return fail_msg("curl_slist_append", "", "out of memory");
  curl_slist* accept = curl_slist_append(headers, "Accept: application/json");
  if (accept != nullptr) headers = accept;
  Body body;
  body.cap = options_.max_body;
  char errbuf[CURL_ERROR_SIZE] = {0};
  bool set_ok = true;
  const auto set = [&](CURLoption o, auto v) { set_ok &= curl_easy_setopt(c, o, v) == CURLE_OK; };
  set(CURLOPT_URL, url.c_str());
  set(CURLOPT_HTTPGET, 1L);
  set(CURLOPT_HTTPHEADER, headers);
  set(CURLOPT_NOSIGNAL, 1L);
  set(CURLOPT_FOLLOWLOCATION, 0L);
  set(CURLOPT_PROTOCOLS_STR, "http,https");
  set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count() * 1000));
  set(CURLOPT_TIMEOUT_MS, static_cast<long>(options_.total_timeout.count() * 1000));
  set(CURLOPT_USERAGENT, "mamori");
  set(CURLOPT_ERRORBUFFER, errbuf);
  set(CURLOPT_WRITEFUNCTION, on_body);
  set(CURLOPT_WRITEDATA, &body);
  CURLcode code = CURLE_OK;
  if (set_ok) code = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  // The header list is gone: libcurl must not keep a pointer to it (or to the key).
  curl_easy_reset(c);
  if (!set_ok) return fail_msg("virustotal look-up", "", "libcurl refused an option");
  if (code == CURLE_WRITE_ERROR && body.truncated)
    return interpret_vt_reply(status, body.text, true);
  if (code != CURLE_OK) {
    // libcurl's messages name the host and the URL, never request headers.
    const std::string detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(code);
    return answer(LookupAnswer::Kind::kRetryLater, escape(detail));
  }
  return interpret_vt_reply(status, body.text, false);
}

// LookupQueue.

Result<LookupQueue> LookupQueue::open(Env& env, std::string path, LookupLimits limits) {
  LookupQueue q(env, std::move(path), limits);
  const std::string lock_path = q.path_ + ".lock";
  q.lock_ = MAMORI_TRY(fs::open_private_append(lock_path));
  while (::flock(q.lock_.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK)
      // EWOULDBLOCK: the agent's look-up worker waits and tries again (lookup_worker.h).
      return fail("lock", lock_path, EWOULDBLOCK,
                  "another process is using the look-up queue (another mamori scan --lookup, "
                  "or the agent's look-ups)");
    return fail_errno("flock", lock_path);
  }
  auto text = fs::read_small_file(q.path_, kMaxStateBytes);
  if (!text) {
    if (text.error().errnum == ENOENT) return q;
    return tl::unexpected(std::move(text).error());
  }
  MAMORI_TRY(q.load(*text));
  return q;
}

Status LookupQueue::load(std::string_view text) {
  const auto corrupt = [&](std::string why) {
    return fail_msg("read look-up state", path_,
                    why + " (remove the file to start over; today's request count is lost)");
  };
  if (!json_depth_within(text, 8)) return corrupt("nested too deeply");
  Json j = Json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return corrupt("not JSON");
  try {
    if (j.value("format", "") != kFormat) return corrupt("not a mamori-lookup-1 file");
    for (const auto& h : j.at("queue")) {
      auto d = hash::Digest::from_hex(h.get<std::string>());
      if (!d) return corrupt("a queued hash is not a SHA-256");
      if (!waiting(*d)) queue_.push_back(*d);
    }
    dropped_ = j.at("dropped").get<uint64_t>();
    failed_ = j.at("failed").get<uint64_t>();
    retry_at_ns_ = j.at("retry_at").get<int64_t>();
    for (const auto& t : j.at("requests")) requests_ns_.push_back(t.get<int64_t>());
    std::sort(requests_ns_.begin(), requests_ns_.end());
    for (const auto& e : j.at("cache")) {
      auto d = hash::Digest::from_hex(e.at("sha256").get<std::string>());
      if (!d) return corrupt("a cached hash is not a SHA-256");
      CachedVerdict cv;
      cv.at = from_ns(e.at("at").get<int64_t>());
      cv.verdict.known = e.at("known").get<bool>();
      cv.verdict.stats = {e.at("malicious").get<uint32_t>(), e.at("suspicious").get<uint32_t>(),
                          e.at("undetected").get<uint32_t>(), e.at("harmless").get<uint32_t>()};
      cv.verdict.name = e.value("name", "");
      cv.verdict.label = e.value("label", "");
      cache_[*d] = std::move(cv);
    }
    // Optional (written since the agent's look-ups): an older file has none.
    if (auto rel = j.find("related"); rel != j.end()) {
      if (!rel->is_object()) return corrupt("\"related\" is not an object");
      for (const auto& [hex, ids] : rel->items()) {
        auto d = hash::Digest::from_hex(hex);
        if (!d) return corrupt("a related hash is not a SHA-256");
        auto& list = related_[*d];
        for (const auto& id : ids) {
          if (list.size() >= kMaxRelated) break;
          std::string s = id.get<std::string>();
          if (s.size() > kMaxRelatedBytes) s.resize(kMaxRelatedBytes);
          list.push_back(std::move(s));
        }
      }
    }
  } catch (const Json::exception& e) {
    return corrupt(std::string("bad field: ") + e.what());
  }
  // A file edited by hand, or written with larger limits, is brought within these.
  while (queue_.size() > limits_.max_queue) {
    related_.erase(queue_.front());
    queue_.pop_front();
    ++dropped_;
  }
  // Related ids only of hashes that wait: what a crash left of answered ones is stale.
  for (auto it = related_.begin(); it != related_.end();)
    it = waiting(it->first) ? std::next(it) : related_.erase(it);
  prune();
  return ok();
}

void LookupQueue::prune() {
  const int64_t now = env_->clock().now_ns();
  const int64_t day = int64_t{86400} * 1'000'000'000;
  while (!requests_ns_.empty() && requests_ns_.front() <= now - day) requests_ns_.pop_front();
  for (auto it = cache_.begin(); it != cache_.end();) {
    const auto ttl = it->second.verdict.known ? limits_.known_ttl : limits_.unknown_ttl;
    if (it->second.at + ttl <= env_->clock().now())
      it = cache_.erase(it);
    else
      ++it;
  }
  while (cache_.size() > limits_.max_cache) {
    auto oldest = std::min_element(cache_.begin(), cache_.end(), [](const auto& a, const auto& b) {
      return a.second.at < b.second.at;
    });
    cache_.erase(oldest);
  }
}

std::optional<CachedVerdict> LookupQueue::cached(const hash::Digest& sha256) const {
  auto it = cache_.find(sha256);
  if (it == cache_.end()) return std::nullopt;
  const auto ttl = it->second.verdict.known ? limits_.known_ttl : limits_.unknown_ttl;
  if (it->second.at + ttl <= env_->clock().now()) return std::nullopt;
  return it->second;
}

bool LookupQueue::waiting(const hash::Digest& sha256) const {
  return std::find(queue_.begin(), queue_.end(), sha256) != queue_.end();
}

bool LookupQueue::enqueue(const hash::Digest& sha256, const std::string& related) {
  const auto relate = [&] {
    if (related.empty()) return;
    auto& list = related_[sha256];
    if (list.size() >= kMaxRelated || std::find(list.begin(), list.end(), related) != list.end())
      return;
    list.push_back(related.substr(0, kMaxRelatedBytes));
  };
  // A linear search: the queue is at most max_queue (10,000) and fills at the pace of
  // new files, not of requests.
  if (waiting(sha256)) {
    relate();
    return false;
  }
  if (limits_.max_queue == 0) {
    ++dropped_;
    return false;
  }
  while (queue_.size() >= limits_.max_queue) {
    related_.erase(queue_.front());
    queue_.pop_front();
    ++dropped_;
  }
  queue_.push_back(sha256);
  relate();
  return true;
}

std::vector<std::string> LookupQueue::take_related(const hash::Digest& sha256) {
  auto it = related_.find(sha256);
  if (it == related_.end()) return {};
  std::vector<std::string> out = std::move(it->second);
  related_.erase(it);
  return out;
}

size_t LookupQueue::sent_last_minute() const {
  const int64_t since = env_->clock().now_ns() - int64_t{60} * 1'000'000'000;
  return static_cast<size_t>(std::count_if(requests_ns_.begin(), requests_ns_.end(),
                                           [&](int64_t t) { return t > since; }));
}

size_t LookupQueue::sent_last_day() const {
  const int64_t since = env_->clock().now_ns() - int64_t{86400} * 1'000'000'000;
  return static_cast<size_t>(std::count_if(requests_ns_.begin(), requests_ns_.end(),
                                           [&](int64_t t) { return t > since; }));
}

std::chrono::system_clock::time_point LookupQueue::next_slot() const {
  const int64_t now = env_->clock().now_ns();
  int64_t slot = std::max(now, retry_at_ns_);
  // The n-th newest request of a window frees a slot when it leaves the window.
  const auto window_slot = [&](size_t limit, int64_t window_ns) {
    if (limit == 0) return INT64_MAX;
    const int64_t since = now - window_ns;
    std::vector<int64_t> in;
    for (int64_t t : requests_ns_)
      if (t > since) in.push_back(t);
    if (in.size() < limit) return now;
    return in[in.size() - limit] + window_ns;
  };
  slot = std::max(slot, window_slot(limits_.per_minute, int64_t{60} * 1'000'000'000));
  slot = std::max(slot, window_slot(limits_.per_day, int64_t{86400} * 1'000'000'000));
  return from_ns(slot);
}

bool LookupQueue::may_send() const { return to_ns(next_slot()) <= env_->clock().now_ns(); }

void LookupQueue::remember(const hash::Digest& sha256, const VtVerdict& v) {
  cache_[sha256] = CachedVerdict{v, env_->clock().now()};
  if (cache_.size() > limits_.max_cache) prune();
}

Result<DrainStats> LookupQueue::drain(HashLookup& lookup) {
  DrainStats stats;
  while (!queue_.empty() && may_send()) {
    const hash::Digest sha = queue_.front();
    queue_.pop_front();
    if (cached(sha)) {  // answered since it was queued
      stats.answered_hashes.push_back(sha);
      continue;
    }
    requests_ns_.push_back(env_->clock().now_ns());
    // Saved before sending: a crash in the request must not forget that it was made.
    if (auto saved = save(); !saved) {
      queue_.push_front(sha);
      requests_ns_.pop_back();
      return tl::unexpected(std::move(saved).error());
    }
    ++stats.sent;
    auto a = lookup.lookup(sha);
    if (!a) {
      queue_.push_front(sha);
      MAMORI_TRY(save());
      return tl::unexpected(std::move(a).error());
    }
    switch (a->kind) {
      case LookupAnswer::Kind::kVerdict:
        ++stats.answered;
        remember(sha, a->verdict);
        stats.answered_hashes.push_back(sha);
        break;
      case LookupAnswer::Kind::kRetryLater:
        ++stats.retry;
        queue_.push_front(sha);
        retry_at_ns_ =
            env_->clock().now_ns() +
            std::chrono::duration_cast<std::chrono::nanoseconds>(limits_.retry_after).count();
        break;
      case LookupAnswer::Kind::kFailed:
        ++stats.failed;
        ++failed_;
        stats.failed_hashes.push_back(sha);
        break;
    }
  }
  MAMORI_TRY(save());
  return stats;
}

Status LookupQueue::save() {
  prune();
  Json j = {{"format", kFormat},        {"dropped", dropped_},    {"failed", failed_},
            {"retry_at", retry_at_ns_}, {"queue", Json::array()}, {"requests", Json::array()},
            {"cache", Json::array()}};
  for (const auto& d : queue_) j["queue"].push_back(d.hex());
  if (!related_.empty()) {
    Json rel = Json::object();
    // Ids are the agent's own (UUIDs), but the file must stay valid JSON whatever they are.
    for (const auto& [d, ids] : related_) {
      Json list = Json::array();
      for (const auto& id : ids) list.push_back(is_valid_utf8(id) ? id : escape(id));
      rel[d.hex()] = std::move(list);
    }
    j["related"] = std::move(rel);
  }
  for (int64_t t : requests_ns_) j["requests"].push_back(t);
  for (const auto& [d, cv] : cache_) {
    const auto& v = cv.verdict;
    // Names from the network may be any bytes; the file must stay valid JSON.
    j["cache"].push_back({{"sha256", d.hex()},
                          {"at", to_ns(cv.at)},
                          {"known", v.known},
                          {"malicious", v.stats.malicious},
                          {"suspicious", v.stats.suspicious},
                          {"undetected", v.stats.undetected},
                          {"harmless", v.stats.harmless},
                          {"name", is_valid_utf8(v.name) ? v.name : escape(v.name)},
                          {"label", is_valid_utf8(v.label) ? v.label : escape(v.label)}});
  }
  return fs::write_file_atomic(*env_, path_, j.dump(), 0600);
}

}  // namespace mamori::scan
