// A lost broadcast (seq gap) is repaired from a fresh snapshot. The guest's
// WebSocket is routed through playwright, which drops one `captured` event on
// its way to the browser; the client must notice the gap and resync.
import { decode } from "@msgpack/msgpack";
import assert from "node:assert/strict";
import { test } from "node:test";
import { cell, createGame, joinGame, newPage, owned, serverAndBrowser, waitFor } from "./harness.mjs";

const shared = serverAndBrowser();

test("a seq gap triggers a resume and the board catches up", { timeout: 45_000 }, async () => {
  const host = await newPage(shared.browser);
  const guest = await newPage(shared.browser);
  const seen = { connections: 0, dropped: null, resumes: 0, errors: [], joinedAfterResume: 0 };
  let dropNext = false;
  await guest.routeWebSocket(/\/ws$/, (ws) => {
    seen.connections++;
    const upstream = ws.connectToServer();
    ws.onMessage((m) => {
      if (typeof m !== "string" && decode(m).t === "resume") seen.resumes++;
      upstream.send(m);
    });
    upstream.onMessage((m) => {
      if (typeof m !== "string") {
        const msg = decode(m);
        if (msg.t === "error") seen.errors.push(msg);
        if (msg.t === "joined" && seen.resumes > 0) seen.joinedAfterResume++;
        if (dropNext && msg.t === "captured") {
          dropNext = false;
          seen.dropped = msg;
          return;
        }
      }
      ws.send(m);
    });
  });

  const link = await createGame(host, shared.server.url, { name: "Ada", seconds: 60, players: 3 });
  await joinGame(guest, link, "Bob");
  await host.click("[data-testid=start]:not([disabled])");
  await guest.waitForSelector("[data-testid=status]:has-text('active')");

  dropNext = true;
  await host.click(cell(20));
  await host.waitForSelector(owned(20, 0));
  await waitFor(() => seen.dropped, "the proxy to drop the capture of cell 20");
  assert.equal(seen.dropped.cell, 20);
  assert.equal(await guest.locator(owned(20, 0)).count(), 0, "the guest missed it");

  // The next event has seq = dropped + 2: a gap. The guest resyncs in place:
  // docs/protocol.md allows `resume` of the seat the connection already holds
  // and answers a fresh `joined` on the same connection (no already_in_game,
  // no reconnect).
  await host.click(cell(21));
  await guest.waitForSelector(owned(21, 0));
  await guest.waitForSelector(owned(20, 0));
  await guest.waitForSelector("[data-testid=score-0]:has-text('2')");
  assert.ok(seen.resumes >= 1, "the client sent resume");
  assert.deepEqual(seen.errors, [], "the in-connection resume was refused");
  assert.ok(seen.joinedAfterResume >= 1, "the resume was answered with joined");
  assert.equal(seen.connections, 1, "the guest resynced on its own connection");

  // Play goes on normally afterwards.
  await guest.click(cell(22));
  await host.waitForSelector(owned(22, 1));
});
