import {
  eventHistogram,
  listAgents,
  listEvents,
  liveEventsUrl,
  type Agent,
  type EventFilter,
  type StoredEvent,
} from "../api";
import { createEventChart } from "../chart";
import { h } from "../dom";
import { formatStamp, severityBand, severityKey, t, type MessageKey } from "../i18n";
import { link } from "../router";

// What the page keeps in the DOM: a live stream on a busy fleet must not grow it forever.
const MAX_ROWS = 1000;
const RECONNECT_MS = 2000;

const RANGES = { "1h": 3600, "24h": 86400, "7d": 7 * 86400, all: 0 } as const;
type Range = keyof typeof RANGES;
// The chart's bars: a minute, a quarter of an hour, two hours; "all" in a hundred.
const BUCKETS: Record<Range, number> = { "1h": 60, "24h": 96, "7d": 84, all: 100 };
// New events redraw the chart at most this often (one query however busy the stream).
const CHART_REFRESH_MS = 2000;
const SEVERITIES = [1, 3, 5, 7] as const;

/** The filters as the page's URL carries them, so that every view has a permalink. */
interface ViewState {
  agent: string;
  group: string;
  action: string;
  path: string;
  address: string;
  severity: string;
  decoy: string;
  range: Range;
}

function readState(search: string): ViewState {
  const query = new URLSearchParams(search);
  const range = query.get("range") ?? "24h";
  return {
    agent: query.get("agent") ?? "",
    group: query.get("group") ?? "",
    action: query.get("action") ?? "",
    path: query.get("path") ?? "",
    address: query.get("address") ?? "",
    severity: query.get("severity") ?? "",
    decoy: query.get("decoy") ?? "",
    range: range in RANGES ? (range as Range) : "24h",
  };
}

function writeState(state: ViewState): string {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(state)) if (value !== "") query.set(key, value);
  const text = query.toString();
  return text ? `?${text}` : "";
}

function toFilter(state: ViewState, nowMs: number): EventFilter {
  const seconds = RANGES[state.range];
  return {
    agent: state.agent || undefined,
    group: state.group || undefined,
    action: state.action.trim() || undefined,
    path_prefix: state.path.trim() || undefined,
    source_ip: state.address.trim() || undefined,
    min_severity: state.severity ? Number(state.severity) : undefined,
    decoy: state.decoy.trim() || undefined,
    since: seconds ? (nowMs - seconds * 1000) * 1e6 : undefined,
  };
}

export interface EventsPage {
  node: HTMLElement;
  dispose: () => void;
}

export function createEventsPage(onFailure: (error: unknown) => void): EventsPage {
  let state = readState(location.search);
  let agents = new Map<string, Agent>();
  let next: number | undefined;
  let newestRow = 0;
  let socket: WebSocket | undefined;
  let reconnect: number | undefined;
  let generation = 0; // a reload or a filter change makes older answers stale
  let disposed = false;
  let chartTimer: number | undefined;
  const chart = createEventChart();

  const field = (id: string, label: MessageKey, control: HTMLElement) =>
    h("div", { class: "field" }, h("label", { for: id }, t(label)), control);

  const agentSelect = h("select", { id: "events-agent" }, h("option", { value: "" }, t("anyAgent")));
  const groupSelect = h("select", { id: "events-group" }, h("option", { value: "" }, t("anyGroup")));
  const action = h("input", { id: "events-action", type: "search", value: state.action });
  const path = h("input", { id: "events-path", type: "search", value: state.path });
  const address = h("input", { id: "events-address", type: "search", value: state.address });
  const decoy = h("input", { id: "events-decoy", type: "search", value: state.decoy });
  const severity = h(
    "select",
    { id: "events-severity" },
    h("option", { value: "" }, t("anySeverity")),
    ...SEVERITIES.map((s) => h("option", { value: s }, `≥ ${t(severityKey(s))}`)),
  );
  severity.value = state.severity;
  const range = h(
    "select",
    { id: "events-range" },
    ...(Object.keys(RANGES) as Range[]).map((r) => h("option", { value: r }, t(`range.${r}`))),
  );
  range.value = state.range;

  const liveBadge = h("span", { id: "events-live", class: "badge", "aria-live": "polite" });
  const summary = h("p", { class: "summary", "aria-live": "polite" });
  const body = h("tbody");
  const older = h("button", { type: "button", id: "events-older", hidden: true }, t("older"));

  function row(stored: StoredEvent, fresh: boolean): HTMLTableRowElement {
    const e = stored.event;
    const agent = agents.get(stored.agent_key);
    const sev = e.event?.severity ?? 0;
    return h(
      "tr",
      { "data-row": stored.row, "data-action": e.event?.action ?? "", class: fresh ? "fresh" : undefined },
      h("td", {}, formatStamp(e["@timestamp"])),
      h("td", {}, agent ? agent.name : stored.agent_key),
      h("td", {}, link(`/incident/${stored.agent_key}/${stored.row}`, e.event?.action ?? "", { title: t("open") })),
      h("td", {}, h("span", { class: `severity severity-${severityBand(sev)}` }, t(severityKey(sev)))),
      h("td", { class: "path" }, e.file?.path ?? ""),
      h("td", {}, e.source?.ip ?? ""),
      h("td", {}, e.message ?? ""),
    );
  }

  function count(): void {
    const n = body.rows.length;
    summary.textContent = n ? t("shown", { n }) : t("noEvents");
  }

  function trim(): void {
    while (body.rows.length > MAX_ROWS) body.deleteRow(-1);
  }

  function closeLive(): void {
    window.clearTimeout(reconnect);
    if (socket) {
      socket.onclose = null;
      socket.close();
      socket = undefined;
    }
  }

  function openLive(mine: number): void {
    if (disposed || mine !== generation) return;
    // From the newest row shown, so a reconnect misses nothing and repeats nothing.
    const ws = new WebSocket(liveEventsUrl(toFilter(state, Date.now()), newestRow));
    socket = ws;
    ws.onopen = () => {
      liveBadge.textContent = t("live");
      liveBadge.className = "badge live";
    };
    ws.onmessage = (message: MessageEvent<string>) => {
      const batch = JSON.parse(message.data) as { events: StoredEvent[]; next: number };
      // Oldest first in a batch: each goes on top, so the newest ends up first.
      for (const stored of batch.events) {
        if (stored.row <= newestRow) continue;
        newestRow = stored.row;
        body.insertBefore(row(stored, true), body.firstChild);
      }
      trim();
      count();
      if (batch.events.length && chartTimer === undefined)
        chartTimer = window.setTimeout(() => {
          chartTimer = undefined;
          drawChart(mine);
        }, CHART_REFRESH_MS);
    };
    ws.onclose = () => {
      liveBadge.textContent = t("reconnecting");
      liveBadge.className = "badge";
      reconnect = window.setTimeout(() => openLive(mine), RECONNECT_MS);
    };
  }

  function drawChart(mine: number): void {
    eventHistogram(toFilter(state, Date.now()), BUCKETS[state.range])
      .then((histogram) => {
        if (mine === generation) chart.show(histogram);
      })
      .catch(onFailure);
  }

  async function load(): Promise<void> {
    const mine = ++generation;
    closeLive();
    body.replaceChildren();
    drawChart(mine);
    const page = await listEvents(toFilter(state, Date.now()));
    if (mine !== generation) return;
    newestRow = page.events[0]?.row ?? newestRow;
    body.append(...page.events.map((e) => row(e, false)));
    next = page.next;
    older.hidden = next === undefined;
    count();
    openLive(mine);
  }

  async function loadOlder(): Promise<void> {
    if (next === undefined) return;
    const mine = generation;
    const page = await listEvents(toFilter(state, Date.now()), next);
    if (mine !== generation) return;
    body.append(...page.events.map((e) => row(e, false)));
    next = page.next;
    older.hidden = next === undefined;
    trim();
    count();
  }

  function changed(): void {
    state = {
      agent: agentSelect.value,
      group: groupSelect.value,
      action: action.value,
      path: path.value,
      address: address.value,
      severity: severity.value,
      decoy: decoy.value,
      range: range.value as Range,
    };
    history.replaceState(null, "", location.pathname + writeState(state));
    load().catch(onFailure);
  }

  for (const control of [agentSelect, groupSelect, severity, range]) control.addEventListener("change", changed);
  for (const control of [action, path, address, decoy]) control.addEventListener("change", changed);
  older.addEventListener("click", () => loadOlder().catch(onFailure));

  const node = h(
    "main",
    {},
    h("h1", {}, t("events"), " ", liveBadge),
    h(
      "form",
      { class: "filters", role: "search", onsubmit: (event: Event) => event.preventDefault() },
      field("events-range", "range", range),
      field("events-agent", "agent", agentSelect),
      field("events-group", "group", groupSelect),
      field("events-action", "action", action),
      field("events-path", "path", path),
      field("events-address", "address", address),
      field("events-severity", "severity", severity),
      field("events-decoy", "decoy", decoy),
    ),
    chart.node,
    summary,
    h(
      "table",
      { class: "events", "aria-label": t("events") },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...(["time", "agent", "action", "severity", "path", "address", "message"] as const).map((k) =>
            h("th", { scope: "col" }, t(k)),
          ),
        ),
      ),
      body,
    ),
    older,
  );

  // The agents first: rows show their names, and the filter lists them.
  listAgents()
    .then((list) => {
      agents = new Map(list.map((a) => [a.agent_key, a]));
      for (const a of [...list].sort((x, y) => x.name.localeCompare(y.name)))
        agentSelect.append(h("option", { value: a.agent_key }, a.name));
      agentSelect.value = state.agent;
      for (const g of [...new Set(list.map((a) => a.group).filter((g) => g))].sort())
        groupSelect.append(h("option", { value: g }, g));
      groupSelect.value = state.group;
      return load();
    })
    .catch(onFailure);

  return {
    node,
    dispose: () => {
      disposed = true;
      generation++;
      window.clearTimeout(chartTimer);
      closeLive();
    },
  };
}
