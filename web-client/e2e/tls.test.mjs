// The browser client over https/wss: the server runs with a self-signed
// certificate made here by rcgen, Chromium is told to accept it, and the
// page (being https) opens its WebSocket with wss automatically. A short
// game: create, a second context joins by the share link, and a capture is
// seen by both.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { cell, createGame, joinGame, launchBrowser, newPage, owned, repoRoot, startServer } from "./harness.mjs";

let dir;
let server;
let browser;
let baseUrl;

// The certificate is made by rcgen, through the test kit's
// `make-cert` example (built by `make test-e2e`; GRIDCAP_MAKE_CERT overrides),
// so the test needs no openssl on the machine.
function selfSigned(into) {
  const tool = process.env.GRIDCAP_MAKE_CERT ?? join(repoRoot, "target/debug/examples/make-cert");
  execFileSync(tool, [into], { stdio: ["ignore", "ignore", "pipe"], timeout: 10_000 });
  return { cert: join(into, "cert.pem"), key: join(into, "key.pem") };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "gridcap-e2e-tls-"));
  const { cert, key } = selfSigned(dir);
  server = await startServer(["--tls-cert", cert, "--tls-key", key]);
  // The server prints its address as http://127.0.0.1:PORT; it serves https only.
  const port = new URL(server.url).port;
  baseUrl = `https://localhost:${port}`;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("two players play over https/wss with a self-signed certificate", { timeout: 60_000 }, async () => {
  const host = await newPage(browser, { ignoreHTTPSErrors: true });
  const guest = await newPage(browser, { ignoreHTTPSErrors: true });
  const sockets = [];
  for (const p of [host, guest]) p.on("websocket", (ws) => sockets.push(ws.url()));

  const link = await createGame(host, baseUrl, { name: "Ada", seconds: 30, players: 3 });
  assert.match(link, new RegExp(`^${baseUrl}/\\?game=`), `share link is https (${link})`);
  await joinGame(guest, link, "Bob");
  await host.waitForSelector("[data-testid=start]:not([disabled])");
  await host.click("[data-testid=start]");
  for (const p of [host, guest]) await p.waitForSelector("[data-testid=status]:has-text('active')");

  await guest.click(cell(40));
  for (const p of [host, guest]) await p.waitForSelector(owned(40, 1));
  await host.click(cell(0));
  for (const p of [host, guest]) await p.waitForSelector(owned(0, 0));

  assert.ok(sockets.length >= 2, `both pages opened a WebSocket (${sockets})`);
  for (const url of sockets) assert.match(url, /^wss:\/\/localhost:\d+\/ws$/);
  assert.deepEqual(host.consoleErrors, []);
  assert.deepEqual(guest.consoleErrors, []);
  await host.context().close();
  await guest.context().close();
});
