// The read-only /admin page, served by a node's admin listener: this node's
// numbers every second (from its own /metrics, /api/node, /api/cluster),
// the cluster's members, the public games running now, and one game's
// board, refreshed every second.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import "./admin.css";
import { h, setText } from "../ui/dom";
import { type Sample, p99, parseMetrics, rate, sum } from "./metricsText";

/** Points kept in each chart: two minutes at one a second. */
const WINDOW = 120;
const TICK_MS = 1000;

const stats = {
  mode: tile("mode"),
  state: tile("state"),
  nodes: tile("nodes"),
  waiting: tile("games-waiting"),
  active: tile("games-active"),
  completed: tile("games-completed"),
  players: tile("players"),
  captures: tile("captures"),
  deliveries: tile("deliveries"),
  broadcast: tile("broadcast-p99"),
  redis: tile("redis-p99"),
};

function tile(key: string): HTMLElement {
  return h("output", { "data-stat": key }, "–");
}

const series = {
  t: [] as number[],
  captures: [] as number[],
  deliveries: [] as number[],
  players: [] as number[],
  broadcastMs: [] as (number | null)[],
};

function chart(title: string, labels: string[], el: HTMLElement): uPlot {
  const colors = ["#0072B2", "#E69F00", "#009E73"] as const;
  return new uPlot(
    {
      title,
      width: 460,
      height: 200,
      series: [{}, ...labels.map((label, i) => ({ label, stroke: colors[i % colors.length] ?? "#000", width: 2 }))],
      axes: [{}, { size: 60 }],
    },
    [[], ...labels.map(() => [])],
    el,
  );
}

const nodesBody = h("tbody");
const gamesList = h("ul", { class: "games", "data-testid": "games" });
const board = h("div", { class: "board", "data-testid": "board", role: "grid", "aria-label": "board" });
const boardTitle = h("h3", {}, "Click a game to watch its board");
const lookup = h("input", { "aria-label": "game id or code", placeholder: "game id or code" });
let watched: string | null = null;

function layout(): { rates: uPlot; players: uPlot; latency: uPlot } {
  const root = document.getElementById("admin");
  if (!root) throw new Error("no #admin element");
  root.textContent = "";
  const tiles = h("dl", { class: "tiles" });
  for (const el of Object.values(stats)) {
    tiles.append(h("div", {}, h("dt", {}, labelOf(el.dataset.stat ?? "")), h("dd", {}, el)));
  }
  const charts = h("section", { class: "charts" });
  root.append(
    h("h1", {}, "gridcap admin"),
    h("p", { class: "note" }, "Read-only. This node's numbers, refreshed every second."),
    tiles,
    charts,
    h("section", {}, h("h2", {}, "Nodes"), h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "id"), h("th", {}, "state"), h("th", {}, "games"))), nodesBody)),
    h(
      "section",
      { class: "live" },
      h("div", {}, h("h2", {}, "Games running now (public)"), gamesList, h("form", { onsubmit: onLookup }, lookup, h("button", {}, "Watch"))),
      h("div", {}, boardTitle, board),
    ),
  );
  return {
    rates: chart("Captures/s and deliveries/s", ["captures/s", "deliveries/s"], charts),
    players: chart("Players connected", ["players"], charts),
    latency: chart("Capture broadcast p99 (ms)", ["p99 ms"], charts),
  };
}

const LABELS: Record<string, string> = {
  mode: "Mode",
  state: "State",
  nodes: "Nodes ready",
  "games-waiting": "Games waiting",
  "games-active": "Games active",
  "games-completed": "Games completed",
  players: "Players connected",
  captures: "Captures/s",
  deliveries: "Deliveries/s",
  "broadcast-p99": "Broadcast p99",
  "redis-p99": "Redis p99 (stateless)",
};

function labelOf(key: string): string {
  return LABELS[key] ?? key;
}

function onLookup(e: Event): void {
  e.preventDefault();
  const id = lookup.value.trim();
  if (id) watch(id);
}

function watch(id: string): void {
  watched = id;
  setText(boardTitle, `Game ${id}`);
  void refreshBoard();
}

async function json(path: string): Promise<unknown> {
  const res = await fetch(path, { cache: "no-store" });
  if (!res.ok) throw new Error(`${path}: ${res.status}`);
  return res.json();
}

const ms = (seconds: number | null): string => (seconds === null ? "–" : `${(seconds * 1000).toFixed(1)} ms`);

let last: { at: number; samples: Sample[] } | null = null;

async function tick(charts: { rates: uPlot; players: uPlot; latency: uPlot }): Promise<void> {
  const [metricsText, node] = await Promise.all([
    fetch("/metrics", { cache: "no-store" }).then((r) => r.text()),
    json("/api/node") as Promise<{ id: string; mode: string; draining: boolean; games: Record<string, number>; connections: number }>,
  ]);
  const now = performance.now();
  const samples = parseMetrics(metricsText);
  setText(stats.mode, node.mode);
  setText(stats.state, node.draining ? "draining" : sum(samples, "gridcap_ready") === 1 ? "ready" : "not ready");
  setText(stats.waiting, String(node.games.waiting ?? 0));
  setText(stats.active, String(node.games.active ?? 0));
  setText(stats.completed, String(node.games.completed ?? 0));
  setText(stats.players, String(node.connections));
  await refreshNodes(node);
  if (last) {
    const seconds = (now - last.at) / 1000;
    const captures = rate(last.samples, samples, "gridcap_captures_total", seconds);
    const deliveries = rate(last.samples, samples, "gridcap_deliveries_total", seconds);
    const broadcast = p99(last.samples, samples, "gridcap_capture_broadcast_seconds");
    setText(stats.captures, captures.toFixed(1));
    setText(stats.deliveries, deliveries.toFixed(1));
    setText(stats.broadcast, ms(broadcast));
    const redis = p99(last.samples, samples, "gridcap_redis_seconds");
    setText(stats.redis, node.mode === "stateless" ? ms(redis) : "n/a");
    push(Date.now() / 1000, captures, deliveries, node.connections, broadcast === null ? null : broadcast * 1000);
    charts.rates.setData([series.t, series.captures, series.deliveries]);
    charts.players.setData([series.t, series.players]);
    charts.latency.setData([series.t, series.broadcastMs]);
  }
  last = { at: now, samples };
}

function push(t: number, captures: number, deliveries: number, players: number, broadcastMs: number | null): void {
  series.t.push(t);
  series.captures.push(captures);
  series.deliveries.push(deliveries);
  series.players.push(players);
  series.broadcastMs.push(broadcastMs);
  if (series.t.length > WINDOW) for (const list of Object.values(series)) list.shift();
}

async function refreshNodes(me: { id: string; draining: boolean; games: Record<string, number> }): Promise<void> {
  let nodes: { id: string; state: string; games: number }[];
  try {
    const view = (await json("/api/cluster")) as { nodes: { id: string; state: string; games: number }[] };
    nodes = view.nodes;
  } catch {
    const total = Object.values(me.games).reduce((a, b) => a + b, 0);
    nodes = [{ id: me.id, state: me.draining ? "draining" : "ready", games: total }];
  }
  setText(stats.nodes, `${nodes.filter((n) => n.state === "ready").length} / ${nodes.length}`);
  nodesBody.replaceChildren(...nodes.map((n) => h("tr", { "data-node": n.id }, h("td", {}, n.id), h("td", {}, n.state), h("td", {}, String(n.games)))));
}

interface Entry {
  id: string;
  code: string;
  players: string[];
  scores?: number[];
}

async function refreshGames(): Promise<void> {
  const lobby = (await json("/admin/api/games")) as { waiting: Entry[]; active: Entry[] };
  const entries = [...lobby.active.map((g) => ({ ...g, status: "active" })), ...lobby.waiting.map((g) => ({ ...g, status: "waiting" }))];
  gamesList.replaceChildren(
    ...entries.map((g) =>
      h(
        "li",
        {},
        h(
          "button",
          { "data-game": g.id, onclick: () => watch(g.id) },
          `${g.code} · ${g.status} · ${g.players.map((p, i) => (g.scores ? `${p} ${g.scores[i]}` : p)).join(", ")}`,
        ),
      ),
    ),
  );
  if (entries.length === 0) gamesList.append(h("li", {}, "none right now"));
}

async function refreshBoard(): Promise<void> {
  if (!watched) return;
  let snap: { cells: number[]; status: string; players: { name: string; score: number }[] };
  try {
    snap = (await json(`/admin/api/games/${encodeURIComponent(watched)}`)) as typeof snap;
  } catch (e) {
    setText(boardTitle, `Game ${watched}: ${(e as Error).message}`);
    return;
  }
  setText(boardTitle, `Game ${watched} · ${snap.status}`);
  const cells = snap.cells.map((owner, i) => h("span", { class: `cell owner-${owner}`, "data-cell": i, "data-owner": owner }));
  board.replaceChildren(...cells);
}

function start(): void {
  const charts = layout();
  const loop = async (): Promise<void> => {
    try {
      await Promise.all([tick(charts), refreshGames(), refreshBoard()]);
    } catch (e) {
      console.warn("admin refresh failed", e);
    }
    setTimeout(() => void loop(), TICK_MS);
  };
  void loop();
}

start();
