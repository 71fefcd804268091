// A reload in the middle of a round takes the same seat back (token kept in
// sessionStorage) with the board intact, and the seat keeps playing.
import assert from "node:assert/strict";
import { test } from "node:test";
import { cell, createGame, joinGame, newPage, owned, serverAndBrowser, text } from "./harness.mjs";

const shared = serverAndBrowser();

const seconds = (clock) => {
  const m = /^(\d+):(\d\d)$/.exec(clock);
  assert.ok(m, `a clock like 0:27, got ${clock}`);
  return Number(m[1]) * 60 + Number(m[2]);
};

test("a reload mid-game resumes the same seat with the board intact", { timeout: 60_000 }, async () => {
  const host = await newPage(shared.browser);
  const guest = await newPage(shared.browser);
  const link = await createGame(host, shared.server.url, { name: "Ada", seconds: 60, players: 3 });
  await joinGame(guest, link, "Bob");
  await host.click("[data-testid=start]:not([disabled])");
  await host.waitForSelector("[data-testid=status]:has-text('active')");

  for (const n of [3, 4, 5]) {
    await guest.click(cell(n));
    await guest.waitForSelector(owned(n, 1));
  }
  await host.click(cell(60));
  await host.waitForSelector(owned(60, 0));
  await host.waitForSelector(owned(5, 1));

  const before = seconds(await text(guest, "[data-testid=timer]"));
  assert.equal(new URL(guest.url()).searchParams.get("game"), new URL(link).searchParams.get("game"));
  await guest.reload();

  // Straight back into the game, no name form: same seat (player 1), same board.
  await guest.waitForSelector("[data-testid=status]:has-text('active')");
  for (const n of [3, 4, 5]) await guest.waitForSelector(`${owned(n, 1)}[data-mine]`);
  await guest.waitForSelector(owned(60, 0));
  assert.equal(await guest.locator("button[data-cell][data-owner]").count(), 4);
  assert.equal(await text(guest, "[data-testid=score-1]"), "3");
  assert.equal(await guest.locator("[data-testid=name]").isVisible(), false);
  const afterReload = seconds(await text(guest, "[data-testid=timer]"));
  assert.ok(afterReload <= before && afterReload > 0, `the countdown continues (${before} s, then ${afterReload} s)`);

  // The resumed seat still plays, and the other player sees it.
  await guest.click(cell(6));
  await guest.waitForSelector(owned(6, 1));
  await guest.waitForSelector("[data-testid=score-1]:has-text('4')");
  await host.waitForSelector(owned(6, 1));
  await host.waitForSelector("[data-testid=score-1]:has-text('4')");
  // Still exactly two seats: the reload did not create a new player.
  assert.equal(await host.locator("[data-player-row]").count(), 2);
  await host.waitForSelector("[data-player-row='1'] .presence.online");
});
