// The waiting room: leaving frees the seat, the host role passes to the
// lowest remaining seat, and a leaver can start over on a fresh connection.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createGame, joinGame, newPage, serverAndBrowser, text } from "./harness.mjs";

const shared = serverAndBrowser();

test("leaving the lobby frees the seat and hands over the host role", { timeout: 45_000 }, async () => {
  const ada = await newPage(shared.browser);
  const bob = await newPage(shared.browser);
  const cyd = await newPage(shared.browser);
  const link = await createGame(ada, shared.server.url, { name: "Ada", seconds: 30, players: 4 });
  await joinGame(bob, link, "Bob");
  await joinGame(cyd, link, "Cyd");
  await ada.waitForSelector("[data-testid=start]:not([disabled])");
  assert.match(await text(bob, ".lobby"), /Waiting for Ada \(host\)/);

  // The host leaves: Bob (lowest remaining seat) becomes host and may start.
  await ada.click("button:has-text('Leave')");
  await ada.waitForSelector("[data-testid=create]");
  assert.equal(new URL(ada.url()).search, "", "the address bar forgets the game");
  await bob.waitForSelector("[data-player-row='0']", { state: "detached" });
  await bob.waitForSelector("[data-testid=start]:not([disabled])");
  await cyd.waitForSelector("text=Waiting for Bob (host)");

  // Cyd leaves too: Bob alone cannot start, and is told why.
  await cyd.click("button:has-text('Leave')");
  await bob.waitForSelector("[data-testid=start][disabled]");
  assert.match(await text(bob, "[data-testid=start-reason]"), /1 more connected player/);

  // Ada starts over on a new connection: her new game is a different one.
  await ada.fill("[data-testid=name]", "Ada");
  await ada.click("[data-testid=create]");
  await ada.waitForSelector("[data-testid=status]:has-text('waiting')");
  assert.notEqual(await ada.inputValue("[data-testid=share-link]"), link);
});
