// Every screen passes an axe-core audit with no serious or critical violation:
// home with the public lobby (desktop and phone), waiting, playing, game over.
// Also takes the lobby screenshots for the docs.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { axeSerious, createGame, joinGame, launchBrowser, newPage, quickPlay, screenshot, startServer, STEP_MS } from "./harness.mjs";

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function audit(page, screen) {
  const violations = await axeSerious(page);
  assert.deepEqual(violations, [], `${screen}: no serious or critical axe violation`);
}

test("every screen passes axe-core with no serious or critical violation", { timeout: 90_000 }, async () => {
  // A running public game: two quick players fill a game of two, which starts at once.
  const eve = await newPage(browser);
  const fay = await newPage(browser);
  await quickPlay(eve, server.url, { name: "Eve", size: 2 });
  await quickPlay(fay, server.url, { name: "Fay", size: 2 });
  await eve.waitForSelector("[data-testid=status][data-status=active]");
  // Cells of both kinds on Eve's board: her own and another player's.
  await eve.click("button[data-cell='40']");
  await fay.click("button[data-cell='41']");
  await eve.waitForSelector("button[data-cell='40'][data-owner][data-mine]");
  await eve.waitForSelector("button[data-cell='41'][data-owner]:not([data-mine])");

  // An open public game: created with the public box ticked, one player in it.
  const gus = await newPage(browser);
  await gus.goto(server.url);
  await gus.fill("[data-testid=name]", "Gus");
  await gus.check("[data-testid=public]");
  await gus.click("[data-testid=create]");
  await gus.waitForSelector("[data-testid=status][data-status=waiting]");
  assert.match(await gus.locator("[data-testid=visibility]").innerText(), /^Public/);

  // Home, with both lists filled by the poll.
  const home = await newPage(browser);
  await home.goto(server.url);
  await home.waitForSelector("[data-testid=open-games] [data-testid=join-open]");
  await home.waitForSelector("[data-testid=running-games] li:has-text('Eve')");
  await home.waitForSelector("[data-testid=running-games] li:has-text('watching')");
  await audit(home, "home with the lobby");
  await screenshot(home, "home-lobby.png");
  const phone = await newPage(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await phone.goto(server.url);
  await phone.waitForSelector("[data-testid=running-games] li");
  await audit(phone, "home on a phone");
  await screenshot(phone, "home-lobby-phone.png");

  await audit(gus, "waiting");
  await audit(eve, "playing");

  // Game over: a private one-second round.
  const hal = await newPage(browser);
  const ivy = await newPage(browser);
  const link = await createGame(hal, server.url, { name: "Hal", seconds: 1, players: 3 });
  await joinGame(ivy, link, "Ivy");
  await audit(ivy, "waiting, as a guest");
  await hal.click("[data-testid=start]:not([disabled])");
  await hal.waitForSelector("[data-testid=status][data-status=completed]", { timeout: 1000 + STEP_MS });
  await audit(hal, "game over");
});
