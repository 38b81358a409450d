#include "agent/sinks/curl_easy.h"

#include <algorithm>
#include <cctype>
#include <mutex>

#include <fmt/format.h>

namespace mamori::sinks {

void init_curl_once() {
  static std::once_flag once;
  // A failure here resurfaces as an error from the first transfer.
  std::call_once(once, [] { (void)curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string UrlParts::origin() const {
  return port.empty() ? fmt::format("{}://{}", scheme, host)
                      : fmt::format("{}://{}:{}", scheme, host, port);
}

Result<UrlParts> parse_url(const std::string& url) {
  const std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> u(curl_url(), curl_url_cleanup);
  if (!u) return fail_msg("parse url", "", "out of memory");
  // No CURLU_GUESS_SCHEME: "example.com" without a scheme is refused, not made http.
  if (const CURLUcode rc = curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0); rc != CURLUE_OK)
    return fail_msg("parse url", "", curl_url_strerror(rc));
  const auto part = [&](CURLUPart which) {
    char* value = nullptr;
    std::string out;
    if (curl_url_get(u.get(), which, &value, 0) == CURLUE_OK && value) out = value;
    curl_free(value);
    return out;
  };
  UrlParts parts{part(CURLUPART_SCHEME), part(CURLUPART_HOST), part(CURLUPART_PORT)};
  std::transform(parts.scheme.begin(), parts.scheme.end(), parts.scheme.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  parts.has_credentials = !part(CURLUPART_USER).empty() || !part(CURLUPART_PASSWORD).empty();
  return parts;
}

Status CurlList::append(const std::string& line) {
  curl_slist* next = curl_slist_append(head_, line.c_str());
  if (!next) return fail_msg("curl_slist_append", "", "out of memory");
  head_ = next;
  return ok();
}

Result<CurlEasy> CurlEasy::make(const char* protocols) {
  init_curl_once();
  CurlEasy easy;
  easy.handle_.reset(curl_easy_init());
  if (!easy.handle_) return fail_msg("curl_easy_init", "", "failed (out of memory?)");
  easy.error_ = std::make_unique<std::array<char, CURL_ERROR_SIZE>>();
  easy.set(CURLOPT_ERRORBUFFER, easy.error_->data());
  easy.set(CURLOPT_NOSIGNAL, 1L);
  easy.set(CURLOPT_PROTOCOLS_STR, std::string(protocols));
  easy.set(CURLOPT_REDIR_PROTOCOLS_STR, std::string(protocols));
  easy.set(CURLOPT_FOLLOWLOCATION, 0L);
  return easy;
}

void CurlEasy::keep_first(CURLcode code) {
  if (option_error_ == CURLE_OK) option_error_ = code;
}

void CurlEasy::set(CURLoption option, long value) {
  keep_first(curl_easy_setopt(handle_.get(), option, value));
}

void CurlEasy::set(CURLoption option, const std::string& value) {
  keep_first(curl_easy_setopt(handle_.get(), option, value.c_str()));
}

void CurlEasy::set(CURLoption option, const void* pointer) {
  keep_first(curl_easy_setopt(handle_.get(), option, pointer));
}

Status CurlEasy::perform(const std::string& context) {
  if (option_error_ != CURLE_OK)
    return fail_msg(context, "",
                    fmt::format("setting a libcurl option: {}", curl_easy_strerror(option_error_)));
  (*error_)[0] = '\0';
  const CURLcode rc = last_code_ = curl_easy_perform(handle_.get());
  if (rc == CURLE_OK) return ok();
  // The buffer says more ("Login denied" is the code; the buffer has the server's
  // reply), but is empty for some codes.
  std::string message = error_->data();
  while (!message.empty() && std::isspace(static_cast<unsigned char>(message.back())))
    message.pop_back();
  if (message.empty()) message = curl_easy_strerror(rc);
  return fail_msg(context, "", message);
}

long CurlEasy::response_code() const {
  long code = 0;
  (void)curl_easy_getinfo(handle_.get(), CURLINFO_RESPONSE_CODE, &code);
  return code;
}

}  // namespace mamori::sinks
