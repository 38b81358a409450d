#pragma once
// The webhook sink: one HTTP(S) POST per event, in order, to a URL the administrator
// gave. format "json" posts the event object itself (application/json); "slack" posts
// {"text": "..."}, the body Slack, Mattermost and Rocket.Chat incoming webhooks take.
// Every request carries X-Mamori-Event-Id, so a receiver can drop the copies a retry
// sends. A 2xx reply is delivered; anything else is an error naming the status. No
// redirects are followed; a reply is read up to 1 MiB.
//
// Threads: deliver() from the sink's worker thread only; each request gives up after
// timeout_s. Retries and back-off are the caller's (the sink follower).

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "agent/sinks/sink.h"
#include "core/base/result.h"
#include "core/config/config.h"

namespace mamori::sinks {

// Validates `config` (url http:// or https://, format json or slack, every header
// "Name: value", a non-zero timeout); errors name the sink and never a header's value
// (it may be a token). Calls init_curl_once().
Result<std::unique_ptr<Sink>> make_webhook_sink(const config::SinkConfig& config);

// {"text": "..."}: one readable line (severity, action, host, path, who, outcome) with
// the event's text escaped for Slack's markup, so a file name cannot mention @channel
// or forge a link.
std::string format_slack(const nlohmann::json& event);

}  // namespace mamori::sinks
