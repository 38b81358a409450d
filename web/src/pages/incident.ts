import {
  addBan,
  commandAnswer,
  eventsBetween,
  getEvent,
  liftBan,
  listAgents,
  listBans,
  mayAct,
  sendCommand,
  type EcsEvent,
  type StoredEvent,
} from "../api";
import { asText, fromBase64Url, lineDiff, sha256Hex } from "../diff";
import { h, saveAs } from "../dom";
import { text } from "../ecs";
import { formatStamp, t } from "../i18n";

const NS_PER_S = 1e9;

/** url.original is the log's whole request line ("POST /x HTTP/1.1") when it has one. */
function requestLine(e: EcsEvent): string {
  const method = text(e, "http.request.method");
  const url = text(e, "url.original");
  return !method || url.startsWith(`${method} `) ? url : `${method} ${url}`;
}
const timeNs = (e: EcsEvent) => (Date.parse(e["@timestamp"] ?? "") || 0) * 1e6;

/** Facts as a definition list, leaving out the empty ones. */
function facts(pairs: [string, string][]): HTMLElement {
  const list = h("dl", { class: "facts" });
  for (const [label, value] of pairs) if (value) list.append(h("dt", {}, label), h("dd", {}, value));
  return list;
}

interface EvidenceContent {
  base64url: string;
  complete: boolean;
}
interface EvidenceAnswer {
  after?: EvidenceContent;
  before?: EvidenceContent;
  before_missing?: string;
}

export interface IncidentPage {
  node: HTMLElement;
}

export function createIncidentPage(agentKey: string, row: number, onFailure: (error: unknown) => void): IncidentPage {
  const node = h("main", { class: "incident" }, h("h1", {}, t("incident")));
  const operator = mayAct("operator");

  async function build(): Promise<void> {
    const picked = await getEvent(agentKey, row);
    if (!picked) {
      node.append(h("p", { class: "error" }, t("noSuchEvent")));
      return;
    }
    // The incident hangs on the file event: the others name it in mamori.related_event.
    let anchor: StoredEvent = picked;
    const related = text(picked.event, "mamori.related_event");
    const at = timeNs(picked.event);
    if (related) {
      const around = await eventsBetween(agentKey, at - 3600 * NS_PER_S, at + 3600 * NS_PER_S);
      anchor = around.find((s) => s.event.event.id === related) ?? picked;
    }
    const anchorId = anchor.event.event.id;
    const start = timeNs(anchor.event);
    const story = (await eventsBetween(agentKey, start - 600 * NS_PER_S, start + 3600 * NS_PER_S)).filter(
      (s) => s.event.event.id === anchorId || text(s.event, "mamori.related_event") === anchorId,
    );
    if (!story.some((s) => s.row === anchor.row)) story.unshift(anchor);
    story.sort((x, y) => timeNs(x.event) - timeNs(y.event));

    const [agents, fleetBans] = await Promise.all([listAgents(), listBans()]);
    const bans = story.filter((s) => s.event.event.action === "ip-banned");
    const banOf = (ip: string) => bans.find((b) => text(b.event, "source.ip") === ip);
    const agentName = agents.find((a) => a.agent_key === agentKey)?.name ?? agentKey;
    const a = anchor.event;
    node.append(
      h("p", { class: "summary" }, `${agentName} · ${text(a, "file.path") || a.event.action} · ${formatStamp(a["@timestamp"])}`),
      h("h2", {}, t("timeline")),
      h(
        "ol",
        { class: "timeline" },
        ...story.map((s) =>
          h(
            "li",
            { "data-action": s.event.event.action },
            h("time", {}, formatStamp(s.event["@timestamp"])),
            " ",
            h("strong", {}, s.event.event.action),
            " ",
            s.event.message ?? "",
          ),
        ),
      ),
    );

    const requests = story.filter((s) => s.event.event.action === "tamper-attributed");
    node.append(h("h2", {}, t("requests")));
    if (!requests.length) node.append(h("p", { class: "summary" }, t("noRequests")));
    for (const r of requests) {
      const e = r.event;
      const ip = text(e, "source.ip");
      const ban = banOf(ip);
      node.append(
        h(
          "div",
          { class: "request", "data-ip": ip },
          facts([
            [t("address"), ip],
            [t("request"), `${requestLine(e)} → ${text(e, "http.response.status_code")}`],
            [t("userAgent"), text(e, "user_agent.original")],
            [t("attribution"), text(e, "mamori.attribution")],
            [
              t("rule"),
              ban
                ? text(ban.event, "rule.name")
                : text(e, "mamori.allowlisted") === "true"
                  ? t("allowlistedNotBanned")
                  : t("notBannedYet"),
            ],
            [t("accessLog"), text(e, "log.file.path")],
          ]),
          operator && ip && !fleetBans.some((f) => f.address === ip) && banButton(ip),
        ),
      );
    }

    node.append(
      h("h2", {}, t("theWrite")),
      facts([
        [t("path"), text(a, "file.path")],
        [t("process"), [text(a, "process.executable"), text(a, "process.pid") && `(${text(a, "process.pid")})`].join(" ").trim()],
        [t("parent"), [text(a, "process.parent.executable"), text(a, "process.parent.pid") && `(${text(a, "process.parent.pid")})`].join(" ").trim()],
        [t("user"), text(a, "user.name") || text(a, "user.id")],
        ["SHA-256", text(a, "file.hash.sha256")],
      ]),
      h("h2", {}, t("whatMamoriDid")),
      facts([
        [t("action"), a.event.action ?? ""],
        [t("restoreMethod"), text(a, "mamori.restore.method")],
        [t("evidence"), text(a, "mamori.evidence.id")],
      ]),
    );
    const accepted = story.filter((s) => s.event.event.action === "baseline-accepted");
    if (accepted.length) node.append(h("p", { class: "summary", id: "accepted" }, t("alreadyAccepted")));
    if (operator && text(a, "mamori.root")) node.append(verdicts(a));

    node.append(h("h2", {}, t("theBan")));
    if (!bans.length) node.append(h("p", { class: "summary" }, t("noBanYet")));
    for (const b of bans) {
      const ip = text(b.event, "source.ip");
      const fleet = fleetBans.find((f) => f.address === ip);
      node.append(
        h(
          "div",
          { class: "ban", "data-ip": ip },
          facts([
            [t("address"), ip],
            [t("rule"), text(b.event, "rule.name")],
            [t("duration"), text(b.event, "mamori.ban.ttl_s") && `${text(b.event, "mamori.ban.ttl_s")} s`],
            [t("fleetWide"), fleet ? t(fleet.pushed ? "fleetPushed" : "fleetPushing") : t("fleetNot")],
          ]),
          operator && fleet && unbanButton(ip),
        ),
      );
    }

    const evidenceId = text(a, "mamori.evidence.id");
    node.append(h("h2", {}, t("diff")));
    if (!evidenceId) node.append(h("p", { class: "summary" }, t("noEvidence")));
    else if (!operator) node.append(h("p", { class: "summary" }, t("evidenceNeedsOperator")));
    else node.append(await evidenceDiff(evidenceId));
  }

  /** A button that asks `question` first, then runs `action` and says `done`. */
  function confirmedButton(
    className: string,
    label: string,
    question: string,
    done: string,
    action: () => Promise<void>,
  ): HTMLElement {
    const button = h("button", { type: "button", class: className }, label);
    button.addEventListener("click", () => {
      if (!window.confirm(question)) return;
      action()
        .then(() => {
          button.textContent = done;
          button.setAttribute("disabled", "");
        })
        .catch(onFailure);
    });
    return button;
  }
  const banButton = (ip: string) => {
    const address = { address: ip };
    return confirmedButton("ban-ip", t("banAddress", address), t("confirmBan", address), t("banned", address), () =>
      addBan(ip, 86400, "from the incident page"),
    );
  };
  const unbanButton = (ip: string) => {
    const address = { address: ip };
    return confirmedButton("unban-ip", t("unbanAddress", address), t("confirmUnban", address), t("unbanned", address), () =>
      liftBan(ip),
    );
  };

  /** Accept the change as legitimate, or restore the baseline: each confirmed, then the
   * agent's answer (the manager keeps both in the audit log). */
  function verdicts(a: EcsEvent): HTMLElement {
    const root = text(a, "mamori.root");
    const path = text(a, "mamori.path");
    const evidenceId = text(a, "mamori.evidence.id");
    const shown = text(a, "file.path") || root;
    const outcome = h("p", { class: "summary", id: "verdict-outcome", role: "status" });
    const accept = h("button", { type: "button", id: "accept" }, t("acceptLegit"));
    const restore = h("button", { type: "button", id: "restore" }, t("restoreBaseline"));
    type Verdict = { command: "accept" | "restore"; confirm: "confirmAccept" | "confirmRestore"; args: string[] };
    const act = (button: HTMLElement, { command, confirm, args }: Verdict) =>
      button.addEventListener("click", () => {
        if (!window.confirm(t(confirm, { path: shown }))) return;
        for (const b of [accept, restore]) b.setAttribute("disabled", "");
        outcome.className = "summary";
        outcome.textContent = t("askingAgent");
        sendCommand(agentKey, command, args)
          .then((id) => commandAnswer(agentKey, id))
          .then((row) => {
            const answer = row.answer ?? {};
            if (row.state !== "ok") {
              outcome.className = "error";
              outcome.textContent = answer.error?.message ?? row.state;
              for (const b of [accept, restore]) b.removeAttribute("disabled");
              return;
            }
            outcome.textContent =
              command === "accept"
                ? t("acceptedNow", { hash: String(answer.root_hash ?? "").slice(0, 12) })
                : t("restoredNow", { n: Number(answer.entries ?? 0) });
          })
          .catch(onFailure);
      });
    act(accept, { command: "accept", confirm: "confirmAccept", args: evidenceId ? [root, path, evidenceId] : [root, path] });
    act(restore, { command: "restore", confirm: "confirmRestore", args: [root, path] });
    // Accepting needs the change: kept as evidence, or left in place by alert mode.
    const acceptable = evidenceId !== "" || text(a, "mamori.mode") === "alert";
    return h("div", { class: "verdicts" }, acceptable && accept, restore, outcome);
  }

  async function evidenceDiff(evidenceId: string): Promise<HTMLElement> {
    const box = h("div", { id: "evidence" });
    const id = await sendCommand(agentKey, "evidence", [evidenceId]);
    const answered = await commandAnswer(agentKey, id);
    const answer = answered.answer as EvidenceAnswer | null;
    if (answered.state !== "ok" || !answer?.after) {
      box.append(h("p", { class: "error" }, answered.answer?.error?.message ?? t("evidenceUnavailable")));
      return box;
    }
    const after = fromBase64Url(answer.after.base64url);
    const before = answer.before ? fromBase64Url(answer.before.base64url) : null;
    const download = h("button", { type: "button", id: "download-evidence" }, t("downloadEvidence"));
    download.addEventListener("click", () =>
      saveAs(`evidence-${evidenceId}.bin`, after, "application/octet-stream"),
    );
    box.append(
      facts([
        [t("tampered"), `${after.length} B, SHA-256 ${await sha256Hex(after)}${answer.after.complete ? "" : ` (${t("prefixOnly")})`}`],
        [t("baseline"), before ? `${before.length} B, SHA-256 ${await sha256Hex(before)}` : t(`before.${answer.before_missing === "gone" ? "gone" : answer.before_missing === "same" ? "same" : "unknown"}`)],
      ]),
      download,
    );
    const afterText = asText(after);
    const beforeText = before ? asText(before) : "";
    const lines = afterText !== null && beforeText !== null ? lineDiff(beforeText, afterText) : null;
    if (!lines) {
      box.append(h("p", { class: "summary" }, t("binaryOrLarge")));
      return box;
    }
    const body = h("tbody");
    for (const line of lines) {
      const left = line.kind === "added" ? "" : line.text;
      const right = line.kind === "removed" ? "" : line.text;
      body.append(
        h(
          "tr",
          { class: `diff-${line.kind}` },
          h("td", { class: "before" }, h("code", {}, left)),
          h("td", { class: "after" }, h("code", {}, right)),
        ),
      );
    }
    box.append(
      h(
        "table",
        { class: "diff", "aria-label": t("diff") },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("baseline")), h("th", { scope: "col" }, t("tampered")))),
        body,
      ),
    );
    return box;
  }

  build().catch(onFailure);
  return { node };
}
