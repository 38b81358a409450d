import {
  addUser,
  createToken,
  deleteUser,
  listAudit,
  listSinks,
  listTokens,
  listUsers,
  mayAct,
  revokeToken,
  testSinks,
  type AuditEntry,
  type EnrollmentToken,
  type Role,
} from "../api";
import { h } from "../dom";
import { formatTime, t, type MessageKey } from "../i18n";
import { createOutcome } from "../outcome";

const EXPIRIES = [
  ["expires.never", 0],
  ["expires.1d", 86400],
  ["expires.7d", 7 * 86400],
  ["expires.30d", 30 * 86400],
] as const;
const ROLES: Role[] = ["viewer", "operator", "admin"];

function table(label: MessageKey, headers: MessageKey[], body: HTMLTableSectionElement, actions: boolean) {
  return h(
    "table",
    { class: "events", "aria-label": t(label) },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ...headers.map((k) => h("th", { scope: "col" }, t(k))),
        actions && h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, t("actions"))),
      ),
    ),
    body,
  );
}

function field(id: string, label: MessageKey, control: HTMLElement): HTMLElement {
  return h("div", { class: "field" }, h("label", { for: id }, t(label)), control);
}

function tokenState(token: EnrollmentToken, nowNs: number): MessageKey {
  if (token.revoked) return "token.revoked";
  if (token.expires_at_ns !== null && token.expires_at_ns <= nowNs) return "token.expired";
  if (token.uses_left === 0) return "token.usedUp";
  return "token.active";
}

export interface SettingsPage {
  node: HTMLElement;
  refresh: () => Promise<void>;
}

export function createSettingsPage(onFailure: (error: unknown) => void): SettingsPage {
  const operator = mayAct("operator");
  const admin = mayAct("admin");
  const outcome = createOutcome("settings-outcome", onFailure);
  function done(message: string): Promise<void> {
    outcome.ok(message);
    return refresh();
  }

  // ---- enrollment tokens --------------------------------------------------------------
  const tokenBody = h("tbody");
  const made = h("div", { id: "token-made", hidden: true });
  const group = h("input", { id: "token-group", value: "default", required: true, maxlength: 64 });
  const uses = h("input", { id: "token-uses", type: "number", min: 1, placeholder: t("unlimited") });
  const expiry = h("select", { id: "token-expiry" }, ...EXPIRIES.map(([k, s]) => h("option", { value: s }, t(k))));
  const tokenForm =
    operator &&
    h(
      "form",
      { class: "filters", id: "token-form", "aria-label": t("createToken") },
      field("token-group", "group", group),
      field("token-uses", "uses", uses),
      field("token-expiry", "expiresIn", expiry),
      h("button", { type: "submit" }, t("createToken")),
    );
  if (tokenForm)
    tokenForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const n = uses.value ? Number(uses.value) : undefined;
      const s = Number(expiry.value) || undefined;
      createToken(group.value.trim(), n, s)
        .then((token) => {
          // Shown once: the manager keeps only its hash.
          made.replaceChildren(
            h("p", {}, t("tokenOnce")),
            h("code", { id: "token-text" }, token),
          );
          made.hidden = false;
          return done(t("tokenCreated"));
        })
        .catch(outcome.report);
    });

  function drawTokens(tokens: EnrollmentToken[]): void {
    const now = Date.now() * 1e6;
    tokenBody.replaceChildren(
      ...tokens.map((token) => {
        const state = tokenState(token, now);
        return h(
          "tr",
          { "data-token": token.id },
          h("td", {}, token.id),
          h("td", {}, token.group),
          h("td", {}, token.uses_left === null ? t("unlimited") : token.uses_left),
          h("td", {}, token.used),
          h("td", {}, token.expires_at_ns === null ? t("expires.never") : formatTime(token.expires_at_ns)),
          h("td", { class: "token-state" }, t(state)),
          operator &&
            h(
              "td",
              {},
              state === "token.active" &&
                h(
                  "button",
                  {
                    type: "button",
                    class: "revoke",
                    onclick: () => {
                      if (!window.confirm(t("confirmRevoke", { id: token.id }))) return;
                      revokeToken(token.id)
                        .then(() => done(t("tokenRevoked", { id: token.id })))
                        .catch(outcome.report);
                    },
                  },
                  t("revoke"),
                ),
            ),
        );
      }),
    );
  }

  // ---- users (admin) ------------------------------------------------------------------
  const userBody = h("tbody");
  const userName = h("input", { id: "user-name", required: true, autocomplete: "off", maxlength: 64 });
  const userPassword = h("input", {
    id: "user-password",
    type: "password",
    required: true,
    minlength: 12,
    autocomplete: "new-password",
  });
  const userRole = h("select", { id: "user-role" }, ...ROLES.map((r) => h("option", { value: r }, t(`role.${r}`))));
  const userForm = h(
    "form",
    { class: "filters", id: "user-form", "aria-label": t("addUser") },
    field("user-name", "userName", userName),
    field("user-password", "password", userPassword),
    field("user-role", "role", userRole),
    h("button", { type: "submit" }, t("addUser")),
  );
  userForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const name = userName.value.trim();
    addUser(name, userPassword.value, userRole.value as Role)
      .then(() => {
        userName.value = "";
        userPassword.value = "";
        return done(t("userAdded", { name }));
      })
      .catch(outcome.report);
  });

  // ---- audit log (admin) --------------------------------------------------------------
  const auditBody = h("tbody");
  const olderAudit = h("button", { type: "button", id: "audit-older", hidden: true }, t("older"));
  let auditNext: number | undefined;
  const auditRow = (a: AuditEntry) =>
    h(
      "tr",
      { "data-audit": a.id },
      h("td", {}, formatTime(a.at_ns)),
      h("td", {}, a.actor),
      h("td", {}, a.address),
      h("td", {}, a.action),
      h("td", {}, a.target),
      h("td", {}, a.result),
    );
  olderAudit.addEventListener("click", () => {
    if (auditNext === undefined) return;
    listAudit(auditNext)
      .then((page) => {
        auditBody.append(...page.audit.map(auditRow));
        auditNext = page.next;
        olderAudit.hidden = auditNext === undefined;
      })
      .catch(outcome.report);
  });

  // ---- the manager's own sinks ---------------------------------------------------------
  const sinkBody = h("tbody");
  // Deliveries take a moment (a webhook's round trip, an SMTP dialogue, a retry after a
  // failure): looked at again, for up to half a minute.
  const SINK_RECHECK_MS = [1000, 3000, 6000, 15000, 30000];
  const testButton =
    operator &&
    h(
      "button",
      {
        type: "button",
        id: "sink-test",
        onclick: () => {
          if (!window.confirm(t("confirmSinkTest"))) return;
          testSinks()
            .then(() => {
              outcome.ok(t("sinkTestSent"));
              for (const ms of SINK_RECHECK_MS) window.setTimeout(() => drawSinks().catch(outcome.report), ms);
              return drawSinks();
            })
            .catch(outcome.report);
        },
      },
      t("sendTestAlert"),
    );

  async function drawSinks(): Promise<void> {
    const sinks = await listSinks();
    sinkBody.replaceChildren(
      ...(sinks.length
        ? sinks.map((k) =>
            h(
              "tr",
              { "data-sink": k.name, "data-failing": String(k.failing) },
              h("td", {}, k.name),
              h("td", {}, k.type),
              h("td", { class: "number" }, k.delivered),
              h("td", { class: "number" }, k.pending),
              h("td", { class: "number" }, k.failures),
              h("td", {}, k.failing ? h("span", { class: "error" }, k.last_error || t("sink.failing")) : t("sink.ok")),
            ),
          )
        : [h("tr", {}, h("td", { colspan: 6 }, t("noSinks")))]),
    );
  }

  async function refresh(): Promise<void> {
    drawTokens(await listTokens());
    await drawSinks();
    if (!admin) return;
    const users = await listUsers();
    userBody.replaceChildren(
      ...users.map((u) =>
        h(
          "tr",
          { "data-user": u.name },
          h("td", {}, u.name),
          h("td", {}, t(`role.${u.role}`)),
          h("td", {}, formatTime(u.created_at_ns)),
          h(
            "td",
            {},
            h(
              "button",
              {
                type: "button",
                class: "delete-user",
                onclick: () => {
                  if (!window.confirm(t("confirmDeleteUser", { name: u.name }))) return;
                  deleteUser(u.name)
                    .then(() => done(t("userDeleted", { name: u.name })))
                    .catch(outcome.report);
                },
              },
              t("deleteUser"),
            ),
          ),
        ),
      ),
    );
    const page = await listAudit();
    auditBody.replaceChildren(...page.audit.map(auditRow));
    auditNext = page.next;
    olderAudit.hidden = auditNext === undefined;
  }

  const node = h(
    "main",
    {},
    h("h1", {}, t("settings")),
    outcome.node,
    h("h2", {}, t("tokens")),
    tokenForm,
    made,
    table("tokens", ["id", "group", "usesLeft", "used", "expires", "state"], tokenBody, operator),
    h("h2", {}, t("sinks")),
    testButton,
    table("sinks", ["name", "type", "delivered", "pending", "failures", "state"], sinkBody, false),
    admin && h("h2", {}, t("users")),
    admin && userForm,
    admin && table("users", ["userName", "role", "created"], userBody, true),
    admin && h("h2", {}, t("audit")),
    admin && table("audit", ["time", "actor", "address", "action", "target", "result"], auditBody, false),
    admin && olderAudit,
  );
  return { node, refresh };
}
