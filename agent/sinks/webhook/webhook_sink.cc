#include "agent/sinks/webhook/webhook_sink.h"

#include <algorithm>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "agent/sinks/curl_easy.h"
#include "core/base/quote.h"
#include "core/base/version.h"

namespace mamori::sinks {
namespace {

constexpr size_t kMaxReplyBytes = 1 << 20;
constexpr size_t kReplyQuoteBytes = 200;  // of the reply, in an error message
constexpr size_t kMaxSlackValueBytes = 300;

// escape() without its quoting of single quotes, which a chat line does not need.
std::string escape_keeping_quotes(std::string_view s) {
  std::string out;
  for (size_t quote = s.find('\''); quote != std::string_view::npos; quote = s.find('\'')) {
    out += escape(s.substr(0, quote)) + "'";
    s.remove_prefix(quote + 1);
  }
  return out + escape(s);
}

// Slack's markup: &, < and > are the only escapes it defines; a backtick would end the
// code span the value sits in. Control bytes and invalid UTF-8 are escaped first.
std::string slack_escape(std::string_view s) {
  std::string clean = escape_keeping_quotes(s);
  if (clean.size() > kMaxSlackValueBytes) {
    size_t end = kMaxSlackValueBytes;
    while (end > 0 && (static_cast<unsigned char>(clean[end]) & 0xC0) == 0x80) --end;
    clean.resize(end);
    clean += "…";
  }
  std::string out;
  for (char c : clean) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '`':
        out += '\'';
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string code(const nlohmann::json& event, std::string_view dotted) {
  const std::string t = text(event, dotted);
  return t.empty() ? "" : "`" + slack_escape(t) + "`";
}

// An HTTP header line "Name: value": a token name (RFC 9110), a value without control bytes.
bool header_line(std::string_view h) {
  const size_t colon = h.find(':');
  if (colon == 0 || colon == std::string_view::npos) return false;
  const std::string_view name = h.substr(0, colon);
  const bool name_ok = std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
  std::string_view value = h.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  const bool value_ok = !value.empty() && std::all_of(value.begin(), value.end(), [](char c) {
    return c == '\t' || (static_cast<unsigned char>(c) >= 0x20 && c != 0x7F);
  });
  return name_ok && value_ok;
}

struct Reply {
  std::string head;  // the first bytes, for an error message
  size_t size = 0;
};

size_t keep_reply(char* data, size_t size, size_t n, void* out) {
  auto* reply = static_cast<Reply*>(out);
  const size_t len = size * n;
  reply->size += len;
  if (reply->size > kMaxReplyBytes) return 0;  // libcurl stops the transfer: a write error
  reply->head.append(
      data, std::min(len, kReplyQuoteBytes - std::min(kReplyQuoteBytes, reply->head.size())));
  return len;
}

class WebhookSink final : public Sink {
 public:
  WebhookSink(const config::SinkConfig& config, std::string context)
      : config_(config), context_(std::move(context)) {}

  const std::string& name() const override { return config_.name; }

  Status deliver(std::span<const nlohmann::json> events) override {
    if (events.empty()) return ok();
    // One handle for the batch: its connection is reused from one event to the next.
    CurlEasy curl = MAMORI_TRY(CurlEasy::make("http,https"));
    Reply reply;
    curl.set(CURLOPT_URL, config_.url);
    curl.set(CURLOPT_POST, 1L);
    curl.set(CURLOPT_USERAGENT, std::string("mamori/" MAMORI_VERSION));
    curl.set(CURLOPT_TIMEOUT, static_cast<long>(config_.timeout_s));
    curl.set(CURLOPT_CONNECTTIMEOUT, static_cast<long>(config_.timeout_s));
    curl.set(CURLOPT_WRITEFUNCTION, &keep_reply);
    curl.set(CURLOPT_WRITEDATA, &reply);
    if (!config_.ca_file.empty()) curl.set(CURLOPT_CAINFO, config_.ca_file);
    if (!config_.tls_verify) {
      curl.set(CURLOPT_SSL_VERIFYPEER, 0L);
      curl.set(CURLOPT_SSL_VERIFYHOST, 0L);
    }
    for (const auto& event : events) {
      const std::string body =
          config_.format == "slack"
              ? format_slack(event)
              : event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      CurlList headers;
      MAMORI_TRY(headers.append("Content-Type: application/json"));
      MAMORI_TRY(headers.append("Expect:"));  // no 100-continue round trip
      if (const std::string id = escape(text(event, "event.id")); !id.empty())
        MAMORI_TRY(headers.append("X-Mamori-Event-Id: " + id));
      for (const auto& h : config_.headers) MAMORI_TRY(headers.append(h));
      curl.set(CURLOPT_HTTPHEADER, headers.get());
      curl.set(CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
      curl.set(CURLOPT_POSTFIELDS, static_cast<const void*>(body.data()));
      reply = {};
      if (auto sent = curl.perform(context_); !sent) {
        if (reply.size > kMaxReplyBytes)
          return fail_msg(context_, "", fmt::format("reply larger than {} bytes", kMaxReplyBytes));
        return sent;
      }
      if (const long status = curl.response_code(); status < 200 || status > 299) {
        std::string detail = fmt::format("HTTP {}", status);
        if (!reply.head.empty()) detail += ": " + quote(reply.head);
        return fail_msg(context_, "", detail);
      }
    }
    return ok();
  }

 private:
  const config::SinkConfig config_;
  const std::string context_;  // "webhook sink 'slack': https://hooks.example", for errors
};

}  // namespace

std::string format_slack(const nlohmann::json& event) {
  const auto& sev = field(event, "event.severity");
  const int s = sev.is_number_integer() ? sev.get<int>() : 0;
  std::string line = s >= 7   ? ":rotating_light: *CRITICAL*"
                     : s >= 5 ? ":warning: *WARNING*"
                     : s >= 3 ? ":information_source: *NOTICE*"
                              : ":information_source: *INFO*";
  line += fmt::format(" {} on {}", slack_escape(text(event, "event.action")),
                      slack_escape(text(event, "host.hostname")));
  std::string what = code(event, "file.path");
  if (what.empty()) what = code(event, "message");
  if (!what.empty()) line += ": " + what;
  if (const std::string exe = code(event, "process.executable"); !exe.empty()) {
    line += " by " + exe;
    std::vector<std::string> who;
    if (const std::string pid = text(event, "process.pid"); !pid.empty())
      who.push_back("pid " + slack_escape(pid));
    if (const std::string user = text(event, "user.name"); !user.empty())
      who.push_back("user " + slack_escape(user));
    if (!who.empty()) line += fmt::format(" ({})", fmt::join(who, ", "));
  }
  if (const std::string ip = text(event, "source.ip"); !ip.empty())
    line += " from " + slack_escape(ip);
  const std::string outcome = text(event, "event.outcome"), mode = text(event, "mamori.mode");
  if (!outcome.empty()) line += " — " + slack_escape(outcome);
  if (!mode.empty()) line += fmt::format(" (mode {})", slack_escape(mode));
  return nlohmann::json{{"text", line}}.dump(-1, ' ', false,
                                             nlohmann::json::error_handler_t::replace);
}

Result<std::unique_ptr<Sink>> make_webhook_sink(const config::SinkConfig& config) {
  init_curl_once();
  const std::string sink = fmt::format("webhook sink '{}'", config.name);
  const auto refuse = [&](std::string why) { return fail_msg(sink, "", std::move(why)); };

  if (config.url.empty()) return refuse("no url (http://... or https://...)");
  auto url = parse_url(config.url);
  if (!url) return refuse(fmt::format("url: {}", url.error().detail));
  if (url->scheme != "http" && url->scheme != "https")
    return refuse(fmt::format("url scheme '{}' is not http or https", url->scheme));
  if (url->host.empty()) return refuse("url has no host");
  if (config.format != "json" && config.format != "slack")
    return refuse(fmt::format("format {} is not json or slack", quote(config.format)));
  for (size_t i = 0; i < config.headers.size(); ++i) {
    if (header_line(config.headers[i])) continue;
    const std::string& h = config.headers[i];
    return refuse(fmt::format("header {} ({}) is not 'Name: value'", i + 1,
                              quote(h.substr(0, std::min(h.find(':'), size_t{40})))));
  }
  if (config.timeout_s == 0) return refuse("timeout must be at least 1 second");
  return std::make_unique<WebhookSink>(config, fmt::format("{}: {}", sink, url->origin()));
}

}  // namespace mamori::sinks
