import { addBan, liftBan, listAgents, listBans, listEvents, mayAct, type Ban, type StoredEvent } from "../api";
import { h, saveAs } from "../dom";
import { text } from "../ecs";
import { formatTime, t } from "../i18n";
import { link } from "../router";
import { createOutcome } from "../outcome";

const TTLS = [
  ["ttl.1h", 3600],
  ["ttl.24h", 86400],
  ["ttl.7d", 7 * 86400],
  ["ttl.permanent", 0],
] as const;

/** One address per line: for a firewall, a CDN or a script. */
export function plainList(bans: Ban[]): string {
  return bans.map((b) => b.address).join("\n") + (bans.length ? "\n" : "");
}

/** An nftables table with the bans as two interval sets, for `nft -f`. */
export function nftablesSets(bans: Ban[], exportedAt: Date): string {
  const v4 = bans.filter((b) => !b.address.includes(":")).map((b) => b.address);
  const v6 = bans.filter((b) => b.address.includes(":")).map((b) => b.address);
  // nft refuses an empty element list: a set without bans is declared without one.
  const set = (name: string, type: string, elements: string[]) =>
    `  set ${name} {\n    type ${type}\n    flags interval\n` +
    (elements.length ? `    elements = { ${elements.join(", ")} }\n` : "") +
    "  }\n";
  return (
    `# mamori fleet bans, exported ${exportedAt.toISOString()}: nft -f FILE\n` +
    "table inet mamori_export {\n" +
    set("banned_v4", "ipv4_addr", v4) +
    set("banned_v6", "ipv6_addr", v6) +
    "}\n"
  );
}

/** What decided a ban: the deciding agent's own ip-banned event (not a pushed copy). */
interface Decision {
  rule: string;
  request: string;
  event: StoredEvent;
}

/** The newest decision for each address among the fleet's latest ip-banned events. */
async function decisions(): Promise<Map<string, Decision>> {
  const page = await listEvents({ action: "ip-banned" }, undefined, 1000);
  const found = new Map<string, Decision>();
  for (const stored of page.events) {
    const e = stored.event;
    const ip = text(e, "source.ip");
    if (!ip || found.has(ip) || text(e, "mamori.ban.origin")) continue;
    found.set(ip, { rule: text(e, "rule.name"), request: text(e, "url.original"), event: stored });
  }
  return found;
}

export interface BansPage {
  node: HTMLElement;
  refresh: () => Promise<void>;
}

export function createBansPage(onFailure: (error: unknown) => void): BansPage {
  let bans: Ban[] = [];
  let past: Ban[] = [];
  let decided = new Map<string, Decision>();
  let agentNames = new Map<string, string>();
  const operator = mayAct("operator");

  const summary = h("p", { class: "summary", "aria-live": "polite" });
  const body = h("tbody");
  const pastBody = h("tbody");
  const pastSummary = h("p", { class: "summary" });
  const outcome = createOutcome("bans-outcome", onFailure);

  const download = (name: string, type: string, text: () => string) => {
    const button = h("button", { type: "button", "data-export": name }, t(name === "bans.txt" ? "exportList" : "exportNft"));
    button.addEventListener("click", () => saveAs(name, text(), type));
    return button;
  };

  function origin(b: Ban): string {
    if (b.origin === "manager") return t("manual");
    return agentNames.get(b.origin) ?? b.origin;
  }

  /** Address, reason, who decided, rule, request, since: both tables' first cells. */
  function what(b: Ban): HTMLElement[] {
    return [
      h("td", {}, b.address),
      h("td", {}, b.reason),
      h("td", {}, origin(b)),
      ...why(b),
      h("td", {}, formatTime(b.created_at_ns)),
    ];
  }

  /** The rule and the request that decided a ban, linked to its incident. */
  function why(b: Ban): HTMLElement[] {
    const d = decided.get(b.address);
    if (!d) return [h("td", {}, b.origin === "manager" ? "manual" : ""), h("td", {})];
    return [
      h("td", {}, d.rule),
      h(
        "td",
        { class: "ban-request" },
        d.request ? link(`/incident/${d.event.agent_key}/${d.event.row}`, d.request) : "",
      ),
    ];
  }

  function draw(): void {
    body.replaceChildren(
      ...bans.map((b) =>
        h(
          "tr",
          { "data-address": b.address },
          ...what(b),
          h("td", {}, b.expires_at_ns === null ? t("ttl.permanent") : formatTime(b.expires_at_ns)),
          operator &&
            h(
              "td",
              {},
              h(
                "button",
                {
                  type: "button",
                  class: "unban",
                  "aria-label": t("unbanAddress", { address: b.address }),
                  onclick: () => unban(b.address),
                },
                t("unban"),
              ),
            ),
        ),
      ),
    );
    summary.textContent = bans.length ? t("bansActive", { n: bans.length }) : t("noBans");
    pastBody.replaceChildren(
      ...past.map((b) =>
        h(
          "tr",
          { "data-past": b.address },
          ...what(b),
          h(
            "td",
            {},
            b.lifted_at_ns !== null
              ? t("liftedAt", { time: formatTime(b.lifted_at_ns) })
              : t("expiredAt", { time: formatTime(b.expires_at_ns ?? 0) }),
          ),
        ),
      ),
    );
    pastSummary.textContent = past.length ? "" : t("noPastBans");
  }

  async function refresh(): Promise<void> {
    [bans, past, decided] = await Promise.all([listBans(), listBans("past"), decisions()]);
    draw();
  }

  function unban(address: string): void {
    if (!window.confirm(t("confirmUnban", { address }))) return;
    liftBan(address)
      .then(() => {
        outcome.ok(t("unbanned", { address }));
        return refresh();
      })
      .catch(outcome.report);
  }

  const address = h("input", { id: "ban-address", required: true, placeholder: "203.0.113.7" });
  const ttl = h("select", { id: "ban-ttl" }, ...TTLS.map(([key, s]) => h("option", { value: s }, t(key))));
  ttl.value = "86400";
  const reason = h("input", { id: "ban-reason" });
  const form =
    operator &&
    h(
      "form",
      { class: "filters", id: "ban-form", "aria-label": t("addBan") },
      h("div", { class: "field" }, h("label", { for: "ban-address" }, t("address")), address),
      h("div", { class: "field" }, h("label", { for: "ban-ttl" }, t("duration")), ttl),
      h("div", { class: "field" }, h("label", { for: "ban-reason" }, t("reason")), reason),
      h("button", { type: "submit" }, t("addBan")),
    );
  if (form)
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const target = address.value.trim();
      if (!target || !window.confirm(t("confirmBan", { address: target }))) return;
      addBan(target, Number(ttl.value), reason.value.trim())
        .then(() => {
          outcome.ok(t("banned", { address: target }));
          address.value = "";
          reason.value = "";
          return refresh();
        })
        .catch(outcome.report);
    });

  const node = h(
    "main",
    {},
    h("h1", {}, t("bans")),
    summary,
    form,
    outcome.node,
    h(
      "table",
      { class: "events", "aria-label": t("bans") },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...(["address", "reason", "decidedBy", "rule", "request", "since", "expires"] as const).map((k) =>
            h("th", { scope: "col" }, t(k)),
          ),
          operator && h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, t("unban"))),
        ),
      ),
      body,
    ),
    h(
      "p",
      { class: "exports" },
      download("bans.txt", "text/plain", () => plainList(bans)),
      " ",
      download("mamori-bans.nft", "text/plain", () => nftablesSets(bans, new Date())),
    ),
    h("h2", {}, t("pastBans")),
    pastSummary,
    h(
      "table",
      { class: "events", id: "past-bans", "aria-label": t("pastBans") },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...(["address", "reason", "decidedBy", "rule", "request", "since", "ended"] as const).map((k) =>
            h("th", { scope: "col" }, t(k)),
          ),
        ),
      ),
      pastBody,
    ),
  );

  listAgents()
    .then((agents) => {
      agentNames = new Map(agents.map((a) => [a.agent_key, a.name]));
      draw();
    })
    .catch(onFailure);

  return { node, refresh };
}
