// Spectators (PROTOCOL section 7): a running public game is watched from the
// lobby's Watch button, from a watch link (/?watch=CODE), and by a latecomer
// whose join came too late; the watchers' read-only boards follow the game to
// game over and end equal to the players'. A lost broadcast is repaired by
// watching again. Also takes docs' watching.png.
import { decode } from "@msgpack/msgpack";
import assert from "node:assert/strict";
import { test } from "node:test";
import { axeSerious, cell, newPage, owned, screenshot, serverAndBrowser, STEP_MS, text, waitFor } from "./harness.mjs";

/** A public game of 3 with 2 players starts this long after the second arrives. */
const LOBBY_START_MS = 1000;
const ROUND_S = 15;
const shared = serverAndBrowser(["--lobby-start-ms", String(LOBBY_START_MS)]);

/** Create a public game from the home page; resolves with its code. */
async function createPublic(page, { name, players, seconds }) {
  await page.goto(shared.server.url);
  await page.fill("[data-testid=name]", name);
  await page.fill("[data-testid=max-players]", String(players));
  await page.fill("[data-testid=duration]", String(seconds));
  await page.check("[data-testid=public]");
  await page.click("[data-testid=create]");
  await page.waitForSelector("[data-testid=status][data-status=waiting]");
  return text(page, "[data-testid=game-code]");
}

/** Join by code from the home page; does not wait for any particular answer. */
async function joinByCode(page, name, code) {
  await page.goto(shared.server.url);
  await page.fill("[data-testid=name]", name);
  await page.fill("[data-testid=code]", code);
  await page.click("[data-testid=join-code]");
}

const watchView = "section.game-screen[data-mode=watch]";
/** Every cell's owner ("-" when free), as one string: boards compare at a glance. */
const board = (p) => p.$$eval("button[data-cell]", (cells) => cells.map((c) => c.getAttribute("data-owner") ?? "-").join(""));
const scores = async (p) => [await text(p, "[data-testid=score-0]"), await text(p, "[data-testid=score-1]")];

async function audit(page, screen) {
  assert.deepEqual(await axeSerious(page), [], `${screen}: no serious or critical axe violation`);
}

test("watchers from the lobby, a watch link and a late join follow the game to game over", { timeout: 90_000 }, async () => {
  const { url } = shared.server;
  const ada = await newPage(shared.browser);
  const bob = await newPage(shared.browser);
  const code = await createPublic(ada, { name: "Ada", players: 3, seconds: ROUND_S });
  await joinByCode(bob, "Bob", code);
  for (const p of [ada, bob]) await p.waitForSelector("[data-testid=status][data-status=active]", { timeout: LOBBY_START_MS + STEP_MS });
  await ada.click(cell(0));
  await bob.click(cell(80));
  await ada.waitForSelector(owned(80, 1));

  // Wes watches through the lobby's Watch button on the running game.
  const wes = await newPage(shared.browser);
  await wes.goto(url);
  const watchBtn = wes.locator(`[data-testid=running-games] [data-testid=watch-running][data-code="${code}"]`);
  await watchBtn.click();
  await wes.waitForSelector(`${watchView} [data-testid=status][data-status=active]`);
  assert.equal(new URL(wes.url()).searchParams.get("watch"), code, "the address bar holds the watch link");
  assert.equal(await wes.inputValue("[data-testid=watch-link]"), `${url}/?watch=${code}`);
  assert.equal(await text(wes, "[data-testid=spectators]"), "1 watching");
  await wes.waitForSelector(owned(0, 0));
  await wes.waitForSelector(owned(80, 1));
  assert.match(await text(wes, "[data-testid=timer]"), /^0:[01]\d$/);
  // Read-only: every cell is aria-disabled, and a click on a free one captures nothing.
  assert.equal(await wes.locator(`${cell(40)}[aria-disabled=true]`).count(), 1);
  await wes.click(cell(40), { force: true });
  await wes.waitForSelector("[data-testid=notice]:has-text('only the players capture')");
  assert.equal(await ada.locator(`${cell(40)}[data-owner]`).count(), 0);

  // Vic opens the watch link (typed in lower case); Wes's count follows within a poll or two.
  const vic = await newPage(shared.browser);
  await vic.goto(`${url}/?watch=${code.toLowerCase()}`);
  await vic.waitForSelector(`${watchView} [data-testid=status][data-status=active]`);
  assert.equal(await text(vic, "[data-testid=spectators]"), "2 watching");
  await wes.waitForSelector("[data-testid=spectators]:has-text('2 watching')");

  // Cyd follows the game's share link too late: the join answers already_started, with a Watch button.
  const cyd = await newPage(shared.browser);
  await cyd.goto(`${url}/?game=${code}`);
  await cyd.waitForSelector("[data-testid=watch-invite]:visible");
  await cyd.fill("[data-testid=name]", "Cyd");
  await cyd.click("[data-testid=join]");
  await cyd.waitForSelector("[data-testid=error][data-code=already_started]");
  await cyd.click("[data-testid=watch-offer]");
  await cyd.waitForSelector(`${watchView} [data-testid=status][data-status=active]`);
  assert.equal(await cyd.locator("[data-testid=error]").isVisible(), false);
  // Dee presses "Watch it" on the invitation itself.
  const dee = await newPage(shared.browser);
  await dee.goto(`${url}/?game=${code}`);
  await dee.click("[data-testid=watch-invite]");
  await dee.waitForSelector(`${watchView} [data-testid=status][data-status=active]`);

  // Play on; every watcher sees every capture.
  for (const n of [1, 2, 3]) await ada.click(cell(n));
  for (const n of [79, 78]) await bob.click(cell(n));
  await bob.waitForSelector(owned(3, 0));
  for (const p of [wes, vic, cyd, dee]) {
    await p.waitForSelector(owned(3, 0));
    await p.waitForSelector(owned(78, 1));
  }
  await wes.waitForSelector("[data-testid=spectators]:has-text('4 watching')");
  await audit(wes, "watch view");
  await screenshot(wes, "watching.png");

  // Game over: the same board and scores for players and watchers.
  for (const p of [ada, bob, wes, vic, cyd, dee]) {
    await p.waitForSelector("[data-testid=status][data-status=completed]", { timeout: ROUND_S * 1000 + STEP_MS });
  }
  const final = await board(ada);
  assert.equal(final.replace(/-/g, "").length, 7, "seven cells were captured");
  for (const p of [bob, wes, vic, cyd, dee]) {
    assert.equal(await board(p), final, "the same board");
    assert.deepEqual(await scores(p), ["4", "3"]);
  }
  assert.equal(await text(wes, "[data-testid=winners]"), "Winner: Ada");
  assert.equal(await wes.locator("[data-testid=play-again]").isVisible(), false, "a spectator has no game to play again");
  await audit(wes, "game over, watching");
  await screenshot(wes, "watching-game-over.png");
  await wes.click("[data-testid=back-to-lobby]");
  await wes.waitForSelector("[data-testid=quick-play]:visible");
  assert.equal(new URL(wes.url()).search, "");
  for (const p of [ada, bob, wes, vic, cyd, dee]) assert.deepEqual(p.consoleErrors.filter((e) => !/favicon/.test(e)), []);
});

test("a watcher that misses a broadcast watches again and catches up", { timeout: 45_000 }, async () => {
  const ada = await newPage(shared.browser);
  const bob = await newPage(shared.browser);
  const wes = await newPage(shared.browser);
  const seen = { watches: 0, dropped: null };
  let dropNext = false;
  await wes.routeWebSocket(/\/ws$/, (ws) => {
    const upstream = ws.connectToServer();
    ws.onMessage((m) => {
      if (typeof m !== "string" && decode(m).t === "watch") seen.watches++;
      upstream.send(m);
    });
    upstream.onMessage((m) => {
      if (typeof m !== "string" && dropNext && decode(m).t === "captured") {
        dropNext = false;
        seen.dropped = decode(m);
        return;
      }
      ws.send(m);
    });
  });
  const code = await createPublic(ada, { name: "Ada", players: 2, seconds: 30 });
  await joinByCode(bob, "Bob", code);
  await ada.waitForSelector("[data-testid=status][data-status=active]");
  await wes.goto(`${shared.server.url}/?watch=${code}`);
  await wes.waitForSelector(`${watchView} [data-testid=status][data-status=active]`);
  assert.equal(seen.watches, 1);

  dropNext = true;
  await ada.click(cell(20));
  await waitFor(() => seen.dropped, "the proxy to drop the capture of cell 20");
  assert.equal(await wes.locator(owned(20, 0)).count(), 0, "the watcher missed it");
  // The next event reveals the gap: the watcher sends watch again and gets both cells.
  await bob.click(cell(21));
  await wes.waitForSelector(owned(21, 1));
  await wes.waitForSelector(owned(20, 0));
  assert.equal(seen.watches, 2, "one more watch, on the same connection");
  await ada.click(cell(22));
  await wes.waitForSelector(owned(22, 0));
  assert.equal(await board(wes), await board(ada));
});
