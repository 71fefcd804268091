// Dead ends are explained: an unknown game link, and a stored token the
// server no longer accepts.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";
import { createGame, newPage, serverAndBrowser, text } from "./harness.mjs";

const shared = serverAndBrowser();

test("an unknown game link shows a clear error", { timeout: 30_000 }, async () => {
  const page = await newPage(shared.browser);
  await page.goto(`${shared.server.url}/?game=${randomUUID()}`);
  // Reported before typing anything (the link is checked over HTTP)...
  await page.waitForSelector("[data-testid=error]:has-text('does not exist')");
  // ...and again by the server when trying to join anyway.
  await page.fill("[data-testid=name]", "Cyd");
  await page.click("[data-testid=join]");
  await page.waitForSelector("[data-testid=join]", { state: "hidden" });
  assert.match(await text(page, "[data-testid=error]"), /does not exist/);
  assert.equal(await page.locator("[data-testid=error]").getAttribute("data-code"), "unknown_game");
  // The way out is right there: the create form.
  await page.waitForSelector("[data-testid=create]");
  assert.equal(new URL(page.url()).search, "");
});

test("a stale seat token is reported and forgotten, and joining stays possible", { timeout: 30_000 }, async () => {
  const host = await newPage(shared.browser);
  const link = await createGame(host, shared.server.url, { name: "Ada", seconds: 30, players: 3 });
  const game = new URL(link).searchParams.get("game");

  const page = await newPage(shared.browser);
  await page.addInitScript(([id]) => {
    if (!sessionStorage.getItem("seeded")) {
      sessionStorage.setItem("seeded", "1");
      sessionStorage.setItem(`gridcap.token.${id}`, "not-a-real-token");
    }
  }, [game]);
  await page.goto(link);
  await page.waitForSelector("[data-testid=error][data-code=bad_token]");
  assert.match(await text(page, "[data-testid=error]"), /could not be restored/);
  assert.equal(await page.evaluate((id) => sessionStorage.getItem(`gridcap.token.${id}`), game), null);
  await page.fill("[data-testid=name]", "Bob");
  await page.click("[data-testid=join]");
  await page.waitForSelector("[data-testid=status]:has-text('waiting')");
  await host.waitForSelector("[data-player-row='1']:has-text('Bob')");
});

test("an invalid name is explained", { timeout: 30_000 }, async () => {
  const page = await newPage(shared.browser);
  await page.goto(shared.server.url);
  await page.fill("[data-testid=name]", "   ");
  await page.click("[data-testid=create]");
  await page.waitForSelector("[data-testid=error]:has-text('enter a name')");
  assert.equal(await page.locator("[data-testid=status]").isVisible(), false);
});
