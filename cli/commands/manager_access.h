#pragma once
// mamori manager user|apitoken: who may use the manager's API (docs/manager.md, "Users
// and API access"). Each opens the store directly (the manager need not run) and writes
// what it changed to the audit log, as "cli:UID".

#include <string>
#include <vector>

#include "cli/app.h"

namespace mamori::cli {

struct AccessOptions {
  std::string role = "viewer";
  std::vector<std::string> args;
};

int user_add(App& app, const AccessOptions& o);
int user_list(App& app);
int user_del(App& app, const AccessOptions& o);
int user_passwd(App& app, const AccessOptions& o);
int apitoken_create(App& app, const AccessOptions& o);
int apitoken_list(App& app);
int apitoken_revoke(App& app, const AccessOptions& o);

}  // namespace mamori::cli
