import "./style.css";

import { ApiError, currentSession, forgetSession, logout } from "./api";
import { clear, h } from "./dom";
import { currentLang, isLang, setLang, t } from "./i18n";
import { createBansPage } from "./pages/bans";
import { createDecoysPage } from "./pages/decoys";
import { createEventsPage } from "./pages/events";
import { createFleetPage } from "./pages/fleet";
import { createIncidentPage } from "./pages/incident";
import { createSettingsPage } from "./pages/settings";
import { createSignInPage } from "./pages/signin";
import { link } from "./router";

const REFRESH_INTERVAL_MS = 5000;

const appRoot = document.getElementById("app");
if (!appRoot) throw new Error("index.html has no #app element");
const root: HTMLElement = appRoot;

/** What leaving the current page must stop (timers, the live stream). */
let leavePage: () => void = () => {};

type PageName = "fleet" | "events" | "bans" | "decoys" | "settings" | "incident";

function currentPage(): PageName {
  if (location.pathname.startsWith("/incident/")) return "incident";
  if (location.pathname.startsWith("/events")) return "events";
  if (location.pathname.startsWith("/bans")) return "bans";
  if (location.pathname.startsWith("/decoys")) return "decoys";
  if (location.pathname.startsWith("/settings")) return "settings";
  return "fleet";
}

/** A link of the main menu. */
function pageLink(page: PageName, label: string): HTMLAnchorElement {
  const current = currentPage() === page || (page === "events" && currentPage() === "incident");
  return link(`/${page}`, label, { "aria-current": current ? "page" : undefined });
}

function renderHeader(): HTMLElement {
  const session = currentSession();

  const langSelect = h(
    "select",
    { id: "lang", "aria-label": t("language") },
    h("option", { value: "en" }, "English"),
    h("option", { value: "ja" }, "日本語"),
  );
  langSelect.value = currentLang();
  langSelect.addEventListener("change", () => {
    if (isLang(langSelect.value)) setLang(langSelect.value);
    // Every text is looked up when its element is built, so rebuild the page.
    render();
  });

  return h(
    "header",
    {},
    h("a", { href: "/", class: "brand" }, t("appName")),
    h(
      "nav",
      { "aria-label": "main" },
      pageLink("fleet", t("fleet")),
      pageLink("events", t("events")),
      pageLink("bans", t("bans")),
      pageLink("decoys", t("decoys")),
      pageLink("settings", t("settings")),
    ),
    h("span", { class: "spacer" }),
    langSelect,
    session && h("span", { class: "user" }, t("signedInAs", { name: session.name, role: session.role })),
    session &&
      h(
        "button",
        {
          type: "button",
          id: "signout",
          onclick: () => {
            logout().finally(render);
          },
        },
        t("signOut"),
      ),
  );
}

function reportRefreshFailure(error: unknown): void {
  // 401: the session expired or was revoked; go back to the sign-in form.
  if (error instanceof ApiError && error.status === 401) {
    forgetSession();
    render();
    return;
  }
  const problem = document.getElementById("problem");
  if (problem) {
    problem.textContent = t("loadFailed", { why: error instanceof Error ? error.message : String(error) });
  }
}

function render(): void {
  leavePage();
  leavePage = () => {};
  document.documentElement.lang = currentLang();
  clear(root);

  if (!currentSession()) {
    root.append(renderHeader(), createSignInPage(render));
    return;
  }

  const problem = h("p", { id: "problem", class: "error", role: "alert" });
  if (currentPage() === "incident") {
    // /incident/AGENT_KEY/ROW: an incident from the ids alone, so it can be shared.
    const [, , agentKey = "", row = ""] = location.pathname.split("/");
    const incident = createIncidentPage(agentKey, Number(row), reportRefreshFailure);
    root.append(renderHeader(), problem, incident.node);
    return;
  }
  if (currentPage() === "events") {
    const events = createEventsPage(reportRefreshFailure);
    root.append(renderHeader(), problem, events.node);
    leavePage = events.dispose;
    return;
  }
  if (currentPage() === "bans") {
    const bans = createBansPage(reportRefreshFailure);
    root.append(renderHeader(), problem, bans.node);
    bans.refresh().catch(reportRefreshFailure);
    const timer = window.setInterval(() => bans.refresh().catch(reportRefreshFailure), REFRESH_INTERVAL_MS);
    leavePage = () => window.clearInterval(timer);
    return;
  }
  if (currentPage() === "decoys") {
    const decoys = createDecoysPage(reportRefreshFailure);
    root.append(renderHeader(), problem, decoys.node);
    decoys.refresh().catch(reportRefreshFailure);
    const timer = window.setInterval(() => decoys.refresh().catch(reportRefreshFailure), REFRESH_INTERVAL_MS);
    leavePage = () => window.clearInterval(timer);
    return;
  }
  if (currentPage() === "settings") {
    // Not refreshed on a timer: it holds forms being filled in.
    const settings = createSettingsPage(reportRefreshFailure);
    root.append(renderHeader(), problem, settings.node);
    settings.refresh().catch(reportRefreshFailure);
    return;
  }
  const fleet = createFleetPage();
  root.append(renderHeader(), problem, fleet.node);
  fleet.refresh().catch(reportRefreshFailure);
  const timer = window.setInterval(() => fleet.refresh().catch(reportRefreshFailure), REFRESH_INTERVAL_MS);
  leavePage = () => {
    window.clearInterval(timer);
    fleet.dispose();
  };
}

window.addEventListener("popstate", render);
render();
