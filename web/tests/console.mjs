// The console in a real browser (Debian's Chromium, driven by Playwright), against a
// running manager: tests/integration/console_test.sh starts the manager and three agents
// (web1 online, web2 lost, web3 stopped) and runs
//   node web/tests/console.mjs URL USER PASSWORD WEB1_ROOT [SHOTS_DIR]
// Each page that gets a screenshot is checked for accessibility too (axe-core).
// WEB1_ROOT is the tree web1 guards: the test tampers a file there while the events page
// is open, and the event must appear without a reload.
// Exits 1 with the step that failed. Any Content-Security-Policy violation or page error
// fails it too: the console must run under the manager's policy as it is.
import { execFileSync } from "node:child_process";
import { appendFileSync, readFileSync } from "node:fs";
import { chromium } from "playwright-core";

const [url, user, password, web1Root, shots] = process.argv.slice(2);
// Where the bans' exports are saved (the shell test checks them), and a viewer's login.
const downloads = process.env.MAMORI_CONSOLE_DOWNLOADS;
const [viewer, viewerPassword] = (process.env.MAMORI_CONSOLE_VIEWER ?? ":").split(":");
// The nftables table web1 bans in: the test runs in a network namespace of its own, so
// `nft` here lists web1's ruleset.
const nftTable = process.env.MAMORI_CONSOLE_NFT_TABLE;
if (!nftTable) throw new Error("MAMORI_CONSOLE_NFT_TABLE is not set (run it from console_test.sh)");
const nftRuleset = () => execFileSync("nft", ["list", "table", "inet", nftTable], { encoding: "utf8" });
let incidentUrl = "";
let acceptedHash = "";
// The address that attacked web1 through nginx before this ran (console_test.sh).
const attacker = process.env.MAMORI_CONSOLE_ATTACKER;
// web1's site, and a decoy there: its rule's id and the two addresses that fetch it.
const webUrl = process.env.MAMORI_CONSOLE_WEB_URL;
const [decoyRule, ...decoyHitters] = (process.env.MAMORI_CONSOLE_DECOY ?? "").split(" ");
const failures = [];
// Load times, reported at the end (docs/performance.md).
let coldLoad = 0;
const firstLoads = [];
// Generous: CI runs this beside other tests on two cores.
const WAIT_MS = 30000;
let step = "start";

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  // Root in CI: Chromium's sandbox needs an unprivileged user.
  args: ["--no-sandbox"],
});
try {
  // The manager's certificate is self-signed; the shell test pins its fingerprint.
  const context = await browser.newContext({ ignoreHTTPSErrors: true, locale: "en-GB" });
  const page = await context.newPage();
  page.on("pageerror", (e) => failures.push(`${step}: page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !/401|403|429/.test(m.text())) failures.push(`${step}: console: ${m.text()}`);
  });
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) =>
      console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`),
    );
  });
  const expect = async (what, check) => {
    step = what;
    try {
      await check();
    } catch (e) {
      throw new Error(`${what}: ${e.message.split("\n")[0]}`);
    }
  };
  // Every page is also checked by axe-core (WCAG 2.1 A and AA): no serious or critical
  // violation. Its source is evaluated through the DevTools protocol, which the page's CSP
  // does not govern, so the console's own policy stays as strict as in production.
  const axeSource = readFileSync(new URL("../node_modules/axe-core/axe.min.js", import.meta.url), "utf8");
  const accessible = async (name) => {
    await page.evaluate(axeSource);
    const found = await page.evaluate(async () => {
      const result = await window.axe.run(document, {
        runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] },
      });
      return result.violations
        .filter((v) => v.impact === "serious" || v.impact === "critical")
        .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
    });
    if (found.length) failures.push(`${name}: accessibility: ${found.join("; ")}`);
  };
  const shot = async (name) => {
    await accessible(name);
    if (shots) await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
  };
  const text = (selector) => page.locator(selector).innerText({ timeout: WAIT_MS });
  const waitText = (selector, want) =>
    page.waitForFunction(
      ([s, w]) => document.querySelector(s)?.textContent?.includes(w),
      [selector, want],
      { timeout: WAIT_MS },
    );

  await expect("the sign-in page loads", async () => {
    const started = Date.now();
    const res = await page.goto(url + "/fleet");
    if (res.status() !== 200) throw new Error(`status ${res.status()}`);
    await page.locator("#signin-name").waitFor({ timeout: WAIT_MS });
    coldLoad = Date.now() - started;  // a new browser profile: nothing cached, a new TLS session
  });
  await shot("signin");

  await expect("a wrong password is refused", async () => {
    await page.fill("#signin-name", user);
    await page.fill("#signin-password", "not the password");
    await page.click("button[type=submit]");
    await waitText("p.error", "wrong");
    if ((await page.inputValue("#signin-password")) !== "") throw new Error("password kept");
  });

  await expect("the right one shows the fleet", async () => {
    await page.fill("#signin-password", password);
    await page.click("button[type=submit]");
    await waitText("p.summary", "1 of 3 online · 1 lost");
  });
  // Reported, not asserted (a timed test flakes on a busy machine): a signed-in user's
  // load of a page, from the request to the fleet shown (docs/performance.md).
  await expect("a page loads for a signed-in user", async () => {
    for (let i = 0; i < 5; i++) {
      const started = Date.now();
      await page.goto(url + "/fleet");
      await waitText("p.summary", "1 of 3 online");
      firstLoads.push(Date.now() - started);
    }
  });
  await expect("each agent's status", async () => {
    const web1 = page.locator("tr", { hasText: "web1" });
    const web2 = page.locator("tr", { hasText: "web2" });
    if ((await web1.locator("span.status-online").count()) !== 1) throw new Error("web1 not online");
    if ((await web2.locator("span.status-lost").count()) !== 1) throw new Error("web2 not lost");
    const web3 = page.locator("tr", { hasText: "web3" });
    if ((await web3.locator("span.status-stopped").innerText()) !== "stopped") throw new Error("web3 not stopped");
    if (!(await web1.innerText()).includes("(restore)")) throw new Error("web1's root mode missing");
  });
  await shot("fleet");

  await expect("filter", async () => {
    await page.fill("#fleet-filter", "lost");
    await page.waitForFunction(() => document.querySelectorAll("tr[data-agent]").length === 1, null, {
      timeout: WAIT_MS,
    });
    if (!(await text("tr[data-agent]")).includes("web2")) throw new Error("not web2");
    await page.fill("#fleet-filter", "");
  });

  await expect("sort by name, both ways", async () => {
    const names = () => page.locator("tr[data-agent] td.name").allInnerTexts();
    await page.click("button[data-sort=name]");
    const first = await names();
    await page.click("button[data-sort=name]");
    const second = await names();
    if (first.join() !== "web3,web2,web1" || second.join() !== "web1,web2,web3")
      throw new Error(`${first} then ${second}`);
  });

  await expect("a bulk action over a filtered selection, with each agent's outcome", async () => {
    await page.fill("#fleet-filter", "web");
    await page.check("#select-shown");
    await waitText("#bulk-count", "3 selected");
    // web1 keeps what an attacker writes from now on: the incident page's diff needs it.
    await page.selectOption("#bulk-action", "mode-preserve");
    page.once("dialog", (d) => d.accept());
    await page.click("#bulk-run");
    // web1 answers at once; web2 is lost and web3 stopped: theirs wait for the agent.
    await page.locator("#bulk-progress tr[data-state=ok]").waitFor({ timeout: WAIT_MS });
    const states = await page.locator("#bulk-progress tbody tr").evaluateAll((rows) =>
      rows.map((r) => `${r.children[0].textContent}=${r.dataset.state}`).sort(),
    );
    if (states.join() !== "web1=ok,web2=pending,web3=pending") throw new Error(states.join());
    await page.uncheck("#select-shown");
    await waitText("#bulk-count", "0 selected");
    await page.fill("#fleet-filter", "");
  });
  await shot("fleet-bulk");

  await expect("each agent's baseline seal, and the baselines compared across the fleet", async () => {
    const hash = await page.locator("tr", { hasText: "web1" }).locator("td.hash").innerText();
    if (!/^[0-9a-f]{12}$/.test(hash)) throw new Error(`web1's baseline hash: "${hash}"`);
    await page.selectOption("#drift-group", "");
    await page.click("#drift-run");
    await waitText("#drift-result", "node(s) agree on");
    const result = await text("#drift-result");
    for (const want of [
      "1 node(s) agree on",
      "web1",
      "web2 (lost) was not compared",
      "web3 (stopped) was not compared",
      "Every node compared agrees.",
    ])
      if (!result.includes(want)) throw new Error(`no "${want}" in: ${result}`);
  });

  await expect("Japanese", async () => {
    await page.selectOption("#lang", "ja");
    await waitText("p.summary", "3 台中 1 台オンライン");
    if ((await page.getAttribute("html", "lang")) !== "ja") throw new Error("html lang");
  });
  await shot("fleet-ja");
  await page.selectOption("#lang", "en");

  await expect("on a phone-sized screen the page does not scroll sideways", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const path of ["/fleet", "/events", "/bans", "/settings"]) {
      await page.goto(url + path);
      await page.locator("main h1").waitFor({ timeout: WAIT_MS });
      const wide = await page.evaluate(() => document.documentElement.scrollWidth);
      if (wide > 391) {
        const culprits = await page.evaluate(() =>
          [...document.querySelectorAll("body *")]
            .filter((e) => e.getBoundingClientRect().right > 391)
            .slice(0, 5)
            .map((e) => `${e.tagName}#${e.id}.${e.className}`),
        );
        throw new Error(`${path}: ${wide} px wide (${culprits.join(", ")})`);
      }
    }
    await page.goto(url + "/fleet");
    await waitText("p.summary", "1 of 3 online");
    await shot("fleet-phone");
    await page.setViewportSize({ width: 1280, height: 720 });
  });

  await expect("the events page, from the menu", async () => {
    await page.click("nav a[href='/events']");
    await page.waitForURL(/\/events/, { timeout: WAIT_MS });
    await page.locator("tr[data-action]").first().waitFor({ timeout: WAIT_MS });
    await waitText("#events-live", "live");
    await waitText("#events-chart-caption", "event(s) in this view");
  });

  await expect("a group's events", async () => {
    await page.selectOption("#events-group", "default");
    await page.waitForURL(/group=default/, { timeout: WAIT_MS });
    await page.locator("tr[data-action]").first().waitFor({ timeout: WAIT_MS });
    await page.selectOption("#events-group", "");
    await page.waitForURL((u) => !u.search.includes("group="), { timeout: WAIT_MS });
  });

  await expect("a filter is a permalink", async () => {
    await page.selectOption("#events-agent", { label: "web1" });
    await page.waitForURL(/agent=/, { timeout: WAIT_MS });
    await page.waitForFunction(
      () => {
        const rows = [...document.querySelectorAll("table.events tbody tr")];
        return rows.length > 0 && rows.every((r) => r.children[1].textContent === "web1");
      },
      null,
      { timeout: WAIT_MS },
    );
    await page.reload();
    await page.locator("tr[data-action]").first().waitFor({ timeout: WAIT_MS });
    if ((await page.locator("#events-agent option:checked").innerText()) !== "web1")
      throw new Error("the agent filter did not survive a reload");
    await waitText("#events-live", "live");
  });

  // The chart counts the events of the view: the sum of its bars. (Polled from here: a
  // function waited for in the page would be a string to evaluate, which the CSP forbids.)
  const charted = () =>
    page.evaluate(() =>
      [...document.querySelectorAll("#events-chart rect")].reduce((n, r) => n + Number(r.dataset.count), 0),
    );
  const chartCounts = async (more) => {
    for (const end = Date.now() + WAIT_MS; (await charted()) <= more; await page.waitForTimeout(100))
      if (Date.now() > end) throw new Error(`the chart still counts ${more} events`);
  };
  await expect("a tampering appears without a reload, in the list and in the chart", async () => {
    await page.waitForFunction(() => document.querySelectorAll("#events-chart rect").length > 0, null, {
      timeout: WAIT_MS,
    });
    const before = await charted();
    await page.evaluate(() => {
      window.sameDocument = true;
    });
    appendFileSync(`${web1Root}/index.html`, "<iframe src=//evil.example></iframe>\n");
    await page.waitForFunction(
      () => [...document.querySelectorAll("tr[data-action=file-restored]")].some((r) =>
        r.textContent.includes("index.html"),
      ),
      null,
      { timeout: WAIT_MS },
    );
    await chartCounts(before);
    if (!(await page.evaluate(() => window.sameDocument === true))) throw new Error("the page was reloaded");
  });
  await shot("events");

  await expect("the incident: the story, and the injected line in the diff", async () => {
    await page
      .locator("tr[data-action=file-restored]", { hasText: "index.html" })
      .first()
      .locator("a")
      .click();
    await page.waitForURL(/\/incident\//, { timeout: WAIT_MS });
    await page.locator("table.diff").waitFor({ timeout: WAIT_MS });
    const added = await page.locator("tr.diff-added td.after").allInnerTexts();
    if (added.join("|") !== "<iframe src=//evil.example></iframe>") throw new Error(`added: ${added.join("|")}`);
    const same = await page.locator("tr.diff-same td.before").allInnerTexts();
    if (!same.includes("site 1")) throw new Error(`unchanged: ${same.join("|")}`);
    if (!(await text("main")).includes("file-restored")) throw new Error("no story");
    const [download] = await Promise.all([
      page.waitForEvent("download", { timeout: WAIT_MS }),
      page.click("#download-evidence"),
    ]);
    await download.saveAs(`${downloads}/evidence.bin`);
  });

  await expect("accept as legitimate: refused at the confirmation nothing happens; confirmed, the agent takes it", async () => {
    incidentUrl = page.url();
    page.once("dialog", (d) => d.dismiss());
    await page.click("#accept");
    if ((await page.locator("#verdict-outcome").innerText()) !== "") throw new Error("asked without a confirmation");
    page.once("dialog", (d) => d.accept());
    await page.click("#accept");
    await waitText("#verdict-outcome", "Accepted");
    const sealed = /new root hash ([0-9a-f]{12})/.exec(await text("#verdict-outcome"));
    if (!sealed) throw new Error(await text("#verdict-outcome"));
    acceptedHash = sealed[1];
    // The agent's baseline-accepted names the incident: the story tells it once stored.
    for (const end = Date.now() + WAIT_MS; ; await page.waitForTimeout(300)) {
      await page.reload();
      await page.locator("ol.timeline li").first().waitFor({ timeout: WAIT_MS });
      if ((await page.locator("ol.timeline li[data-action=baseline-accepted]").count()) === 1) break;
      if (Date.now() > end) throw new Error("no baseline-accepted in the story");
    }
    await page.locator("#accepted").waitFor({ timeout: WAIT_MS });
    await page.locator("table.diff").waitFor({ timeout: WAIT_MS });
  });
  await shot("incident");

  await expect("the fleet page shows web1's new seal", async () => {
    const web1Hash = page.locator("tr", { hasText: "web1" }).locator("td.hash");
    for (const end = Date.now() + WAIT_MS; ; await page.waitForTimeout(300)) {
      await page.goto(url + "/fleet");
      if ((await web1Hash.innerText({ timeout: WAIT_MS })) === acceptedHash) break;
      if (Date.now() > end) throw new Error(`web1's seal: ${await web1Hash.innerText()}, not ${acceptedHash}`);
    }
  });

  const nftHolds = async (address, want) => {
    for (const end = Date.now() + WAIT_MS; nftRuleset().includes(address) !== want; await page.waitForTimeout(100))
      if (Date.now() > end) throw new Error(`${address} ${want ? "not in" : "still in"} web1's nftables:\n${nftRuleset()}`);
  };
  await expect("a real attack's incident: the request with the rule that banned it, the ban pushed to the fleet", async () => {
    await page.goto(`${url}/events?address=${attacker}`);
    await page.locator("tr[data-action=tamper-attributed] a").first().click({ timeout: WAIT_MS });
    await page.waitForURL(/\/incident\//, { timeout: WAIT_MS });
    // The fleet's ban follows web1's by a moment: the page is read again until it shows.
    const ban = page.locator(`.ban[data-ip="${attacker}"]`);
    for (const end = Date.now() + WAIT_MS; ; await page.waitForTimeout(300)) {
      await page.locator("ol.timeline li").first().waitFor({ timeout: WAIT_MS });
      if ((await ban.locator("button.unban-ip").count()) === 1) break;
      if (Date.now() > end) throw new Error(`no fleet ban shown: ${await text("main")}`);
      await page.reload();
    }
    const request = await text(`.request[data-ip="${attacker}"]`);
    for (const want of ["POST /index.php HTTP/1.1 → 200", "wrote", "guard-correlation", "nginx-access.log"])
      if (!request.includes(want)) throw new Error(`no "${want}" in the request: ${request.replaceAll("\n", " | ")}`);
    const banText = await ban.innerText();
    for (const want of ["guard-correlation", "Across the fleet"])
      if (!banText.includes(want)) throw new Error(`no "${want}" in the ban: ${banText}`);
    if (!(await text("main")).includes("file-restored")) throw new Error("no restore in the story");
    // Restore mode kept no copy of what the attacker wrote: there is nothing to accept.
    if ((await page.locator("#accept").count()) !== 0) throw new Error("accept offered with nothing to accept");
    if ((await page.locator("#restore").count()) !== 1) throw new Error("no restore button");
  });
  await shot("incident-attack");
  await expect("the attacker's ban lifted from its incident, and gone from web1's nftables", async () => {
    await nftHolds(attacker, true);
    page.once("dialog", (d) => d.accept());
    await page.click(`.ban[data-ip="${attacker}"] button.unban-ip`);
    await waitText(`.ban[data-ip="${attacker}"] button.unban-ip`, "lifted");
    await nftHolds(attacker, false);
  });

  await expect("the bans page: ban two addresses, each confirmed", async () => {
    await page.click("nav a[href='/bans']");
    await waitText("p.summary", "No address is banned");
    for (const [address, ttl] of [
      ["203.0.113.50", "86400"],
      ["2001:db8::7", "0"],
    ]) {
      await page.fill("#ban-address", address);
      await page.selectOption("#ban-ttl", ttl);
      await page.fill("#ban-reason", "seen in the console test");
      page.once("dialog", (d) => d.accept());
      await page.click("#ban-form button[type=submit]");
      await page.locator(`tr[data-address="${address}"]`).waitFor({ timeout: WAIT_MS });
    }
    await waitText("p.summary", "Banned across the fleet: 2");
    if (!(await text(`tr[data-address="2001:db8::7"]`)).includes("permanent")) throw new Error("not permanent");
  });
  await expect("both bans reach web1's nftables sets", async () => {
    await nftHolds("203.0.113.50", true);
    await nftHolds("2001:db8::7", true);
  });
  await shot("bans");

  await expect("the bans exported as a list and as an nftables set", async () => {
    for (const name of ["bans.txt", "mamori-bans.nft"]) {
      const [download] = await Promise.all([
        page.waitForEvent("download", { timeout: WAIT_MS }),
        page.click(`button[data-export="${name}"]`),
      ]);
      if (download.suggestedFilename() !== name) throw new Error(download.suggestedFilename());
      await download.saveAs(`${downloads}/${name}`);
    }
  });

  await expect("an unban refused at the confirmation changes nothing; confirmed, lifts it", async () => {
    page.once("dialog", (d) => d.dismiss());
    await page.click(`tr[data-address="2001:db8::7"] button.unban`);
    page.once("dialog", (d) => d.accept());
    await page.click(`tr[data-address="203.0.113.50"] button.unban`);
    await page.locator(`tr[data-address="203.0.113.50"]`).waitFor({ state: "detached", timeout: WAIT_MS });
    await waitText("p.summary", "Banned across the fleet: 1");
    await nftHolds("203.0.113.50", false);
    await nftHolds("2001:db8::7", true);
  });
  await expect("past bans: each lifted one, with the rule and the request that decided it", async () => {
    await page.locator(`tr[data-past="203.0.113.50"]`).waitFor({ timeout: WAIT_MS });
    const lifted = await text(`tr[data-past="203.0.113.50"]`);
    if (!lifted.includes("lifted") || !lifted.includes("manual")) throw new Error(`203.0.113.50: ${lifted}`);
    const attack = page.locator(`tr[data-past="${attacker}"]`);
    const row = await attack.innerText({ timeout: WAIT_MS });
    for (const want of ["guard-correlation", "POST /index.php", "lifted"])
      if (!row.includes(want)) throw new Error(`no "${want}" in the attacker's past ban: ${row}`);
    await attack.locator("td.ban-request a").click();
    await page.waitForURL(/\/incident\//, { timeout: WAIT_MS });
    await page.locator(`.request[data-ip="${attacker}"]`).waitFor({ timeout: WAIT_MS });
    await page.goBack();
    await page.locator(`tr[data-past="${attacker}"]`).waitFor({ timeout: WAIT_MS });
  });

  // A decoy's row on the decoys page, its cells by class, read again until `want` holds.
  const decoyRow = `tr[data-decoy="${decoyRule}"]`;
  const decoyShows = async (want) => {
    for (const end = Date.now() + WAIT_MS; ; await page.waitForTimeout(300)) {
      const row = page.locator(decoyRow);
      if ((await row.count()) === 1) {
        const cells = {};
        for (const k of Object.keys(want)) cells[k] = await row.locator(`.decoy-${k}`).innerText();
        if (Object.entries(want).every(([k, v]) => cells[k] === v)) return;
        if (Date.now() > end) throw new Error(`the decoy's row: ${JSON.stringify(cells)}`);
      } else if (Date.now() > end) {
        throw new Error(`no row for ${decoyRule}: ${await text("main")}`);
      }
    }
  };
  await expect("a decoy fetched from two addresses: both banned by its rule", async () => {
    for (const address of decoyHitters)
      execFileSync("curl", ["-s", "-o", "/dev/null", "--interface", address, `${webUrl}/backup.sql`]);
    for (const address of decoyHitters) await nftHolds(address, true);
  });
  await expect("the decoys page: 2 hits from 2 addresses, no false positive yet", async () => {
    await page.click("nav a[href='/decoys']");
    await decoyShows({ hits: "2", addresses: "2", opened: "0", credentials: "0", fp: "0% (0 of 2)" });
    const row = await text(decoyRow);
    if (!row.includes("GET /backup.sql HTTP/1.1") || !row.includes("web1")) throw new Error(`the decoy's row: ${row}`);
    await waitText("p.summary", "Decoys touched: 1, with 2 hits from 2 addresses");
  });
  await expect("an operator lifts one of the two bans: a false-positive rate of 50 %", async () => {
    await page.click("nav a[href='/bans']");
    page.once("dialog", (d) => d.accept());
    await page.click(`tr[data-address="${decoyHitters[0]}"] button.unban`);
    await page.locator(`tr[data-address="${decoyHitters[0]}"]`).waitFor({ state: "detached", timeout: WAIT_MS });
    await nftHolds(decoyHitters[0], false);
    await page.click("nav a[href='/decoys']");
    await decoyShows({ hits: "2", addresses: "2", fp: "50% (1 of 2)" });
  });
  await shot("decoys");
  await expect("the decoy's events and its latest incident, from its row", async () => {
    await page.click(`${decoyRow} a[aria-label^="Events of"]`);
    await page.waitForURL(/\/events\?decoy=/, { timeout: WAIT_MS });
    await page.waitForFunction(
      (n) => document.querySelectorAll("tr[data-action=ip-banned]").length === n && !document.querySelector("tr[data-action]:not([data-action=ip-banned])"),
      2,
      { timeout: WAIT_MS },
    );
    if ((await page.inputValue("#events-decoy")) !== decoyRule) throw new Error("the decoy filter is not shown");
    await page.goBack();
    await page.click(`${decoyRow} a[aria-label^="The latest incident of"]`);
    await page.waitForURL(/\/incident\//, { timeout: WAIT_MS });
    await waitText("main", decoyRule);
  });

  await expect("settings: a token created (shown once) and revoked", async () => {
    await page.click("nav a[href='/settings']");
    await page.fill("#token-group", "web");
    await page.fill("#token-uses", "2");
    await page.selectOption("#token-expiry", String(7 * 86400));
    await page.click("#token-form button[type=submit]");
    const token = await text("#token-text");
    if (!token.startsWith("mamori-token-v1.")) throw new Error(`token: ${token}`);
    const row = page.locator("tr[data-token]", { hasText: "web" }).last();
    if (!(await row.innerText()).includes("active")) throw new Error(await row.innerText());
    page.once("dialog", (d) => d.accept());
    await row.locator("button.revoke").click();
    await page.waitForFunction(
      () => [...document.querySelectorAll("tr[data-token]")].some((r) => r.textContent.includes("revoked")),
      null,
      { timeout: WAIT_MS },
    );
  });

  await expect("settings: a test alert through the manager's webhook sink", async () => {
    const sink = page.locator(`tr[data-sink="console-hook"]`);
    const before = Number(await sink.locator("td.number").first().innerText({ timeout: WAIT_MS }));
    page.once("dialog", (d) => d.accept());
    await page.click("#sink-test");
    await waitText("#settings-outcome", "Test alert sent");
    for (const end = Date.now() + WAIT_MS; ; await page.waitForTimeout(200)) {
      if (Number(await sink.locator("td.number").first().innerText()) > before) break;
      if (Date.now() > end) throw new Error(`the sink still counts ${before} deliveries`);
    }
  });

  await expect("settings: a user added, then deleted", async () => {
    await page.fill("#user-name", "olga");
    await page.fill("#user-password", "operator password 1");
    await page.selectOption("#user-role", "operator");
    await page.click("#user-form button[type=submit]");
    await page.locator(`tr[data-user="olga"]`).waitFor({ timeout: WAIT_MS });
    page.once("dialog", (d) => d.accept());
    await page.click(`tr[data-user="olga"] button.delete-user`);
    await page.locator(`tr[data-user="olga"]`).waitFor({ state: "detached", timeout: WAIT_MS });
  });

  await expect("the audit log, newest first", async () => {
    await page.waitForFunction(
      () => document.querySelector("tr[data-audit]")?.textContent?.includes("user-del"),
      null,
      { timeout: WAIT_MS },
    );
    const log = await text("table[aria-label='Audit log'] tbody");
    for (const action of ["token-create", "token-revoke", "user-add", "ban", "unban", "sink-test"])
      if (!log.includes(action)) throw new Error(`no ${action} in the audit log`);
    // The incident's accept, with what it named: the root, the path, the evidence id.
    if (!/command\s+accept \S+\/a1\/www index\.html \d+ to /.test(log))
      throw new Error(`no accept command in the audit log: ${log.slice(0, 400)}`);
  });
  await shot("settings");

  await expect("sign out", async () => {
    await page.click("#signout");
    await page.locator("#signin-name").waitFor({ timeout: WAIT_MS });
    const status = await page.evaluate(async () => (await fetch("/api/v1/agents")).status);
    if (status !== 401) throw new Error(`the API still answers: ${status}`);
  });

  // A viewer sees the bans but no button to change them, and the API refuses anyway.
  const viewerContext = await browser.newContext({ ignoreHTTPSErrors: true, locale: "en-GB" });
  const viewerPage = await viewerContext.newPage();
  await expect("a viewer has no ban or unban buttons, and the API refuses", async () => {
    await viewerPage.goto(url + "/bans");
    await viewerPage.fill("#signin-name", viewer);
    await viewerPage.fill("#signin-password", viewerPassword);
    await viewerPage.click("button[type=submit]");
    await viewerPage.locator(`tr[data-address="2001:db8::7"]`).waitFor({ timeout: WAIT_MS });
    if ((await viewerPage.locator("#ban-form, button.unban").count()) !== 0) throw new Error("buttons shown");
    const status = await viewerPage.evaluate(async () => {
      const session = JSON.parse(sessionStorage.getItem("mamori.session"));
      const r = await fetch("/api/v1/bans", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": session.csrf_token },
        body: JSON.stringify({ address: "198.51.100.9", ttl_s: 60 }),
      });
      return r.status;
    });
    if (status !== 403) throw new Error(`POST /api/v1/bans as a viewer: ${status}`);
  });
  await expect("a viewer's incident page: no accept, restore or ban buttons; the API refuses", async () => {
    await viewerPage.goto(incidentUrl);
    await viewerPage.locator("ol.timeline li").first().waitFor({ timeout: WAIT_MS });
    if ((await viewerPage.locator("#accept, #restore, button.ban-ip, button.unban-ip").count()) !== 0)
      throw new Error("a viewer sees an operator's buttons");
    const agent = decodeURIComponent(new URL(incidentUrl).pathname.split("/")[2]);
    const status = await viewerPage.evaluate(async (agentKey) => {
      const session = JSON.parse(sessionStorage.getItem("mamori.session"));
      const r = await fetch("/api/v1/commands", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": session.csrf_token },
        body: JSON.stringify({ command: "restore", args: ["/", "x"], agent: agentKey }),
      });
      return r.status;
    }, agent);
    if (status !== 403) throw new Error(`POST /api/v1/commands as a viewer: ${status}`);
  });
  await expect("a viewer's settings: tokens only, no forms; the audit log refused", async () => {
    await viewerPage.click("nav a[href='/settings']");
    await viewerPage.locator("tr[data-token]").first().waitFor({ timeout: WAIT_MS });
    if ((await viewerPage.locator("#token-form, #user-form, button.revoke, tr[data-audit]").count()) !== 0)
      throw new Error("a viewer sees what only operators and admins may use");
    const status = await viewerPage.evaluate(async () => (await fetch("/api/v1/audit")).status);
    if (status !== 403) throw new Error(`GET /api/v1/audit as a viewer: ${status}`);
  });
} catch (e) {
  failures.push(e.message);
} finally {
  await browser.close();
}
if (failures.length) {
  console.error("FAIL: " + failures.join("\nFAIL: "));
  process.exit(1);
}
console.log(`console: the first load (sign-in page, empty cache) took ${coldLoad} ms; the fleet page for a signed-in user, ${firstLoads.join(", ")} ms`);
console.log("console: every step passed in Chromium");
