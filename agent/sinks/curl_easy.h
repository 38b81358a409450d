#pragma once
// libcurl for the sinks that speak SMTP and HTTP, as values: an easy handle and a header
// list that free themselves, and URL checks for config validation. libcurl never throws;
// its failures come back as Errors carrying libcurl's own message.
//
// Threads: init_curl_once() may be called from any thread; a CurlEasy belongs to one
// thread at a time (libcurl's rule). NOSIGNAL is always set, so a timeout never raises
// SIGALRM in the threaded daemon.

#include <array>
#include <memory>
#include <string>
#include <string_view>

#include <curl/curl.h>

#include "core/base/result.h"

namespace mamori::sinks {

// curl_global_init(), once per process. libcurl wants it before any thread exists: the
// make_*_sink() functions call it at start-up; later calls return at once.
void init_curl_once();

// A parsed absolute URL, for validating config and for naming a server in messages.
struct UrlParts {
  std::string scheme;            // lower case
  std::string host;              // IPv6 in brackets; empty for file:///path
  std::string port;              // empty when the URL gives none
  bool has_credentials = false;  // user or password inside the URL
  // "scheme://host[:port]": no path or query, which may hold a secret token (webhooks).
  std::string origin() const;
};
Result<UrlParts> parse_url(const std::string& url);

// An owned curl_slist (header lines, SMTP recipients).
class CurlList {
 public:
  CurlList() = default;
  CurlList(CurlList&& other) noexcept : head_(std::exchange(other.head_, nullptr)) {}
  CurlList& operator=(CurlList&&) = delete;
  CurlList(const CurlList&) = delete;
  ~CurlList() { curl_slist_free_all(head_); }

  Status append(const std::string& line);  // libcurl copies the text
  curl_slist* get() const { return head_; }

 private:
  curl_slist* head_ = nullptr;
};

class CurlEasy {
 public:
  // A handle with NOSIGNAL, an error buffer, only `protocols` allowed (libcurl's
  // CURLOPT_PROTOCOLS_STR syntax, "smtp,smtps") and no redirects.
  static Result<CurlEasy> make(const char* protocols);

  // Options. The first failure is kept and reported by perform(), so a run of set()
  // calls reads straight. Strings are copied by libcurl; a pointer must stay valid
  // until perform() returns.
  void set(CURLoption option, long value);
  void set(CURLoption option, const std::string& value);
  void set(CURLoption option, const void* pointer);
  void set(CURLoption option, curl_slist* list) { set(option, static_cast<const void*>(list)); }
  template <class R, class... A>
  void set(CURLoption option, R (*callback)(A...)) {
    keep_first(curl_easy_setopt(handle_.get(), option, callback));
  }

  // Runs the transfer. An Error's op is `context` ("smtp sink 'ops':
  // smtp://127.0.0.1:2525"), its detail libcurl's message (the error buffer when set).
  Status perform(const std::string& context);
  // The last response code (HTTP status, SMTP reply); 0 before any response.
  long response_code() const;
  // libcurl's code for the last perform(), for callers that explain some of them.
  CURLcode last_code() const { return last_code_; }

 private:
  struct Deleter {
    void operator()(CURL* c) const { curl_easy_cleanup(c); }
  };
  CurlEasy() = default;
  void keep_first(CURLcode code);

  std::unique_ptr<CURL, Deleter> handle_;
  // On the heap: libcurl keeps its address, and the handle moves.
  std::unique_ptr<std::array<char, CURL_ERROR_SIZE>> error_;
  CURLcode option_error_ = CURLE_OK;
  CURLcode last_code_ = CURLE_OK;
};

}  // namespace mamori::sinks
