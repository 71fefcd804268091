/**
 * Entry point: wires the connection, the controller and the page together.
 * The address bar carries the game (`/?game=K7QX2M`, its code; `/?game=<uuid>`
 * on a server without codes, and old links) so a reload resumes the seat with
 * the token kept in sessionStorage.
 */
import "./style.css";
import { Connection } from "./connection";
import { Controller } from "./controller";
import { fetchLobby } from "./lobbyApi";
import { parseGameRef, wsUrl } from "./protocol";
import { SessionTokenStore } from "./storage";
import { App } from "./ui/app";
import type { Preview } from "./ui/home";

const now = () => performance.now();

function setGameUrl(game: string | null): void {
  const target = game ? `/?game=${game}` : "/";
  if (location.pathname + location.search !== target) history.replaceState(null, "", target);
}

/** Peek at a shared game over HTTP; "unknown" on 404, null when the peek itself fails. */
async function fetchPreview(game: string): Promise<Preview | "unknown" | null> {
  try {
    const res = await fetch(`/api/games/${encodeURIComponent(game)}`, { headers: { accept: "application/json" } });
    if (res.status === 404) return "unknown";
    if (!res.ok) return null;
    const snap = (await res.json()) as {
      status?: unknown;
      players?: Array<{ id?: unknown; name?: unknown }>;
      max_players?: unknown;
      host?: unknown;
    };
    if (typeof snap.status !== "string" || !Array.isArray(snap.players)) return null;
    const host = snap.players.find((p) => p.id === snap.host);
    return {
      status: snap.status,
      players: snap.players.length,
      maxPlayers: typeof snap.max_players === "number" ? snap.max_players : snap.players.length,
      hostName: typeof host?.name === "string" ? host.name : null,
    };
  } catch {
    return null;
  }
}

const invite = parseGameRef(new URLSearchParams(location.search).get("game"));
const tokens = new SessionTokenStore();
let conn: Connection | null = null;
const ctl = new Controller(
  {
    conn: {
      send: (m) => conn?.send(m) ?? false,
      get isOpen() {
        return conn?.isOpen ?? false;
      },
      reconnectNow: () => conn?.reconnectNow(),
    },
    tokens,
    now,
    onGameUrl: setGameUrl,
  },
  invite,
);
conn = new Connection(wsUrl(location), {
  onOpen: () => ctl.onOpen(),
  onMessage: (m) => ctl.onMessage(m),
  onClose: (code) => ctl.onClose(code),
  onInfo: (info) => ctl.onInfo(info),
});

const root = document.getElementById("app");
if (!root) throw new Error("index.html has no #app");
const app = new App(root, ctl, location.origin, now, fetchPreview, () => fetchLobby());
if (new URLSearchParams(location.search).has("game") && !invite) {
  ctl.showError("bad_link", "This invitation link is broken: it does not contain a valid game code.");
}

conn.start();
setInterval(() => app.tick(), 200);
// Back online while waiting out a backoff: no reason to wait any longer.
window.addEventListener("online", () => {
  if (ctl.current.conn.status === "waiting") conn?.reconnectNow();
});
