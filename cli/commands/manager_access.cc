#include "cli/commands/manager_access.h"

#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "cli/commands/command.h"
#include "core/base/quote.h"
#include "core/fs/admin_files.h"
#include "core/proto/channel.h"
#include "manager/db/store.h"
#include "manager/server/identity.h"
#include "manager/server/password.h"

namespace mamori::cli {
namespace {

using manager::Role;
using manager::Store;
using nlohmann::json;

constexpr std::string_view kApiTokenPrefix = "mamori-api-v1.";

Result<std::unique_ptr<Store>> open_store(App& app) {
  const auto& m = app.config().manager;
  MAMORI_TRY(fs::make_private_dir(m.state_dir));
  return manager::open_store(app.env(), m.database);
}

std::string actor() { return "cli:" + std::to_string(getuid()); }

// Audits a change; a failure to audit fails the command (the change is made, the exit
// status says the record of it is missing).
int audit(App& app, Store& store, std::string action, std::string target) {
  auto r = store.append_audit(
      {0, app.env().clock().now_ns(), actor(), "", std::move(action), std::move(target), "ok"});
  return r ? kExitOk : app.report(r.error(), kExitIncomplete);
}

// 1-64 of [A-Za-z0-9._@-]: shown in the console and logs as is.
bool valid_name(std::string_view n) {
  return !n.empty() && n.size() <= 64 &&
         n.find_first_not_of(
             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-") ==
             std::string_view::npos;
}

std::optional<std::string> one_name(App& app, const char* op, const AccessOptions& o, int& code) {
  if (o.args.size() != 1 || !valid_name(o.args[0])) {
    code = app.report(Error{op, "", 0, "give one NAME: 1-64 of A-Z a-z 0-9 . _ @ -"}, kExitUsage);
    return std::nullopt;
  }
  return o.args[0];
}

std::optional<Role> role_of(App& app, const char* op, const AccessOptions& o, int& code) {
  auto r = manager::parse_role(o.role);
  if (!r) code = app.report(Error{op, o.role, 0, "--role: viewer, operator or admin"}, kExitUsage);
  return r;
}

// One line of standard input; at a terminal, without echo.
Result<std::string> read_line(const char* prompt) {
  const bool tty = isatty(STDIN_FILENO);
  termios saved{};
  if (tty) {
    std::fprintf(stderr, "%s", prompt);
    if (tcgetattr(STDIN_FILENO, &saved) != 0) return fail_errno("tcgetattr", "stdin");
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) != 0) return fail_errno("tcsetattr", "stdin");
  }
  std::string line;
  const bool got = static_cast<bool>(std::getline(std::cin, line));
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    std::fprintf(stderr, "\n");
  }
  if (!got) return fail_msg("read password", "stdin", "no password given");
  return line;
}

// The new password: from a pipe, its first line; at a terminal, typed twice.
Result<std::string> read_new_password() {
  std::string pw = MAMORI_TRY(read_line("New password (at least 12 characters): "));
  MAMORI_TRY(manager::check_password_policy(pw));
  if (isatty(STDIN_FILENO)) {
    std::string again = MAMORI_TRY(read_line("Again: "));
    if (again != pw) return fail_msg("read password", "stdin", "the two passwords differ");
  }
  return pw;
}

}  // namespace

int user_add(App& app, const AccessOptions& o) {
  int code = kExitUsage;
  auto name = one_name(app, "manager user add", o, code);
  if (!name) return code;
  auto role = role_of(app, "manager user add", o, code);
  if (!role) return code;
  auto store = open_store(app);
  if (!store) return app.report(store.error(), kExitIncomplete);
  auto pw = read_new_password();
  if (!pw) return app.report(pw.error(), kExitUsage);
  auto hash = manager::hash_password(*pw);
  if (!hash) return app.report(hash.error(), kExitIncomplete);
  auto st = (*store)->create_user({*name, *role, *hash, app.env().clock().now_ns()});
  if (!st && st.error().errnum == EEXIST)
    return app.report(Error{"manager user add", *name, EEXIST, "a user has this name"}, kExitUsage);
  if (!st) return app.report(st.error(), kExitIncomplete);
  if (int rc = audit(app, **store, "user-add", *name + " (" + o.role + ")")) return rc;
  if (app.options().json)
    print_json({{"name", *name}, {"role", o.role}});
  else if (!app.options().quiet)
    std::printf("user %s added (%s)\n", name->c_str(), o.role.c_str());
  return kExitOk;
}

int user_list(App& app) {
  auto store = open_store(app);
  if (!store) return app.report(store.error(), kExitIncomplete);
  auto users = (*store)->list_users();
  if (!users) return app.report(users.error(), kExitIncomplete);
  if (app.options().json) {
    auto a = json::array();
    for (const auto& u : *users)
      a.push_back({{"name", u.name},
                   {"role", manager::to_string(u.role)},
                   {"created_at", format_time_ns(u.created_at_ns)}});
    print_json({{"users", a}, {"count", users->size()}});
    return kExitOk;
  }
  std::printf("%-32s  %-8s  %s\n", "NAME", "ROLE", "CREATED");
  for (const auto& u : *users)
    std::printf("%-32s  %-8s  %s\n", u.name.c_str(),
                std::string(manager::to_string(u.role)).c_str(),
                format_time_ns(u.created_at_ns).c_str());
  return kExitOk;
}

int user_del(App& app, const AccessOptions& o) {
  int code = kExitUsage;
  auto name = one_name(app, "manager user del", o, code);
  if (!name) return code;
  auto store = open_store(app);
  if (!store) return app.report(store.error(), kExitIncomplete);
  auto had = (*store)->delete_user(*name);
  if (!had) return app.report(had.error(), kExitIncomplete);
  if (!*had)
    return app.report(Error{"manager user del", *name, ENOENT, "no such user"}, kExitUsage);
  if (int rc = audit(app, **store, "user-del", *name)) return rc;
  if (app.options().json)
    print_json({{"name", *name}, {"deleted", true}});
  else if (!app.options().quiet)
    std::printf("user %s deleted (their sessions ended)\n", name->c_str());
  return kExitOk;
}

int user_passwd(App& app, const AccessOptions& o) {
  int code = kExitUsage;
  auto name = one_name(app, "manager user passwd", o, code);
  if (!name) return code;
  auto store = open_store(app);
  if (!store) return app.report(store.error(), kExitIncomplete);
  auto user = (*store)->find_user(*name);
  if (!user) return app.report(user.error(), kExitIncomplete);
  if (!*user)
    return app.report(Error{"manager user passwd", *name, ENOENT, "no such user"}, kExitUsage);
  auto pw = read_new_password();
  if (!pw) return app.report(pw.error(), kExitUsage);
  auto hash = manager::hash_password(*pw);
  if (!hash) return app.report(hash.error(), kExitIncomplete);
  auto had = (*store)->set_password(*name, *hash);
  if (!had) return app.report(had.error(), kExitIncomplete);
  if (int rc = audit(app, **store, "user-passwd", *name)) return rc;
  if (app.options().json)
    print_json({{"name", *name}, {"changed", true}});
  else if (!app.options().quiet)
    std::printf("password of %s changed (their sessions ended)\n", name->c_str());
  return kExitOk;
}

int apitoken_create(App& app, const AccessOptions& o) {
  int code = kExitUsage;
  auto name = one_name(app, "manager apitoken create", o, code);
  if (!name) return code;
  auto role = role_of(app, "manager apitoken create", o, code);
  if (!role) return code;
  auto store = open_store(app);
  if (!store) return app.report(store.error(), kExitIncomplete);
  auto secret = manager::random_bytes(32);
  if (!secret) return app.report(secret.error(), kExitIncomplete);
  const std::string text = std::string(kApiTokenPrefix) + proto::channel::base64url(*secret);
  auto id = (*store)->create_api_token(
      {manager::sha256_hex(text), *name, *role, actor(), app.env().clock().now_ns()});
  if (!id) return app.report(id.error(), kExitIncomplete);
  if (int rc = audit(app, **store, "apitoken-create", std::to_string(*id) + " " + *name)) return rc;
  if (app.options().json) {
    print_json({{"id", *id}, {"name", *name}, {"role", o.role}, {"token", text}});
    return kExitOk;
  }
  std::printf("%s\n", text.c_str());
  if (!app.options().quiet)
    std::fprintf(stderr,
                 "API token %lld \"%s\" (%s). It is shown once: send it as "
                 "\"Authorization: Bearer TOKEN\".\n",
                 static_cast<long long>(*id), name->c_str(), o.role.c_str());
  return kExitOk;
}

int apitoken_list(App& app) {
  auto store = open_store(app);
  if (!store) return app.report(store.error(), kExitIncomplete);
  auto tokens = (*store)->list_api_tokens();
  if (!tokens) return app.report(tokens.error(), kExitIncomplete);
  auto last_used = [](int64_t ns) { return ns ? json(format_time_ns(ns)) : json(); };
  if (app.options().json) {
    auto a = json::array();
    for (const auto& t : *tokens)
      a.push_back({{"id", t.id},
                   {"name", t.name},
                   {"role", manager::to_string(t.role)},
                   {"created_by", t.created_by},
                   {"created_at", format_time_ns(t.created_at_ns)},
                   {"last_used", last_used(t.last_used_ns)},
                   {"revoked", t.revoked}});
    print_json({{"apitokens", a}, {"count", tokens->size()}});
    return kExitOk;
  }
  std::printf("%-6s  %-24s  %-8s  %-30s  %s\n", "ID", "NAME", "ROLE", "LAST USED", "STATE");
  for (const auto& t : *tokens)
    std::printf("%-6lld  %-24s  %-8s  %-30s  %s\n", static_cast<long long>(t.id), t.name.c_str(),
                std::string(manager::to_string(t.role)).c_str(),
                t.last_used_ns ? format_time_ns(t.last_used_ns).c_str() : "never",
                t.revoked ? "revoked" : "valid");
  return kExitOk;
}

int apitoken_revoke(App& app, const AccessOptions& o) {
  if (o.args.size() != 1 || o.args[0].empty() || o.args[0].size() > 18 ||
      o.args[0].find_first_not_of("0123456789") != std::string::npos)
    return app.report(Error{"manager apitoken revoke", "", 0, "give one ID (apitoken list)"},
                      kExitUsage);
  auto store = open_store(app);
  if (!store) return app.report(store.error(), kExitIncomplete);
  auto had = (*store)->revoke_api_token(std::stoll(o.args[0]));
  if (!had) return app.report(had.error(), kExitIncomplete);
  if (!*had)
    return app.report(Error{"manager apitoken revoke", o.args[0], ENOENT, "no such API token"},
                      kExitUsage);
  if (int rc = audit(app, **store, "apitoken-revoke", o.args[0])) return rc;
  if (app.options().json)
    print_json({{"id", std::stoll(o.args[0])}, {"revoked", true}});
  else if (!app.options().quiet)
    std::printf("API token %s revoked\n", o.args[0].c_str());
  return kExitOk;
}

}  // namespace mamori::cli
