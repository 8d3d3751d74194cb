// The dashboard in a real browser: Debian's chromium, headless, driven by playwright-core. tvsd runs
// a keepalived.conf with two virtual services and TCP_CHECKs every second; the test checks that the
// page lists the services, that a real server killed during the test shows as down within its check
// interval, that the traffic chart advances and that the "Real server down" event appears. It takes
// screenshots (laptop and phone widths); with TVS_SCREENSHOT_DIR=DIR they are kept there and their
// paths printed, otherwise they go with the test's temporary directory.

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { chromium } from "playwright-core";
import { freePort, nameServer, startTvsd, waitFor, whoAnswers } from "./tvsd-harness.ts";

const CHROMIUM = "/usr/bin/chromium";
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const DELAY_LOOP_S = 1;
const CONNECT_TIMEOUT_S = 1;

test(
  "dashboard in chromium: services listed, a killed real server turns down, the chart advances, the event appears",
  { skip: !existsSync(CHROMIUM) && "Debian's chromium is not installed", timeout: 90_000 },
  async (t) => {
    const a = await nameServer("alpha");
    const b = await nameServer("beta");
    const c = await nameServer("gamma");
    t.after(() => Promise.all([a.close(), b.close(), c.close()]));
    const vport = await freePort();
    const vport2 = await freePort();
    const dir = mkdtempSync(join(tmpdir(), "tvs-dashboard-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const check = `TCP_CHECK {\n            connect_timeout ${CONNECT_TIMEOUT_S}\n            retry 0\n        }`;
    const conf = join(dir, "keepalived.conf");
    writeFileSync(
      conf,
      `virtual_server 127.0.0.1 ${vport} {
    delay_loop ${DELAY_LOOP_S}
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 127.0.0.1 ${a.port} {
        weight 2
        ${check}
    }
    real_server 127.0.0.1 ${b.port} {
        weight 1
        ${check}
    }
}
virtual_server 127.0.0.1 ${vport2} {
    delay_loop ${DELAY_LOOP_S}
    lb_algo wlc
    lb_kind NAT
    protocol TCP
    real_server 127.0.0.1 ${c.port} {
        ${check}
    }
}
`,
    );
    const httpPort = await freePort();
    const tvsd = await startTvsd(["--config", conf, "--http", `127.0.0.1:${httpPort}`]);
    t.after(() => tvsd.stop());

    const profile = join(dir, "chromium-profile");
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
      viewport: { width: 1280, height: 900 },
    });
    t.after(() => context.close());
    const page = context.pages()[0] ?? (await context.newPage());
    const consoleErrors: string[] = [];
    page.on("pageerror", (e) => consoleErrors.push(e.message));
    // Console errors include Content-Security-Policy violations: the page must need nothing outside.
    page.on("console", (m) => {
      if (m.type() === "error") consoleErrors.push(m.text());
    });
    await page.goto(`http://127.0.0.1:${httpPort}/`);

    // Both services listed, with their real servers.
    const svc1 = page.locator(`[data-service="tcp 127.0.0.1:${vport}"]`);
    const svc2 = page.locator(`[data-service="tcp 127.0.0.1:${vport2}"]`);
    await svc1.waitFor({ timeout: 10_000 });
    await svc2.waitFor({ timeout: 10_000 });
    const rowA = svc1.locator(`tr[data-dest="127.0.0.1:${a.port}"]`);
    await svc1.locator(`tr[data-dest="127.0.0.1:${b.port}"]`).waitFor();
    // First check results in (up, with a last check shown).
    await rowA.locator('[data-health="up"]').waitFor({ timeout: 10_000 });
    await rowA.locator(".check", { hasText: "ok" }).waitFor({ timeout: 10_000 });

    // Traffic, and the chart advances (more points, and a later last point).
    for (let i = 0; i < 10; i++) await whoAnswers(vport);
    const chart = page.locator("#total-chart");
    const before = Number(await chart.getAttribute("data-points"));
    const beforeT = Number(await chart.getAttribute("data-last-t"));
    // Read from here (the page's CSP forbids evaluating strings in it, as it should).
    const attr = async (name: string) => Number(await chart.getAttribute(name));
    await waitFor(
      "the chart to advance",
      async () => ((await attr("data-points")) > before && (await attr("data-last-t")) > beforeT) || undefined,
      5_000,
    );
    // The connections reached the chart as a rate above 0.
    await waitFor("a rate above 0 in the chart", async () => (await attr("data-max-cps")) > 0 || undefined, 5_000);

    // Kill real server alpha: it turns down within delay_loop + connect_timeout (+ one push).
    await a.close();
    const killedAt = Date.now();
    await rowA.locator('[data-health="down"]').waitFor({ timeout: 15_000 });
    const tookMs = Date.now() - killedAt;
    t.diagnostic(`killed real server shown down after ${tookMs} ms`);
    const bound = (DELAY_LOOP_S + CONNECT_TIMEOUT_S + 1) * 1000 + 1000; // + one SSE push, + 1 s for a busy machine
    assert.ok(tookMs <= bound, `shown down after ${tookMs} ms (bound ${bound} ms)`);

    // The event appears in the feed.
    const event = page.locator('#events li[data-type="dest-down"]', { hasText: `127.0.0.1:${a.port}` });
    await event.waitFor({ timeout: 5_000 });
    assert.match((await event.textContent()) ?? "", /Real server down/);
    // The other service and real server are untouched.
    await svc1.locator(`tr[data-dest="127.0.0.1:${b.port}"] [data-health="up"]`).waitFor();

    // Screenshots go with the test's directory unless TVS_SCREENSHOT_DIR asks to keep them.
    const shotDir = process.env.TVS_SCREENSHOT_DIR ?? dir;
    const shot = join(shotDir, `tvs-dashboard-${process.pid}.png`);
    await page.screenshot({ path: shot, fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(1200);
    const phone = join(shotDir, `tvs-dashboard-phone-${process.pid}.png`);
    await page.screenshot({ path: phone, fullPage: true });
    // On a phone nothing is wider than the screen (tables scroll inside their cards).
    const overflow = await page
      .locator("html")
      .evaluate((el: { scrollWidth: number; clientWidth: number }) => el.scrollWidth - el.clientWidth);
    assert.ok(overflow <= 0, `page is ${overflow} px wider than a phone screen`);
    if (process.env.TVS_SCREENSHOT_DIR) console.log(`dashboard screenshots: ${shot} ${phone}`);
    assert.deepEqual(consoleErrors, []);
  },
);
