import {
  ApiError,
  compareGroup,
  listAgents,
  listCommandsAfter,
  mayAct,
  sendCommand,
  type Agent,
  type CommandRow,
  type DriftReport,
} from "../api";
import { h } from "../dom";
import { formatTime, t, type MessageKey } from "../i18n";

interface SortableColumn {
  /** Value of the header button's data-sort attribute. */
  key: string;
  label: MessageKey;
  value: (agent: Agent) => string | number;
}

const columns: SortableColumn[] = [
  { key: "name", label: "name", value: (agent) => agent.name },
  { key: "host", label: "host", value: (agent) => agent.hostname },
  { key: "group", label: "group", value: (agent) => agent.group },
  { key: "status", label: "status", value: (agent) => agent.status },
  { key: "last_seen", label: "lastSeen", value: (agent) => agent.last_seen_ns },
  { key: "version", label: "version", value: (agent) => agent.version },
  { key: "baseline", label: "baselineHash", value: (agent) => agent.baseline_root_hash },
  { key: "events", label: "events24h", value: (agent) => agent.events_24h },
];

export interface FleetPage {
  node: HTMLElement;
  /** Fetches the agents again and redraws the table. */
  refresh: () => Promise<void>;
  /** Stops following a bulk action's progress. */
  dispose: () => void;
}

// The bulk actions an operator runs over a selection: the command and its arguments.
const BULK_ACTIONS: Record<string, { label: MessageKey; command: string; args: string[] }> = {
  verify: { label: "bulk.verify", command: "verify", args: [] },
  "heal-clear": { label: "bulk.healClear", command: "heal-clear", args: [] },
  "mode-alert": { label: "bulk.modeAlert", command: "mode", args: ["*", "alert"] },
  "mode-restore": { label: "bulk.modeRestore", command: "mode", args: ["*", "restore"] },
  "mode-preserve": { label: "bulk.modePreserve", command: "mode", args: ["*", "preserve"] },
};
const FINAL_STATES = new Set(["ok", "refused", "failed"]);
const PROGRESS_POLL_MS = 1000;
const PROGRESS_GIVE_UP_MS = 120_000;

export function createFleetPage(): FleetPage {
  let agents: Agent[] = [];
  let sortKey = "name";
  let ascending = true;
  const operator = mayAct("operator");
  const selected = new Set<string>();

  const filter = h("input", { id: "fleet-filter", type: "search", placeholder: t("filter") });
  const summary = h("p", { class: "summary", "aria-live": "polite" });
  const body = h("tbody");

  const headerRow = h("tr");
  const selectShown = h("input", { type: "checkbox", id: "select-shown", "aria-label": t("selectShown") });
  if (operator) headerRow.appendChild(h("th", { scope: "col" }, selectShown));
  for (const column of columns) {
    headerRow.appendChild(
      h("th", { scope: "col" }, h("button", { type: "button", "data-sort": column.key }, t(column.label))),
    );
  }
  headerRow.appendChild(h("th", { scope: "col" }, t("roots")));

  // One listener for all header buttons; clicking the sorted column again flips the order.
  headerRow.addEventListener("click", (event) => {
    if (!(event.target instanceof Element)) return;
    const key = event.target.closest("button")?.dataset.sort;
    if (!key) return;
    ascending = key === sortKey ? !ascending : true;
    sortKey = key;
    draw();
  });
  filter.addEventListener("input", () => draw());
  selectShown.addEventListener("change", () => {
    for (const agent of shownAgents()) {
      if (selectShown.checked) selected.add(agent.agent_key);
      else selected.delete(agent.agent_key);
    }
    draw();
  });

  function matches(agent: Agent, needle: string): boolean {
    return [agent.name, agent.hostname, agent.group, agent.status].some((field) =>
      field.toLowerCase().includes(needle),
    );
  }

  function shownAgents(): Agent[] {
    const needle = filter.value.trim().toLowerCase();
    const column = columns.find((candidate) => candidate.key === sortKey) ?? columns[0];
    return agents
      .filter((agent) => !needle || matches(agent, needle))
      .sort((a, b) => {
        const left = column.value(a);
        const right = column.value(b);
        const order =
          typeof left === "number" && typeof right === "number"
            ? left - right
            : String(left).localeCompare(String(right));
        return ascending ? order : -order;
      });
  }

  function draw(): void {
    const shown = shownAgents();
    body.replaceChildren(
      ...shown.map((agent) =>
        h(
          "tr",
          { "data-agent": agent.agent_key },
          operator && h("td", {}, selectBox(agent)),
          h("td", { class: "name" }, agent.name),
          h("td", {}, agent.hostname),
          h("td", {}, agent.group),
          h("td", {}, h("span", { class: `status status-${agent.status}` }, t(`status.${agent.status}`))),
          h("td", {}, formatTime(agent.last_seen_ns)),
          h("td", {}, agent.version),
          h("td", { class: "hash", title: agent.baseline_root_hash }, agent.baseline_root_hash.slice(0, 12)),
          h("td", { class: "number" }, agent.events_24h),
          h("td", {}, agent.roots.map((root) => `${root.path} (${root.mode})`).join(", ")),
        ),
      ),
    );

    // The summary counts the whole fleet, not just the rows the filter leaves.
    const online = agents.filter((agent) => agent.status === "online").length;
    const lost = agents.filter((agent) => agent.status === "lost").length;
    summary.textContent = agents.length
      ? t("summary", { online, all: agents.length, lost })
      : t("noAgents");
    // An agent that left the fleet leaves the selection.
    const known = new Set(agents.map((a) => a.agent_key));
    for (const key of selected) if (!known.has(key)) selected.delete(key);
    selectShown.checked = shown.length > 0 && shown.every((a) => selected.has(a.agent_key));
    selectedCount.textContent = t("bulk.selected", { n: selected.size });
    run.disabled = selected.size === 0;
  }

  function selectBox(agent: Agent): HTMLInputElement {
    const box = h("input", {
      type: "checkbox",
      class: "select-agent",
      "aria-label": t("selectAgent", { name: agent.name }),
      checked: selected.has(agent.agent_key),
    });
    box.addEventListener("change", () => {
      if (box.checked) selected.add(agent.agent_key);
      else selected.delete(agent.agent_key);
      draw();
    });
    return box;
  }

  // ---- bulk actions over the selection (operators) ----------------------------------
  const selectedCount = h("span", { id: "bulk-count" });
  const action = h(
    "select",
    { id: "bulk-action" },
    ...Object.entries(BULK_ACTIONS).map(([key, a]) => h("option", { value: key }, t(a.label))),
  );
  const run = h("button", { type: "button", id: "bulk-run", disabled: true }, t("bulk.run"));
  const progressBody = h("tbody");
  const progress = h(
    "table",
    { class: "events", id: "bulk-progress", hidden: true, "aria-label": t("bulk.progress") },
    h("thead", {}, h("tr", {}, ...(["agent", "state", "message"] as const).map((k) => h("th", { scope: "col" }, t(k))))),
    progressBody,
  );
  let polling: number | undefined;

  function showProgress(rows: Map<number, { agent: string; state: string; detail: string }>): void {
    progressBody.replaceChildren(
      ...[...rows.entries()].map(([id, r]) =>
        h(
          "tr",
          { "data-command": id, "data-state": r.state },
          h("td", {}, r.agent),
          h("td", {}, t(`command.${r.state}` as MessageKey)),
          h("td", {}, r.detail),
        ),
      ),
    );
  }

  function detail(row: CommandRow): string {
    return row.answer?.error?.message ?? "";
  }

  run.addEventListener("click", () => {
    const chosen = BULK_ACTIONS[action.value];
    const targets = agents.filter((a) => selected.has(a.agent_key));
    if (!chosen || !targets.length) return;
    if (!window.confirm(t("bulk.confirm", { action: t(chosen.label), n: targets.length }))) return;
    window.clearTimeout(polling);
    const rows = new Map<number, { agent: string; state: string; detail: string }>();
    progress.hidden = false;
    run.disabled = true;
    Promise.all(
      targets.map((agent) =>
        sendCommand(agent.agent_key, chosen.command, chosen.args).then(
          (id) => rows.set(id, { agent: agent.name, state: "pending", detail: "" }),
          (error: unknown) =>
            rows.set(-rows.size - 1, {
              agent: agent.name,
              state: "failed",
              detail: error instanceof ApiError ? error.message : String(error),
            }),
        ),
      ),
    ).then(() => {
      showProgress(rows);
      run.disabled = selected.size === 0;
      const ids = [...rows.keys()].filter((id) => id > 0);
      if (!ids.length) return;
      const after = Math.min(...ids) - 1;
      const started = Date.now();
      const poll = () => {
        listCommandsAfter(after)
          .then((answered) => {
            for (const row of answered) {
              const mine = rows.get(row.id);
              if (mine) rows.set(row.id, { ...mine, state: row.state, detail: detail(row) });
            }
            showProgress(rows);
            const open = ids.some((id) => !FINAL_STATES.has(rows.get(id)?.state ?? ""));
            if (open && Date.now() - started < PROGRESS_GIVE_UP_MS)
              polling = window.setTimeout(poll, PROGRESS_POLL_MS);
          })
          .catch(() => {
            polling = window.setTimeout(poll, PROGRESS_POLL_MS);
          });
      };
      poll();
    });
  });

  const bulk =
    operator &&
    h(
      "section",
      { class: "filters", id: "bulk", "aria-label": t("bulk.title") },
      selectedCount,
      h("label", { for: "bulk-action", class: "visually-hidden" }, t("bulk.title")),
      action,
      run,
    );


  // ---- drift: do the nodes of a group hold the same baseline? (any role may ask) ----
  // The option "" asks about every agent: a group is never named "" in the list.
  const driftGroup = h("select", { id: "drift-group" });
  const driftRun = h("button", { type: "button", id: "drift-run" }, t("drift.run"));
  const driftResult = h("div", { id: "drift-result", "aria-live": "polite" });

  function drawGroups(): void {
    const groups = [...new Set(agents.map((a) => a.group).filter((g) => g))].sort();
    const current = driftGroup.value;
    driftGroup.replaceChildren(
      ...groups.map((g) => h("option", { value: g }, g)),
      h("option", { value: "" }, t("drift.all")),
    );
    if ([...driftGroup.options].some((o) => o.value === current)) driftGroup.value = current;
  }

  function showDrift(report: DriftReport): void {
    const parts: HTMLElement[] = [];
    for (const root of report.roots) {
      parts.push(
        h(
          "p",
          { class: "drift-agree" },
          t("drift.agree", {
            root: root.root,
            n: root.reference.agents.length,
            digest: root.reference.digest.slice(0, 12),
            names: root.reference.agents.map((a) => a.name).join(", "),
          }),
        ),
      );
      for (const node of root.drifted) {
        parts.push(
          h(
            "details",
            { class: "drift-node", "data-agent": node.agent_key, open: true },
            h("summary", {}, t("drift.differs", { name: node.name, root: root.root })),
            node.error && h("p", { class: "error" }, node.error),
            h(
              "ul",
              {},
              ...node.differences.map((d) =>
                h("li", { "data-kind": d.kind }, `${t(`kind.${d.kind}`)} ${d.type} `, h("code", {}, d.path)),
              ),
              node.truncated && h("li", {}, t("drift.truncated")),
            ),
          ),
        );
      }
    }
    for (const a of report.unanswered) parts.push(h("p", { class: "error" }, t("drift.unanswered", a)));
    for (const a of report.offline)
      parts.push(h("p", {}, t("drift.offline", { name: a.name, status: t(`status.${a.status}`) })));
    if (!report.drift && !report.unanswered.length) parts.push(h("p", { class: "drift-none" }, t("drift.none")));
    driftResult.replaceChildren(...parts);
  }

  driftRun.addEventListener("click", () => {
    driftRun.disabled = true;
    driftResult.replaceChildren(h("p", {}, t("drift.running")));
    compareGroup(driftGroup.value === "" ? null : driftGroup.value)
      .then(showDrift)
      .catch((error: unknown) => {
        const busy = error instanceof ApiError && error.status === 429;
        const why = error instanceof Error ? error.message : String(error);
        driftResult.replaceChildren(h("p", { class: "error" }, busy ? t("drift.busy") : t("loadFailed", { why })));
      })
      .finally(() => {
        driftRun.disabled = false;
      });
  });

  const drift = h(
    "section",
    { id: "drift", "aria-labelledby": "drift-title" },
    h("h2", { id: "drift-title" }, t("drift.title")),
    h("div", { class: "filters" }, h("label", { for: "drift-group" }, t("drift.group")), driftGroup, driftRun),
    driftResult,
  );

  const node = h(
    "main",
    {},
    h("h1", {}, t("fleet")),
    summary,
    h("label", { for: "fleet-filter", class: "visually-hidden" }, t("filter")),
    filter,
    bulk,
    h("table", { class: "agents", "aria-label": t("agents") }, h("thead", {}, headerRow), body),
    operator && progress,
    drift,
  );

  return {
    node,
    dispose: () => window.clearTimeout(polling),
    refresh: async () => {
      agents = await listAgents();
      draw();
      drawGroups();
    },
  };
}
