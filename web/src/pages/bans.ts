import { addBan, liftBan, listAgents, listBans, mayAct, type Ban } from "../api";
import { h, saveAs } from "../dom";
import { formatTime, t } from "../i18n";
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

export interface BansPage {
  node: HTMLElement;
  refresh: () => Promise<void>;
}

export function createBansPage(onFailure: (error: unknown) => void): BansPage {
  let bans: Ban[] = [];
  let agentNames = new Map<string, string>();
  const operator = mayAct("operator");

  const summary = h("p", { class: "summary", "aria-live": "polite" });
  const body = h("tbody");
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

  function draw(): void {
    body.replaceChildren(
      ...bans.map((b) =>
        h(
          "tr",
          { "data-address": b.address },
          h("td", {}, b.address),
          h("td", {}, b.reason),
          h("td", {}, origin(b)),
          h("td", {}, formatTime(b.created_at_ns)),
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
  }

  async function refresh(): Promise<void> {
    bans = await listBans();
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
          ...(["address", "reason", "decidedBy", "since", "expires"] as const).map((k) => h("th", { scope: "col" }, t(k))),
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
  );

  listAgents()
    .then((agents) => {
      agentNames = new Map(agents.map((a) => [a.agent_key, a.name]));
      draw();
    })
    .catch(onFailure);

  return { node, refresh };
}
