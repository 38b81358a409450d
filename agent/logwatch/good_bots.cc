#include "agent/logwatch/good_bots.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>

namespace mamori::logwatch {
namespace {

struct KnownCrawler {
  std::string_view ua_token;  // as it appears in the user agent (case-insensitive)
  Crawler crawler;
};

// What each search engine documents for verifying its crawler.
const std::array<KnownCrawler, 6>& known_crawlers() {
  static const std::array<KnownCrawler, 6> kKnown = {{
      {"googlebot", {"Googlebot", {"googlebot.com", "google.com", "googleusercontent.com"}}},
      {"bingbot", {"bingbot", {"search.msn.com"}}},
      {"applebot", {"Applebot", {"applebot.apple.com"}}},
      {"yandexbot", {"YandexBot", {"yandex.ru", "yandex.net", "yandex.com"}}},
      {"baiduspider", {"Baiduspider", {"baidu.com", "baidu.jp"}}},
      {"duckduckbot", {"DuckDuckBot", {"duckduckgo.com"}}},
  }};
  return kKnown;
}

bool contains_nocase(std::string_view hay, std::string_view needle) {
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == b;
         }) != hay.end();
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::optional<Crawler> claimed_crawler(std::string_view user_agent) {
  for (const auto& k : known_crawlers())
    if (contains_nocase(user_agent, k.ua_token)) return k.crawler;
  return std::nullopt;
}

bool under_domain(std::string_view host, const std::vector<std::string_view>& domains) {
  std::string h = lower(host);
  if (!h.empty() && h.back() == '.') h.pop_back();  // a PTR's root
  for (const auto d : domains) {
    if (h == d) return true;
    if (h.size() > d.size() && h.ends_with(d) && h[h.size() - d.size() - 1] == '.') return true;
  }
  return false;
}

Resolver system_resolver() {
  Resolver r;
  r.reverse = [](const logparse::IpAddress& ip) -> std::string {
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (ip.v4) {
      auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
      sin->sin_family = AF_INET;
      std::memcpy(&sin->sin_addr, ip.bytes.data() + 12, 4);
      len = sizeof *sin;
    } else {
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
      sin6->sin6_family = AF_INET6;
      std::memcpy(&sin6->sin6_addr, ip.bytes.data(), 16);
      len = sizeof *sin6;
    }
    char host[NI_MAXHOST];
    if (::getnameinfo(reinterpret_cast<sockaddr*>(&ss), len, host, sizeof host, nullptr, 0,
                      NI_NAMEREQD) != 0)
      return "";
    return host;
  };
  r.forward = [](const std::string& host) {
    std::vector<logparse::IpAddress> out;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (::getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0) return out;
    for (const addrinfo* a = res; a; a = a->ai_next) {
      char text[INET6_ADDRSTRLEN] = {};
      if (a->ai_family == AF_INET)
        ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(a->ai_addr)->sin_addr, text,
                    sizeof text);
      else if (a->ai_family == AF_INET6)
        ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(a->ai_addr)->sin6_addr, text,
                    sizeof text);
      if (auto ip = logparse::IpAddress::parse(text)) out.push_back(*ip);
    }
    ::freeaddrinfo(res);
    return out;
  };
  return r;
}

GoodBots::GoodBots(Resolver resolver, std::function<void()> wake)
    : resolver_(std::move(resolver)), wake_(std::move(wake)) {
  thread_ = std::thread([this] { run(); });
}

GoodBots::~GoodBots() { stop(); }

void GoodBots::stop() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

GoodBots::Verdict GoodBots::check(const logparse::IpAddress& ip, std::string_view user_agent,
                                  int64_t now_ns, uint64_t* ticket, std::string* host) {
  auto crawler = claimed_crawler(user_agent);
  if (!crawler) return Verdict::kNotClaimed;
  if (auto it = cache_.find(ip); it != cache_.end() && now_ns - it->second.at_ns < kCacheTtlNs) {
    // Cached for the address: a verified Googlebot claiming to be bingbot is no bingbot.
    if (it->second.verified && under_domain(it->second.host, crawler->domains)) {
      *host = it->second.host;
      return Verdict::kVerified;
    }
    if (!it->second.verified) return Verdict::kFailed;
  }
  MutexLock lock(mu_);
  if (in_flight_ >= kMaxPending) return Verdict::kFailed;
  *ticket = next_ticket_++;
  jobs_.push_back({*ticket, ip, std::move(*crawler)});
  ++in_flight_;
  cv_.notify_one();
  return Verdict::kPending;
}

std::vector<GoodBots::Done> GoodBots::take_done(int64_t now_ns) {
  std::vector<std::pair<Job, Done>> done;
  {
    MutexLock lock(mu_);
    done.swap(done_);
  }
  std::vector<Done> out;
  for (auto& [job, d] : done) {
    if (cache_.size() >= kMaxCached) cache_.clear();
    cache_[job.ip] = {d.verified, d.host, now_ns};
    out.push_back(std::move(d));
  }
  return out;
}

void GoodBots::run() {
  while (true) {
    Job job;
    {
      MutexLock lock(mu_);
      cv_.wait(mu_, [&]() MAMORI_REQUIRES(mu_) { return stop_ || !jobs_.empty(); });
      if (stop_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    Done d{job.ticket, false, ""};
    const std::string host = resolver_.reverse(job.ip);
    if (!host.empty() && under_domain(host, job.crawler.domains)) {
      const auto back = resolver_.forward(host);
      if (std::find(back.begin(), back.end(), job.ip) != back.end()) {
        d.verified = true;
        d.host = host;
      }
    }
    {
      MutexLock lock(mu_);
      done_.emplace_back(std::move(job), std::move(d));
      --in_flight_;
    }
    if (wake_) wake_();
  }
}

}  // namespace mamori::logwatch
