#pragma once
// Which new entries a root lets stay: one judgement for the agent's guard, `mamori check`
// and `mamori restore`, so that what the batch commands call an upload is what the agent
// lets stay.
//   - deny_new takes back whatever it matches, with letters folded: b.PHP is a script;
//   - allow_new lets an entry stay by name; a `DIR/**` pattern also lets DIR and its
//     missing ancestors be made, as directories only (glob.h, leads_to());
//   - a regular file allowed by name is judged by its first bytes too (upload_filter.h):
//     a name is the attacker's choice.

#include <string>
#include <string_view>
#include <vector>

#include "core/base/result.h"
#include "core/fs/glob.h"

namespace mamori::fs {

class UploadPolicy {
 public:
  UploadPolicy() = default;  // allows nothing
  static Result<UploadPolicy> compile(const std::vector<std::string>& allow_new,
                                      const std::vector<std::string>& deny_new);

  // Judges the entry at `rel` beneath `root_fd` as it is now (its type, and a regular
  // file's first bytes). One that is gone is judged by its name alone: there is nothing
  // to quarantine either way.
  bool allows(int root_fd, std::string_view rel) const;
  // The same for the regular file `rel` already open as `fd` (read from the fd, never
  // opened again by name: the open gate may not open a path in a guarded tree).
  bool allows_open_file(int fd, std::string_view rel) const;

 private:
  PathMatcher allow_, deny_;
};

}  // namespace mamori::fs
