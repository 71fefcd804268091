// Finding a game without a link (PROTOCOL section 7): quick play seats players
// in one public game that starts by itself after the lobby countdown, and a
// typed code leads into that game, or explains that it is full.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { launchBrowser, newPage, quickPlay, screenshot, startServer, STEP_MS, text } from "./harness.mjs";

/** The lobby auto-start: short, so the tests wait little, and long enough to join by hand within it. */
const LOBBY_START_MS = 1500;
const CODE_RE = /^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{6}$/;

let server;
let browser;

before(async () => {
  server = await startServer(["--lobby-start-ms", String(LOBBY_START_MS)]);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const codeOf = (page) => text(page, "[data-testid=game-code]");
const playerRows = (page) => page.locator("[data-player-row]").count();

test("two players press Quick play, meet in one public game, and it starts by itself", { timeout: 45_000 }, async () => {
  const ada = await newPage(browser);
  const bob = await newPage(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });

  await quickPlay(ada, server.url, { name: "Ada", size: 3 });
  await ada.waitForSelector("[data-testid=status][data-status=waiting]");
  const code = await codeOf(ada);
  assert.match(code, CODE_RE);
  assert.equal(await ada.inputValue("[data-testid=share-link]"), `${server.url}/?game=${code}`, "the share link carries the code");
  assert.equal(new URL(ada.url()).searchParams.get("game"), code, "the address bar too, so a reload resumes");
  assert.match(await text(ada, "[data-testid=visibility]"), /^Public/);
  // Alone: nothing is scheduled yet.
  assert.equal(await ada.locator("[data-testid=countdown]").isVisible(), false);

  await quickPlay(bob, server.url, { name: "Bob", size: 3 });
  assert.equal(await codeOf(bob), code, "quick play seats Bob in Ada's game");
  await ada.waitForSelector("[data-player-row='1']:has-text('Bob')");
  assert.equal(await playerRows(bob), 2);

  // Two players: the auto-start is scheduled and counted down on both pages...
  for (const p of [ada, bob]) await p.waitForSelector("[data-testid=countdown]:has-text('Starting in')");
  await screenshot(ada, "waiting-countdown.png");
  // ...and the round starts without anyone pressing Start.
  for (const p of [ada, bob]) {
    await p.waitForSelector("[data-testid=status][data-status=active]", { timeout: LOBBY_START_MS + STEP_MS });
  }
  assert.equal(await ada.locator("[data-testid=countdown]").isVisible(), false);
  assert.match(await text(bob, "[data-testid=timer]"), /^0:[0-3]\d$/);
  assert.deepEqual(ada.consoleErrors.filter((e) => !/favicon/.test(e)), []);
  assert.deepEqual(bob.consoleErrors.filter((e) => !/favicon/.test(e)), []);
});

test("a typed code leads into the game; once it is full, the next one is told so", { timeout: 45_000 }, async () => {
  const ada = await newPage(browser);
  const cyd = await newPage(browser);
  const bob = await newPage(browser);
  const dan = await newPage(browser);

  await quickPlay(ada, server.url, { name: "Ada", size: 3 });
  await ada.waitForSelector("[data-testid=status][data-status=waiting]");
  const code = await codeOf(ada);

  // Bob is ready to press Quick play before the countdown starts: it lasts only LOBBY_START_MS.
  await bob.goto(server.url);
  await bob.fill("[data-testid=name]", "Bob");
  await bob.selectOption("[data-testid=quick-size]", "3");

  // Cyd types the code, in lower case and with a dash, as people do.
  await cyd.goto(server.url);
  await cyd.fill("[data-testid=name]", "Cyd");
  await cyd.fill("[data-testid=code]", `${code.slice(0, 3).toLowerCase()}-${code.slice(3).toLowerCase()}`);
  await cyd.press("[data-testid=code]", "Enter");
  await cyd.waitForSelector("[data-testid=status][data-status=waiting]");
  assert.equal(await codeOf(cyd), code);
  await ada.waitForSelector("[data-player-row='1']:has-text('Cyd')");

  // Bob's quick play takes the last seat: the game fills and starts at once, for him too
  // (he gets joined, then started).
  await bob.click("[data-testid=quick-play]");
  for (const p of [ada, cyd, bob]) await p.waitForSelector("[data-testid=status][data-status=active]");
  assert.equal(new URL(bob.url()).searchParams.get("game"), code, "Bob is in the same game");
  assert.equal(await playerRows(bob), 3);

  // Dan comes too late: told why, and left on the home screen to pick another game.
  await dan.goto(server.url);
  await dan.fill("[data-testid=name]", "Dan");
  await dan.fill("[data-testid=code]", code);
  await dan.click("[data-testid=join-code]");
  await dan.waitForSelector("[data-testid=error]:visible");
  const why = await dan.locator("[data-testid=error]").getAttribute("data-code");
  assert.ok(["game_full", "already_started"].includes(why), `told the game is full or started (${why})`);
  assert.match(await text(dan, "[data-testid=error]"), /full|already started/);
  assert.equal(await dan.locator("[data-testid=quick-play]").isVisible(), true);
});

test("code links and the old UUID links both lead into the game, and a bad code is explained", { timeout: 30_000 }, async () => {
  const ada = await newPage(browser);
  await quickPlay(ada, server.url, { name: "Ada", size: 5 });
  await ada.waitForSelector("[data-testid=status][data-status=waiting]");
  const code = await codeOf(ada);
  const res = await fetch(`${server.url}/api/games/${code}`);
  assert.equal(res.status, 200, "the HTTP route takes the code");
  const { id } = await res.json();

  // Both links are opened (and previewed) before anyone joins: the second join starts the
  // LOBBY_START_MS countdown, and the third must be in before it ends.
  const eve = await newPage(browser);
  await eve.goto(`${server.url}/?game=${id}`);
  const bob = await newPage(browser);
  await bob.goto(`${server.url}/?game=${code.toLowerCase()}`);
  for (const [p, name] of [[eve, "Eve"], [bob, "Bob"]]) {
    await p.waitForSelector("text=Ada's game is waiting for players (1 of 5 seats taken).");
    await p.fill("[data-testid=name]", name);
  }
  await eve.click("[data-testid=join]");
  await eve.waitForSelector("[data-testid=status][data-status=waiting]");
  await bob.click("[data-testid=join]");
  await bob.waitForSelector("[data-testid=status][data-status=waiting]");
  for (const p of [eve, bob]) {
    assert.equal(await codeOf(p), code);
    assert.equal(new URL(p.url()).searchParams.get("game"), code, "the address bar moves to the code");
  }
  await ada.waitForSelector("[data-player-row='2']");

  const cyd = await newPage(browser);
  await cyd.goto(server.url);
  await cyd.fill("[data-testid=name]", "Cyd");
  await cyd.fill("[data-testid=code]", "K0QX1M");
  await cyd.click("[data-testid=join-code]");
  await cyd.waitForSelector("[data-testid=error]:has-text('no 0, O, 1, I or L')");
  assert.equal(await cyd.getAttribute("[data-testid=code]", "aria-invalid"), "true");
});
