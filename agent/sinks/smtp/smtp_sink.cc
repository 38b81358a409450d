#include "agent/sinks/smtp/smtp_sink.h"

#include <string.h>

#include <algorithm>
#include <ctime>
#include <string_view>

#include <fmt/format.h>

#include "agent/sinks/curl_easy.h"
#include "core/base/quote.h"
#include "core/fs/admin_files.h"

namespace mamori::sinks {
namespace {

constexpr size_t kMaxPasswordFileBytes = 4096;

// A plain addr-spec (local@domain) in printable ASCII: it goes into headers and SMTP
// commands as it is, so nothing that could end or extend either.
bool plain_address(std::string_view a) {
  const size_t at = a.find('@');
  if (at == 0 || at == std::string_view::npos || at + 1 == a.size() || a.size() > 254) return false;
  if (a.find('@', at + 1) != std::string_view::npos) return false;
  return std::all_of(a.begin(), a.end(), [](char c) {
    return c > ' ' && c < 0x7F &&
           std::string_view("<>()[]\\,;:\"").find(c) == std::string_view::npos;
  });
}

// libcurl's upload callback: the next part of the message (a std::string_view).
size_t read_message(char* buf, size_t size, size_t n, void* unsent) {
  auto* rest = static_cast<std::string_view*>(unsent);
  const size_t len = std::min(size * n, rest->size());
  std::copy_n(rest->data(), len, buf);
  rest->remove_prefix(len);
  return len;
}

long use_ssl(config::StartTls starttls) {
  switch (starttls) {
    case config::StartTls::kNone:
      return CURLUSESSL_NONE;
    case config::StartTls::kTry:
      return CURLUSESSL_TRY;
    case config::StartTls::kRequired:
      return CURLUSESSL_ALL;
  }
  return CURLUSESSL_ALL;
}

class SmtpSink final : public Sink {
 public:
  SmtpSink(const config::SinkConfig& config, std::string password, std::string context)
      : config_(config), password_(std::move(password)), context_(std::move(context)) {}
  ~SmtpSink() override { ::explicit_bzero(password_.data(), password_.size()); }

  const std::string& name() const override { return config_.name; }

  Status deliver(std::span<const nlohmann::json> events) override {
    if (events.empty()) return ok();
    const std::string message = mail_message(events, config_.from, config_.to, std::time(nullptr));
    std::string_view unsent = message;

    CurlEasy curl = MAMORI_TRY(CurlEasy::make("smtp,smtps"));
    CurlList rcpts;
    for (const auto& to : config_.to) MAMORI_TRY(rcpts.append(to));
    curl.set(CURLOPT_URL, config_.url);
    curl.set(CURLOPT_MAIL_FROM, config_.from);
    curl.set(CURLOPT_MAIL_RCPT, rcpts.get());
    curl.set(CURLOPT_UPLOAD, 1L);
    curl.set(CURLOPT_READDATA, &unsent);
    curl.set(CURLOPT_READFUNCTION, &read_message);
    curl.set(CURLOPT_TIMEOUT, static_cast<long>(config_.timeout_s));
    curl.set(CURLOPT_CONNECTTIMEOUT, static_cast<long>(config_.timeout_s));
    curl.set(CURLOPT_USE_SSL, use_ssl(config_.starttls));
    if (!config_.ca_file.empty()) curl.set(CURLOPT_CAINFO, config_.ca_file);
    if (!config_.tls_verify) {
      curl.set(CURLOPT_SSL_VERIFYPEER, 0L);
      curl.set(CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (!config_.username.empty()) {
      curl.set(CURLOPT_USERNAME, config_.username);
      curl.set(CURLOPT_PASSWORD, password_);
    }
    auto sent = curl.perform(context_);
    if (!sent && curl.last_code() == CURLE_LOGIN_DENIED)
      return fail_msg(context_, "",
                      fmt::format("authentication as {} failed (SMTP {}): check username and "
                                  "password_file",
                                  quote(config_.username), curl.response_code()));
    return sent;
  }

 private:
  const config::SinkConfig config_;
  std::string password_;
  const std::string context_;  // "smtp sink 'ops': smtp://relay:25", for errors
};

}  // namespace

Result<std::unique_ptr<Sink>> make_smtp_sink(const config::SinkConfig& config) {
  init_curl_once();
  const std::string sink = fmt::format("smtp sink '{}'", config.name);
  const auto refuse = [&](std::string why) { return fail_msg(sink, "", std::move(why)); };

  if (config.url.empty()) return refuse("no url (smtp://HOST:PORT or smtps://HOST:PORT)");
  auto url = parse_url(config.url);
  if (!url) return refuse(fmt::format("url: {}", url.error().detail));
  if (url->scheme != "smtp" && url->scheme != "smtps")
    return refuse(fmt::format("url scheme '{}' is not smtp or smtps", url->scheme));
  if (url->host.empty()) return refuse("url has no host");
  if (url->has_credentials)
    return refuse("url holds credentials: set username and password_file instead");
  if (!plain_address(config.from))
    return refuse(fmt::format("from {} is not a plain address (user@domain)", quote(config.from)));
  if (config.to.empty()) return refuse("no 'to' address");
  for (const auto& to : config.to)
    if (!plain_address(to))
      return refuse(fmt::format("to {} is not a plain address (user@domain)", quote(to)));
  if (config.timeout_s == 0) return refuse("timeout must be at least 1 second");
  if (config.username.empty() != config.password_file.empty())
    return refuse("username and password_file go together");

  std::string password;
  if (!config.password_file.empty()) {
    auto content = fs::read_small_file(config.password_file, kMaxPasswordFileBytes);
    if (!content)
      return fail(sink + ": password_file", config.password_file, content.error().errnum,
                  content.error().detail);
    password = content->substr(0, content->find('\n'));
    if (!password.empty() && password.back() == '\r') password.pop_back();
    ::explicit_bzero(content->data(), content->size());
    if (password.empty())
      return fail_msg(sink + ": password_file", config.password_file, "the first line is empty");
  }
  return std::make_unique<SmtpSink>(config, std::move(password),
                                    fmt::format("{}: {}", sink, url->origin()));
}

}  // namespace mamori::sinks
