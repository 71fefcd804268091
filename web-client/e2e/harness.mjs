// Shared e2e harness: start the real gridcap server on a free port, launch
// Debian's Chromium through playwright-core, and collect screenshots. Not a
// test file itself (node --test only runs *.test.mjs here).
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, resolve } from "node:path";
import { after, before } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const webClientDir = resolve(here, "..");
export const repoRoot = resolve(webClientDir, "..");
export const distDir = resolve(webClientDir, "dist");
export const artifactsDir = resolve(repoRoot, "tests/artifacts");

/**
 * One server and one browser for all the tests of a file: started before
 * them, stopped after them. Returns an object whose `server` and `browser`
 * are set once the file's `before` hook has run.
 */
export function serverAndBrowser(extraArgs = []) {
  const shared = { server: undefined, browser: undefined };
  before(async () => {
    shared.server = await startServer(extraArgs);
    shared.browser = await launchBrowser();
  });
  after(async () => {
    await shared.browser?.close();
    await shared.server?.stop();
  });
  return shared;
}

/** Per-step limit: every wait in these tests is bounded by this or less. */
export const STEP_MS = 10_000;

/**
 * Spawn `gridcap serve` on 127.0.0.1:0 (its admin listener too) and resolve
 * with its base URL and admin URL once it prints both. `stop()` ends it
 * (SIGTERM, then SIGKILL).
 */
export async function startServer(extraArgs = []) {
  if (process.env.GRIDCAP_E2E_URL) return externalServer(extraArgs);
  const bin = process.env.GRIDCAP_BIN ?? resolve(webClientDir, "../target/debug/gridcap");
  const args = ["serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--web-root", distDir];
  const child = spawn(bin, [...args, ...extraArgs], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn" },
  });
  let log = "";
  const { url, adminUrl } = await new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not print its address within 15 s:\n${log}`)), 15_000);
    const onData = (chunk) => {
      log += chunk.toString();
      // The game's address, then the admin listener's (printed after it).
      const m = /listening on (https?:\/\/127\.0\.0\.1:\d+)[\s\S]*admin on (http:\/\/127\.0\.0\.1:\d+)\/admin/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolveUrl({ url: m[1], adminUrl: m[2] });
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", (c) => {
      log += c.toString();
    });
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${bin} (build it with \`cargo build -p gridcap-server\`): ${e.message}`));
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited early with ${code}:\n${log}`));
    });
  });
  // Keep draining the pipes so a chatty server never blocks on a full pipe.
  child.stdout.removeAllListeners("data");
  child.stdout.on("data", (c) => (log += c.toString()));
  return {
    url,
    adminUrl,
    log: () => log,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    timeout: 30_000,
  });
}

/** A fresh context + page with bounded waits; console errors are collected for the report. */
export async function newPage(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 820 }, ...options });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.setDefaultNavigationTimeout(STEP_MS);
  page.consoleErrors = [];
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") page.consoleErrors.push(m.text());
  });
  page.on("pageerror", (e) => page.consoleErrors.push(String(e)));
  return page;
}

export async function screenshot(page, name) {
  mkdirSync(artifactsDir, { recursive: true });
  await page.screenshot({ path: resolve(artifactsDir, name), fullPage: true });
}

/** Poll `fn` until it returns a truthy value (no fixed sleeps). */
export async function waitFor(fn, what, timeout = STEP_MS) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${String(last)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function text(page, selector) {
  return (await page.locator(selector).first().textContent())?.trim() ?? "";
}

/** Fill the home form and create a game; resolves with the share link. */
export async function createGame(page, baseUrl, { name, seconds, players = 2 }) {
  await page.goto(baseUrl);
  await page.fill("[data-testid=name]", name);
  await page.fill("[data-testid=max-players]", String(players));
  await page.fill("[data-testid=duration]", String(seconds));
  await page.click("[data-testid=create]");
  await page.waitForSelector("[data-testid=status]:has-text('waiting')");
  const link = await page.inputValue("[data-testid=share-link]");
  return link;
}

/** Open a share link and join as `name`. */
export async function joinGame(page, link, name) {
  await page.goto(link);
  await page.fill("[data-testid=name]", name);
  await page.click("[data-testid=join]");
  await page.waitForSelector("[data-testid=status]:has-text('waiting')");
}

export const cell = (n) => `button[data-cell="${n}"]`;
export const owned = (n, k) => `button[data-cell="${n}"][data-owner="${k}"]`;

/**
 * GRIDCAP_E2E_URL=http://host:port: use a server that is already running (e.g.
 * another implementation of the protocol behind `vite preview`) instead of
 * spawning gridcap. Its flags are its own business: `extraArgs` are only noted.
 */
function externalServer(extraArgs) {
  const url = process.env.GRIDCAP_E2E_URL.replace(/\/$/, "");
  const note = extraArgs.length ? `external server at ${url}; not passed: ${extraArgs.join(" ")}\n` : "";
  return { url, log: () => note, async stop() {} };
}

/** Quick play from the home page with a game size; resolves once seated (waiting or already started). */
export async function quickPlay(page, baseUrl, { name, size = 4 }) {
  await page.goto(baseUrl);
  await page.fill("[data-testid=name]", name);
  await page.selectOption("[data-testid=quick-size]", String(size));
  await page.click("[data-testid=quick-play]");
  await page.waitForSelector("[data-testid=status]");
}

const requireFromHere = createRequire(import.meta.url);
const axePath = requireFromHere.resolve("axe-core/axe.min.js");

/**
 * Run axe-core on the page as it is now; resolves with the violations of impact
 * serious or critical, each as "rule-id: help (n nodes: selectors)" for a readable
 * assertion message.
 */
export async function axeSerious(page) {
  if (!(await page.evaluate(() => "axe" in window))) await page.addScriptTag({ path: axePath });
  const violations = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const result = await axe.run(document, { resultTypes: ["violations"] });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.map((n) => n.target.join(" ")),
    }));
  });
  return violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} [${v.impact}]: ${v.help} (${v.targets.length} nodes: ${v.targets.slice(0, 5).join(", ")})`);
}
