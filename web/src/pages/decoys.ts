import { listAgents, listDecoys, type Decoy, type DecoyList } from "../api";
import { h } from "../dom";
import { currentLang, formatTime, t } from "../i18n";
import { link } from "../router";

const WINDOWS = [7, 30, 90] as const;

/** The share as a percentage, in the chosen language ("12.5%"); "—" without hits. */
export function formatRate(rate: number | null): string {
  if (rate === null) return "—";
  return new Intl.NumberFormat(currentLang() === "ja" ? "ja-JP" : "en-GB", {
    style: "percent",
    maximumFractionDigits: 1,
  }).format(rate);
}

/** The events page filtered on one decoy, over every stored event. */
export function decoyEventsPath(decoy: string): string {
  return `/events?${new URLSearchParams({ decoy, range: "all" })}`;
}

export interface DecoysPage {
  node: HTMLElement;
  refresh: () => Promise<void>;
}

export function createDecoysPage(onFailure: (error: unknown) => void): DecoysPage {
  let report: DecoyList | undefined;
  let agentNames = new Map<string, string>();
  let generation = 0; // a change of period makes older answers stale

  const summary = h("p", { class: "summary", "aria-live": "polite" });
  const incomplete = h("p", { class: "summary", id: "decoys-incomplete", hidden: true }, t("decoysIncomplete"));
  const body = h("tbody");
  const windowSelect = h(
    "select",
    { id: "decoys-window" },
    ...WINDOWS.map((n) => h("option", { value: n }, t("lastDays", { n }))),
  );
  windowSelect.value = "30";

  function agents(d: Decoy): string {
    return d.agents.map((key) => agentNames.get(key) || key).join(", ");
  }

  function rate(d: Decoy): string {
    if (d.false_positive_rate === null) return "—";
    return t("fpRate", { rate: formatRate(d.false_positive_rate), fp: d.false_positives, hits: d.hits });
  }

  function draw(): void {
    if (!report) return;
    body.replaceChildren(
      ...report.decoys.map((d) =>
        h(
          "tr",
          { "data-decoy": d.decoy },
          h("th", { scope: "row", class: "decoy-name" }, d.decoy),
          h("td", { class: "path" }, d.url),
          h("td", { class: "decoy-hits" }, d.hits),
          h("td", { class: "decoy-addresses" }, d.addresses),
          h("td", { class: "decoy-opened" }, d.opened),
          h("td", { class: "decoy-credentials" }, d.credential_uses),
          h("td", { class: "decoy-last" }, formatTime(d.last_ns)),
          h("td", { class: "decoy-fp" }, rate(d)),
          h("td", {}, agents(d)),
          h(
            "td",
            { class: "decoy-links" },
            link(decoyEventsPath(d.decoy), t("decoyEvents"), {
              "aria-label": t("decoyEventsOf", { decoy: d.decoy }),
            }),
            d.latest.row > 0 && " · ",
            d.latest.row > 0 &&
              link(`/incident/${encodeURIComponent(d.latest.agent_key)}/${d.latest.row}`, t("latestIncident"), {
                "aria-label": t("latestIncidentOf", { decoy: d.decoy }),
              }),
          ),
        ),
      ),
    );
    const hits = report.decoys.reduce((n, d) => n + d.hits, 0);
    const addresses = report.decoys.reduce((n, d) => n + d.addresses, 0);
    summary.textContent = report.decoys.length
      ? t("decoysSummary", { n: report.decoys.length, hits, addresses })
      : t("noDecoys");
    incomplete.hidden = report.complete;
  }

  async function refresh(): Promise<void> {
    const mine = ++generation;
    const answer = await listDecoys(Number(windowSelect.value));
    if (mine !== generation) return;
    report = answer;
    draw();
  }

  windowSelect.addEventListener("change", () => {
    refresh().catch(onFailure);
  });

  const node = h(
    "main",
    {},
    h("h1", {}, t("decoys")),
    h(
      "form",
      { class: "filters", onsubmit: (event: Event) => event.preventDefault() },
      h("div", { class: "field" }, h("label", { for: "decoys-window" }, t("decoyWindow")), windowSelect),
    ),
    summary,
    incomplete,
    h(
      "table",
      { class: "events", id: "decoys", "aria-label": t("decoys") },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...(
            [
              "decoy",
              "decoyTarget",
              "hits",
              "addresses",
              "openedOnHost",
              "credentialUses",
              "lastHit",
              "falsePositives",
              "agents",
              "decoyLinks",
            ] as const
          ).map((k) => h("th", { scope: "col" }, t(k))),
        ),
      ),
      body,
    ),
    h("p", { class: "summary" }, t("fpExplained")),
  );

  listAgents()
    .then((list) => {
      agentNames = new Map(list.map((a) => [a.agent_key, a.name]));
      draw();
    })
    .catch(onFailure);

  return { node, refresh };
}
