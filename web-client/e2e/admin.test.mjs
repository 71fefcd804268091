// The operators' /admin page on a node's admin listener, while bots play:
// its numbers move, the games running now are listed, a click shows a
// board filling up; the public port answers 404 for it. With
// GRIDCAP_UPDATE_SCREENSHOT=1 the page under load is saved as
// docs/admin-under-load.png (the picture the README shows).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { after, test } from "node:test";
import { newPage, repoRoot, screenshot, serverAndBrowser, waitFor, webClientDir } from "./harness.mjs";

const shared = serverAndBrowser();
let bots;
after(() => bots?.kill("SIGKILL"));

/** `gridcap bots` in quick play against `url` for `seconds`. */
function startBots(url, seconds) {
  const bin = process.env.GRIDCAP_BIN ?? resolve(webClientDir, "../target/debug/gridcap");
  const ws = `${url.replace(/^http/, "ws")}/ws`;
  const args = ["bots", "--quiet", "--url", ws, "--quick-play", "--games", "6", "--players", "3", "--rate", "6"];
  return spawn(bin, [...args, "--duration", `${seconds}s`, "--ramp-up", "1s"], { stdio: "ignore" });
}

const number = async (page, stat) => Number.parseFloat(await page.textContent(`[data-stat="${stat}"]`));

test("the admin page shows a node under load, live", { timeout: 90_000 }, async () => {
  const { url, adminUrl } = shared.server;
  if (!adminUrl) return; // an external server (GRIDCAP_E2E_URL): its admin port is not ours to reach
  for (const path of ["/admin", "/admin.html", "/metrics", "/api/node", "/api/cluster"]) {
    assert.equal((await fetch(`${url}${path}`)).status, 404, `${path} on the public port`);
  }
  bots = startBots(url, 60);
  const page = await newPage(shared.browser);
  await page.goto(`${adminUrl}/admin`);
  await page.waitForSelector('[data-stat="captures"]');

  // Players arrive and captures flow; the counters keep moving.
  await waitFor(async () => (await number(page, "players")) >= 6, "players connected on the admin page", 20_000);
  await waitFor(async () => (await number(page, "captures")) > 0, "captures/s above 0", 20_000);
  const firstActive = await page.textContent('[data-stat="games-completed"]');
  await waitFor(
    async () => (await page.textContent('[data-stat="games-completed"]')) !== firstActive,
    "completed games to move",
    45_000,
  );
  assert.match(await page.textContent('[data-stat="broadcast-p99"]'), /ms|–/);
  assert.equal(await page.textContent('[data-stat="state"]'), "ready");
  assert.equal(await page.locator("[data-node]").count(), 1, "a single node lists itself");

  // A game running now: a click shows its board, and captures appear on it.
  const game = page.locator("[data-game]").first();
  await game.waitFor({ timeout: 20_000 });
  await game.click();
  await waitFor(
    async () => (await page.locator('[data-testid=board] [data-cell]:not([data-owner="0"])').count()) > 0,
    "owned cells on the watched board",
    20_000,
  );
  // Charts: uPlot draws one canvas per chart.
  assert.equal(await page.locator(".charts canvas").count(), 3);
  await screenshot(page, "admin-under-load.png");
  if (process.env.GRIDCAP_UPDATE_SCREENSHOT === "1") {
    await page.screenshot({ path: resolve(repoRoot, "docs/admin-under-load.png"), fullPage: true });
  }
});
