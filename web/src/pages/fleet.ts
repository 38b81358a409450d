import { listAgents, type Agent } from "../api";
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
  { key: "events", label: "events24h", value: (agent) => agent.events_24h },
];

export interface FleetPage {
  node: HTMLElement;
  /** Fetches the agents again and redraws the table. */
  refresh: () => Promise<void>;
}

export function createFleetPage(): FleetPage {
  let agents: Agent[] = [];
  let sortKey = "name";
  let ascending = true;

  const filter = h("input", { id: "fleet-filter", type: "search", placeholder: t("filter") });
  const summary = h("p", { class: "summary", "aria-live": "polite" });
  const body = h("tbody");

  const headerRow = h("tr");
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

  function matches(agent: Agent, needle: string): boolean {
    return [agent.name, agent.hostname, agent.group, agent.status].some((field) =>
      field.toLowerCase().includes(needle),
    );
  }

  function draw(): void {
    const needle = filter.value.trim().toLowerCase();
    const column = columns.find((candidate) => candidate.key === sortKey) ?? columns[0];
    const shown = agents
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

    body.replaceChildren(
      ...shown.map((agent) =>
        h(
          "tr",
          { "data-agent": agent.agent_key },
          h("td", {}, agent.name),
          h("td", {}, agent.hostname),
          h("td", {}, agent.group),
          h("td", {}, h("span", { class: `status status-${agent.status}` }, t(`status.${agent.status}`))),
          h("td", {}, formatTime(agent.last_seen_ns)),
          h("td", {}, agent.version),
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
  }

  const node = h(
    "main",
    {},
    h("h1", {}, t("fleet")),
    summary,
    h("label", { for: "fleet-filter", class: "visually-hidden" }, t("filter")),
    filter,
    h("table", { class: "agents", "aria-label": t("agents") }, h("thead", {}, headerRow), body),
  );

  return {
    node,
    refresh: async () => {
      agents = await listAgents();
      draw();
    },
  };
}
