/**
 * Entry point: wires the connection, the controller and the page together.
 * The address bar carries the game (`/?game=K7QX2M`, its code; `/?game=<uuid>`
 * on a server without codes, and old links) so a reload resumes the seat with
 * the token kept in sessionStorage; while watching it is `/?watch=K7QX2M`, so a
 * reload (or the link, shared) opens the watch view.
 */
import "./style.css";
import { Connection } from "./connection";
import { Controller, type GameUrlKind } from "./controller";
import { fetchPreview, fetchSpectators } from "./gameApi";
import { fetchLobby } from "./lobbyApi";
import { parseGameRef, wsUrl } from "./protocol";
import { SessionTokenStore } from "./storage";
import { App } from "./ui/app";

const now = () => performance.now();

function setGameUrl(game: string | null, kind: GameUrlKind = "play"): void {
  const target = game ? `/?${kind === "watch" ? "watch" : "game"}=${game}` : "/";
  if (location.pathname + location.search !== target) history.replaceState(null, "", target);
}

const params = new URLSearchParams(location.search);
const invite = parseGameRef(params.get("game"));
const watch = parseGameRef(params.get("watch"));
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
  watch,
);
conn = new Connection(wsUrl(location), {
  onOpen: () => ctl.onOpen(),
  onMessage: (m) => ctl.onMessage(m),
  onClose: (code) => ctl.onClose(code),
  onInfo: (info) => ctl.onInfo(info),
});

const root = document.getElementById("app");
if (!root) throw new Error("index.html has no #app");
const app = new App(root, ctl, location.origin, now, {
  fetchPreview: (game) => fetchPreview(game),
  loadLobby: () => fetchLobby(),
  loadSpectators: (game) => fetchSpectators(game),
});
if (params.has("game") && !invite) {
  ctl.showError("bad_link", "This invitation link is broken: it does not contain a valid game code.");
} else if (params.has("watch") && !watch) {
  ctl.showError("bad_link", "This watch link is broken: it does not contain a valid game code.");
}

conn.start();
setInterval(() => app.tick(), 200);
// Back online while waiting out a backoff: no reason to wait any longer.
window.addEventListener("online", () => {
  if (ctl.current.conn.status === "waiting") conn?.reconnectNow();
});
