#pragma once
// Where an event comes from, stamped on every event where it enters the event log (the
// agent's publishers, `mamori bans`): agent.id, agent.name, agent.version, agent.type,
// host.name, host.hostname, event.dataset (from the action: dataset_for()),
// event.created (when mamori made the record; @timestamp stays when it happened), and
// file.name / file.extension derived from file.path. docs/formats/events.md, Origin.
//
// agent.id is made once per state directory: STATE/agent-id, one line holding a random
// UUID (version 4), mode 0600, created atomically (a complete file or none; the first of
// two concurrent creators wins). It is never silently replaced: a file that is not an
// agent id (corrupt, empty, unreadable) fails load(), because a new id would split the
// host's history in every SIEM and manager in two. The fix is the administrator's (delete
// the file: the next start makes a new id).
//
// Threads: an Origin is immutable after load(); stamp() may be called from any thread.

#include <string>
#include <string_view>
#include <vector>

#include "core/base/env.h"
#include "core/base/result.h"
#include "core/event/event.h"

namespace mamori::event {

class Origin {
 public:
  struct Fields {
    std::string agent_id;       // a UUID
    std::string agent_name;     // config agent.name, default the host name
    std::string agent_version;  // mamori::kVersion
    std::string host_name;      // the host name, lower case (ECS recommends it)
    std::string host_hostname;  // gethostname() as it is
  };

  Origin(Fields fields, const Clock& clock) : fields_(std::move(fields)), clock_(&clock) {}

  // Reads STATE/agent-id, creating it when missing (the state directory must exist).
  // `agent_name` empty: the host name.
  static Result<Origin> load(Env& env, const std::string& state_dir, std::string agent_name);

  // Sets the origin fields, event.dataset (unless the emitter set one), event.created (now)
  // and file.name / file.extension (when file.path is a string). Idempotent but for
  // event.created, which a second stamp moves.
  void stamp(Event& e) const;

  const Fields& fields() const { return fields_; }

 private:
  Fields fields_;
  const Clock* clock_;
};

// STATE/agent-id's id, made when the file is missing. Errors name the file and say how
// to recover.
Result<std::string> load_or_create_agent_id(Env& env, const std::string& state_dir);
bool is_agent_id(std::string_view s);  // a lower-case RFC 4122 UUID text

// The host name (gethostname()), "localhost" when the kernel has none.
std::string system_hostname();

// file.name and file.extension of a path as ECS has them: the last component, and what
// follows its last dot without the dot ("" for none, a leading dot as in ".htaccess",
// or a trailing one). Case is kept: "b.PHP" is "PHP".
std::string_view file_name_of(std::string_view path);
std::string_view file_extension_of(std::string_view name);

// event.dataset by emitting module: every event.action mamori emits, and the module that
// emits it (docs/formats/events.md, Datasets). Unknown actions: "" (the checker fails
// them; stamp() sets mamori.agent so the field is never missing).
struct ActionInfo {
  std::string_view action;
  std::string_view dataset;
};
const std::vector<ActionInfo>& known_actions();
std::string_view dataset_for(std::string_view action);
// Whether an event of `action` may carry `dataset`: its dataset_for(), or one of the few
// second homes (ip-banned/ip-unbanned by hand: mamori.ban; agent-stopped reported by the
// manager: mamori.manager).
bool dataset_allowed(std::string_view action, std::string_view dataset);
// Every dataset above, plus mamori.ban for bans made by hand (`mamori bans`).
const std::vector<std::string_view>& known_datasets();

}  // namespace mamori::event
