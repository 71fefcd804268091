// A whole short game between two browsers: create, join by share link,
// start, capture (mouse and keyboard), see each other's captures, game over.
import assert from "node:assert/strict";
import { test } from "node:test";
import { cell, createGame, joinGame, newPage, owned, screenshot, serverAndBrowser, STEP_MS, text } from "./harness.mjs";

const shared = serverAndBrowser();

test("two players play a whole game and the right winner is shown", { timeout: 90_000 }, async () => {
  const host = await newPage(shared.browser);
  // The guest plays on a phone-sized screen: the layout must work there too.
  const guest = await newPage(shared.browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });

  // Long enough for nine captures and two screenshots on a busy machine: the
  // round ends by time, and a capture after the end would be refused.
  const ROUND_S = 20;
  const link = await createGame(host, shared.server.url, { name: "Ada", seconds: ROUND_S, players: 3 });
  // The share link carries the short code (protocol section 7).
  assert.match(link, new RegExp(`^${shared.server.url}/\\?game=[23456789A-HJKMNP-Z]{6}$`));

  // Alone in the lobby: Start is visible but disabled, with a reason.
  const start = host.locator("[data-testid=start]");
  assert.equal(await start.isDisabled(), true);
  assert.match(await text(host, "[data-testid=start-reason]"), /1 more connected player/);

  await joinGame(guest, link, "Bob");
  await host.waitForSelector("[data-testid=start]:not([disabled])");
  await host.waitForSelector("[data-player-row='1']:has-text('Bob')");
  assert.equal(await text(guest, "[data-testid=share-link]") || (await guest.inputValue("[data-testid=share-link]")), link);
  // Only the host gets a Start button.
  assert.equal(await guest.locator("[data-testid=start]").isVisible(), false);
  await screenshot(host, "lobby.png");

  await host.click("[data-testid=start]");
  for (const p of [host, guest]) await p.waitForSelector("[data-testid=status]:has-text('active')");
  const timerAtStart = await text(host, "[data-testid=timer]");
  const [, mm, ss] = timerAtStart.match(/^(\d+):(\d\d)$/) ?? [];
  const secondsLeft = Number(mm) * 60 + Number(ss);
  assert.ok(secondsLeft > 0 && secondsLeft <= ROUND_S, `timer shows the round (${timerAtStart})`);

  // Both play at once: the host by mouse, the guest by
  // keyboard from the tab stop in the middle of the board (cell 40).
  const hostCells = [0, 1, 2, 9, 10, 11];
  const hostPlays = (async () => {
    for (const n of hostCells) {
      await host.click(cell(n));
      await host.waitForSelector(owned(n, 0));
    }
  })();
  const guestPlays = (async () => {
    await guest.focus(cell(40));
    await guest.keyboard.press("ArrowRight"); // 41
    await guest.keyboard.press("Enter");
    await guest.waitForSelector(owned(41, 1));
    await guest.keyboard.press("ArrowDown"); // 50
    await guest.keyboard.press("Space");
    await guest.waitForSelector(owned(50, 1));
    await guest.keyboard.press("ArrowLeft"); // 49
    await guest.keyboard.press("Enter");
    await guest.waitForSelector(owned(49, 1));
  })();
  await Promise.all([hostPlays, guestPlays]);

  // Each sees the other's captures.
  for (const n of hostCells) await guest.waitForSelector(owned(n, 0));
  for (const n of [41, 50, 49]) await host.waitForSelector(owned(n, 1));
  assert.equal(await host.locator(`${cell(40)}[data-owner]`).count(), 0, "a free cell has no data-owner");
  // Own captures are marked as such, others' are not.
  assert.equal(await host.locator(`${owned(0, 0)}[data-mine]`).count(), 1);
  assert.equal(await guest.locator(`${owned(0, 0)}[data-mine]`).count(), 0);
  // A taken cell cannot be captured again, and the player is told why.
  await guest.click(cell(0), { force: true });
  await guest.waitForSelector("[data-testid=notice]:has-text('already taken by Ada')");
  await guest.waitForSelector("[data-testid=score-0]:has-text('6')");
  await host.waitForSelector("[data-testid=score-1]:has-text('3')");
  await screenshot(host, "playing.png");
  await screenshot(guest, "playing-phone.png");

  // Game over by time: both see it, with the same winner.
  for (const p of [host, guest]) {
    await p.waitForSelector("[data-testid=status]:has-text('completed')", { timeout: ROUND_S * 1000 + STEP_MS });
  }
  assert.match(await text(host, "[data-testid=winners]"), /Winner: Ada \(you\)/);
  assert.match(await text(guest, "[data-testid=winners]"), /Winner: Ada$/);
  assert.equal(await text(host, "[data-testid=score-0]"), "6");
  assert.equal(await text(host, "[data-testid=score-1]"), "3");
  assert.equal(await text(guest, "[data-testid=timer]"), "0:00");
  await screenshot(host, "game-over.png");
  await screenshot(guest, "game-over-phone.png");

  // Play again: a new game on the same connection, with a new share link.
  await host.click("[data-testid=play-again]");
  await host.waitForSelector("[data-testid=status]:has-text('waiting')");
  const newLink = await host.inputValue("[data-testid=share-link]");
  assert.notEqual(newLink, link);
  assert.match(newLink, /\?game=([23456789A-HJKMNP-Z]{6}|[0-9a-f-]{36})$/);
  assert.equal(new URL(host.url()).search, new URL(newLink).search, "the address bar follows the new game");
  assert.equal(await host.locator("button[data-cell][data-owner]").count(), 0, "the new board is empty");

  // A reload after the end still shows the result (completed games stay readable).
  await guest.reload();
  await guest.waitForSelector("[data-testid=status]:has-text('completed')");
  assert.match(await text(guest, "[data-testid=winners]"), /Winner: Ada$/);
  assert.equal(await guest.locator("button[data-cell][data-owner='0']").count(), 6);

  assert.deepEqual(host.consoleErrors.filter((e) => !/favicon/.test(e)), []);
  assert.deepEqual(guest.consoleErrors.filter((e) => !/favicon/.test(e)), []);
});
