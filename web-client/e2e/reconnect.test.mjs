// The page rides out the loss of its node: two stateless gridcap nodes on one
// redis-server behind HAProxy (deploy/haproxy/haproxy.cfg), each page's
// WebSocket on its own node. One node is killed mid-round (SIGKILL): the page
// on it reconnects through HAProxy to the other node and keeps its seat and
// board. One node is told to stop (SIGTERM) mid-round: it lets the round end,
// sends its page away with 1001, and the page carries on through the other.
import { spawn } from "node:child_process";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import {
  cell, createGame, distDir, joinGame, launchBrowser, newPage, owned, repoRoot, STEP_MS, text, waitFor, webClientDir,
} from "./harness.mjs";

/** A loopback port nothing listens on now. */
async function freePort() {
  const server = createServer();
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

/** A child process whose output is kept for failure messages. */
function run(name, program, args, env = {}) {
  const child = spawn(program, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  let log = "";
  child.stdout.on("data", (c) => (log += c));
  child.stderr.on("data", (c) => (log += c));
  // A missing program (make test installs redis-server and haproxy) shows in
  // the log of the wait that then fails.
  child.on("error", (e) => (log += `cannot start ${program}: ${e.message}\n`));
  const exited = new Promise((r) => child.once("exit", (code, signal) => r({ code, signal })));
  return {
    name,
    log: () => `--- ${name} ---\n${log.slice(-3000)}`,
    exited,
    running: () => child.exitCode === null && child.signalCode === null,
    signal: (sig) => child.kill(sig),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGKILL");
      await exited;
    },
  };
}

async function status(url) {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(2_000) })).status;
  } catch {
    return 0;
  }
}

/** Redis, nodes `a` and `b` (stateless), HAProxy in front; all ready. */
async function startCluster() {
  const bin = process.env.GRIDCAP_BIN ?? resolve(webClientDir, "../target/debug/gridcap");
  const redisDir = mkdtempSync(join(tmpdir(), "gridcap-e2e-redis-"));
  const redisPort = await freePort();
  const redis = run("redis", "redis-server", [
    "--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", redisDir,
  ]);
  const nodes = {};
  for (const id of ["a", "b"]) {
    const port = await freePort();
    const adminPort = await freePort();
    nodes[id] = {
      base: `http://127.0.0.1:${port}`,
      admin: `http://127.0.0.1:${adminPort}`,
      proc: run(`node ${id}`, bin, [
        "serve", "--mode", "stateless", "--node-id", id, "--redis", `redis://127.0.0.1:${redisPort}`,
        "--listen", `127.0.0.1:${port}`, "--admin-listen", `127.0.0.1:${adminPort}`, "--web-root", distDir, "--drain-timeout-ms", "30000",
        "--min-duration-ms", "1000",
      ], { RUST_LOG: "warn" }),
    };
  }
  const lbPort = await freePort();
  // The configuration names three nodes; the third is an address nothing
  // listens on (DOWN), so that leastconn has exactly a and b to choose from.
  const nobody = await freePort();
  const statsPort = await freePort();
  const haproxy = run("haproxy", "haproxy", ["-db", "-f", resolve(repoRoot, "deploy/haproxy/haproxy.cfg")], {
    GRIDCAP_LB_BIND: `127.0.0.1:${lbPort}`,
    GRIDCAP_LB_STATS: `127.0.0.1:${statsPort}`,
    GRIDCAP_CHECK_INTER: "200ms",
    GRIDCAP_NODE_A: nodes.a.base.slice(7),
    GRIDCAP_NODE_B: nodes.b.base.slice(7),
    GRIDCAP_NODE_C: `127.0.0.1:${nobody}`,
  });
  const all = [redis, haproxy, nodes.a.proc, nodes.b.proc];
  const cluster = {
    url: `http://127.0.0.1:${lbPort}`,
    nodes,
    logs: () => all.map((p) => p.log()).join("\n"),
    async stop() {
      for (const p of all) await p.stop();
      rmSync(redisDir, { recursive: true, force: true });
    },
  };
  for (const id of ["a", "b"]) {
    await waitFor(async () => (await status(`${nodes[id].base}/readyz`)) === 200, `node ${id} ready\n${cluster.logs()}`, 20_000);
  }
  // Both backends UP in HAProxy, so that its leastconn spreads the pages.
  await waitFor(async () => {
    try {
      const csv = await (await fetch(`http://127.0.0.1:${statsPort}/;csv`)).text();
      const lines = csv.split("\n");
      return ["a", "b"].every((id) => lines.some((l) => l.startsWith(`gridcap_nodes,${id},`) && /,UP,/.test(l)));
    } catch {
      return false;
    }
  }, `HAProxy sees both nodes up\n${cluster.logs()}`, 20_000);
  return cluster;
}

/** WebSocket connections open on the node whose admin listener is `admin` (its /metrics). */
async function wsConnections(admin) {
  const metrics = await (await fetch(`${admin}/metrics`)).text();
  const m = /^gridcap_connections (\d+)/m.exec(metrics);
  return m ? Number(m[1]) : 0;
}

/**
 * Two pages in one active game through the balancer. Returns them, the node
 * holding at least one of their WebSockets (`victim`) and the other node.
 */
async function twoPagesOnTwoNodes(browser, cluster, seconds) {
  const host = await newPage(browser);
  const guest = await newPage(browser);
  for (const page of [host, guest]) {
    page.sockets = 0;
    page.on("websocket", () => page.sockets++);
  }
  const link = await createGame(host, cluster.url, { name: "Ada", seconds, players: 3 });
  await joinGame(guest, link, "Bob");
  await host.click("[data-testid=start]:not([disabled])");
  for (const p of [host, guest]) await p.waitForSelector("[data-testid=status]:has-text('active')");
  // Where HAProxy put them depends on what else the browser had open; the
  // node with more of them is the one the test takes away.
  const onA = await wsConnections(cluster.nodes.a.admin);
  const onB = await wsConnections(cluster.nodes.b.admin);
  assert.equal(onA + onB, 2, "one WebSocket per page");
  const [victim, survivor] = onA >= onB ? [cluster.nodes.a, cluster.nodes.b] : [cluster.nodes.b, cluster.nodes.a];
  return { host, guest, victim, survivor };
}

/** Both pages show the same cells, owned by the same players. */
async function sameBoard(pages, cells) {
  for (const [n, k] of cells) for (const p of pages) await p.waitForSelector(owned(n, k));
  for (const p of pages) assert.equal(await p.locator("button[data-cell][data-owner]").count(), cells.length);
}

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

test("a page whose node is killed mid-round keeps its seat and board", { timeout: 90_000 }, async (t) => {
  const cluster = await startCluster();
  t.after(() => cluster.stop());
  const { host, guest, victim, survivor } = await twoPagesOnTwoNodes(browser, cluster, 120);
  await host.click(cell(0));
  await guest.click(cell(80));
  await sameBoard([host, guest], [[0, 0], [80, 1]]);

  const sockets = host.sockets + guest.sockets;
  const moved = await wsConnections(victim.admin);
  victim.proc.signal("SIGKILL");
  await victim.proc.exited;
  // The pages that were on it reconnect (through HAProxy, to the other) and resume:
  // same seat, same board, the round still running; both play on.
  await waitFor(() => host.sockets + guest.sockets >= sockets + moved, `the pages reconnect\n${cluster.logs()}`);
  for (const p of [host, guest]) await p.waitForSelector("[data-testid=status]:has-text('active')");
  await sameBoard([host, guest], [[0, 0], [80, 1]]);
  await host.click(cell(1));
  await guest.click(cell(79));
  await sameBoard([host, guest], [[0, 0], [80, 1], [1, 0], [79, 1]]);
  for (const p of [host, guest]) {
    await p.waitForSelector("[data-testid=score-0]:has-text('2')");
    await p.waitForSelector("[data-testid=score-1]:has-text('2')");
    assert.equal(await p.locator("[data-player-row]").count(), 2, "still two seats");
  }
  assert.equal(await wsConnections(survivor.admin), 2, "both pages on the survivor");
});

test("a page sent away by a draining node (1001) carries on through the other", { timeout: 90_000 }, async (t) => {
  const cluster = await startCluster();
  t.after(() => cluster.stop());
  const ROUND_S = 8;
  const { host, guest, victim: a, survivor: b } = await twoPagesOnTwoNodes(browser, cluster, ROUND_S);
  await host.click(cell(40));
  await sameBoard([host, guest], [[40, 0]]);

  a.proc.signal("SIGTERM");
  await waitFor(async () => (await status(`${a.base}/readyz`)) === 503, "a drains");
  // The round runs to its end on both pages, then a exits (after its 1001).
  for (const p of [host, guest]) {
    await p.waitForSelector("[data-testid=status]:has-text('completed')", { timeout: ROUND_S * 1000 + STEP_MS });
  }
  const exit = await a.proc.exited;
  assert.equal(exit.code, 0, `a drained and exited 0\n${cluster.logs()}`);
  // The pages a sent away reconnected to b: both still show the result...
  await waitFor(async () => (await wsConnections(b.admin)) === 2, `both pages on b\n${cluster.logs()}`);
  for (const p of [host, guest]) {
    assert.match(await text(p, "[data-testid=winners]"), /Winner: Ada/);
    await sameBoard([p], [[40, 0]]);
  }
  // ...and both play again on the same connection, through b.
  for (const p of [host, guest]) {
    await p.click("[data-testid=play-again]");
    await p.waitForSelector("[data-testid=status]:has-text('waiting')");
  }
});
