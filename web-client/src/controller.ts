/**
 * The client's brain, free of DOM: turns user intents into protocol messages,
 * server messages into a `View`, and owns the rules around them — resume a seat
 * (or watch again, for a spectator) on every (re)connect, resync on a seq gap,
 * keep tokens per game in storage, map every error to a human sentence. The UI only renders `View` and calls the
 * intent methods; tests drive it with a fake `Sender`.
 */
import type { ConnInfo, Sender } from "./connection";
import { closeText, errorText, rejectText, WATCH_FULL_TEXT } from "./messages";
import { isGameEvent, type ClientMessage, type GameRef, type ServerMessage } from "./protocol";
import { applyEvent, fromSnapshot, gameRef, isSpectator, ownerOf, player, startBlocker, type GameState } from "./state";

/**
 * Where the seat tokens live (sessionStorage in the browser), keyed by what the
 * address bar names the game by (`gameRef`: the code, or the id on an older server).
 */
export interface TokenStore {
  get(game: GameRef): string | null;
  set(game: GameRef, token: string): void;
  delete(game: GameRef): void;
}

export type Screen = "home" | "resuming" | "game";
export type Request = "create" | "join" | "quick_play" | "resume" | "watch";

/** What the address bar offers for the game shown: a seat (`/?game=`) or the watch view (`/?watch=`). */
export type GameUrlKind = "play" | "watch";

export interface GameSettings {
  maxPlayers: number;
  durationMs: number;
  /** Listed in the public lobby; sent only when true (the server's default is false). */
  public?: boolean;
}

export interface View {
  screen: Screen;
  /** Game id or code from a share link, offered for joining on the home screen. */
  invite: GameRef | null;
  /** The game shown; `game.you` is null while this client watches it (section 7). */
  game: GameState | null;
  /** A game this client could not join because it is under way: the UI offers to watch it. */
  watchOffer: GameRef | null;
  error: { code: string; text: string } | null;
  /** Short-lived information (a rejected capture, a rate limit), not a failure. */
  notice: string | null;
  /** Cells this client asked for and has no answer about yet. */
  pendingCells: ReadonlySet<number>;
  /** A create/join/resume waiting for its answer. */
  busy: Request | null;
  conn: ConnInfo;
  /** The seat moved to another tab (close 4001); offer to take it back. */
  replaced: boolean;
}

export interface ControllerDeps {
  conn: Sender;
  tokens: TokenStore;
  /** Monotonic local clock, ms. */
  now: () => number;
  /** The game shown changed: put it in the address bar so a reload resumes it. */
  onGameUrl?: (game: GameRef | null, kind?: GameUrlKind) => void;
}

/** Codes after which joining that game cannot work, so the invitation is dropped. */
const JOIN_FATAL = new Set(["unknown_game", "game_full", "already_started"]);
/** Join answers meaning the game is under way (a full game has started): it can still be watched. */
const JOIN_WATCHABLE = new Set(["game_full", "already_started"]);

export class Controller {
  private view: View;
  private listeners: Array<(v: View) => void> = [];
  /** The create/join built before the socket was open, sent on open. */
  private queued: ClientMessage | null = null;
  /** A `resume` was sent because of a seq gap and its snapshot is awaited. */
  private resyncing = false;
  /** Name used for the current seat, reused by "play again". */
  private name = "";
  private nextRef = 1;
  /** Seat to resume on the first open (page reload with a stored token). */
  private resumeTarget: { game: GameRef; token: string } | null = null;
  /** The game this client watches or asked to watch: sent again on every open and on a seq gap. */
  private watchTarget: GameRef | null = null;
  /** The game of the last `join`, offered for watching if it has started. */
  private joinTarget: GameRef | null = null;

  /** `invite`: a share link to join (`/?game=`); `watch`: a watch link (`/?watch=`). */
  constructor(
    private readonly deps: ControllerDeps,
    invite: GameRef | null,
    watch: GameRef | null = null,
  ) {
    const token = invite ? deps.tokens.get(invite) : null;
    if (invite && token) this.resumeTarget = { game: invite, token };
    else if (watch) this.watchTarget = watch;
    const opening: Request | null = this.resumeTarget ? "resume" : this.watchTarget ? "watch" : null;
    this.view = {
      screen: opening ? "resuming" : "home",
      invite: this.watchTarget ? null : invite,
      game: null,
      watchOffer: null,
      error: null,
      notice: null,
      pendingCells: new Set(),
      busy: opening,
      conn: { status: "connecting", attempt: 0 },
      replaced: false,
    };
  }

  get current(): View {
    return this.view;
  }

  subscribe(fn: (v: View) => void): () => void {
    this.listeners.push(fn);
    fn(this.view);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== fn);
    };
  }

  // ---- intents ---------------------------------------------------------------

  create(name: string, settings: GameSettings): void {
    this.name = name;
    const msg: ClientMessage & { t: "create" } = { t: "create", name, max_players: settings.maxPlayers, duration_ms: settings.durationMs };
    if (settings.public) msg.public = true;
    this.request(msg);
  }

  /** Join the invitation, or `game` (a code typed in, a game picked from the lobby). */
  join(name: string, game: GameRef | null = this.view.invite): void {
    if (!game) return;
    this.name = name;
    this.joinTarget = game;
    this.request({ t: "join", game, name });
  }

  /**
   * Watch a game without a seat: a running game of the lobby, a watch link, or a
   * game that started before this client could join it.
   */
  watch(game: GameRef): void {
    const g = this.view.game;
    // A seat in a game under way cannot watch (the server says already_in_game).
    if (this.view.busy || (g && !isSpectator(g) && g.status !== "completed")) return;
    this.watchTarget = game;
    this.deps.onGameUrl?.(game, "watch");
    // "Opening the game to watch…" until the snapshot (or the refusal) arrives.
    const screen = g && isSpectator(g) ? this.view.screen : "resuming";
    this.update({ error: null, watchOffer: null, invite: null, screen });
    this.send({ t: "watch", game }, "watch");
  }

  /** Accept the offer to watch the game that could not be joined. */
  watchOffered(): void {
    const game = this.view.watchOffer;
    if (game) this.watch(game);
  }

  /** A fresh count of spectators (polled over HTTP: no event carries it) for the game shown. */
  setSpectators(game: GameRef, count: number): void {
    const g = this.view.game;
    if (!g || (game !== g.id && game !== g.code) || g.spectators === count) return;
    this.update({ game: { ...g, spectators: count } });
  }

  /** A seat in a public game of that size, wherever the server finds one. */
  quickPlay(name: string, maxPlayers: number): void {
    this.name = name;
    this.request({ t: "quick_play", name, max_players: maxPlayers });
  }

  start(): void {
    const g = this.view.game;
    if (!g) return;
    const blocker = startBlocker(g);
    if (blocker) return this.update({ error: { code: "not_ready", text: blocker } });
    if (!this.deps.conn.send({ t: "start" })) this.update({ notice: "Not connected — try again in a moment." });
  }

  capture(cell: number): void {
    const g = this.view.game;
    if (!g || this.view.pendingCells.has(cell)) return;
    if (isSpectator(g)) return this.update({ notice: "You are watching: only the players capture cells." });
    if (g.status !== "active") {
      return this.update({ notice: g.status === "waiting" ? "The round has not started yet." : "The round is over." });
    }
    const owner = ownerOf(g, cell);
    if (owner !== null) {
      const who = owner === g.you ? "yours" : `taken by ${player(g, owner)?.name ?? "another player"}`;
      return this.update({ notice: `That cell is already ${who}.` });
    }
    const ref = this.nextRef;
    this.nextRef = this.nextRef >= 0xffff_ffff ? 1 : this.nextRef + 1;
    if (!this.deps.conn.send({ t: "capture", cell, ref })) {
      return this.update({ notice: "Not connected — reconnecting…" });
    }
    this.update({ pendingCells: new Set([...this.view.pendingCells, cell]) });
  }

  leave(): void {
    const g = this.view.game;
    if (!g) return;
    this.deps.conn.send({ t: "leave" });
    this.deps.tokens.delete(gameRef(g));
    this.watchTarget = null;
    this.deps.onGameUrl?.(null);
    this.update({ game: null, screen: "home", invite: null, busy: null, pendingCells: new Set(), error: null });
  }

  /** A new game with the same settings, on the same connection (allowed once the old one completed). */
  playAgain(): void {
    const g = this.view.game;
    if (!g || g.status !== "completed" || g.you === null) return;
    const name = this.name || player(g, g.you)?.name || "";
    this.create(name, { maxPlayers: g.maxPlayers, durationMs: g.durationMs, public: g.public });
  }

  /** Forget the share link and go to the create form. */
  dropInvite(): void {
    this.deps.onGameUrl?.(null);
    this.update({ invite: null, error: null });
  }

  /** An error found by the client itself (form validation, a dead share link). */
  showError(code: string, text: string): void {
    this.update({ error: { code, text } });
  }

  dismissError(): void {
    this.update({ error: null, watchOffer: null });
  }

  clearNotice(): void {
    if (this.view.notice !== null) this.update({ notice: null });
  }

  /** After a 4001: take the seat back on this tab. */
  takeBackSeat(): void {
    this.update({ replaced: false, error: null });
    this.deps.conn.reconnectNow();
  }

  // ---- connection events -----------------------------------------------------

  onInfo(conn: ConnInfo): void {
    this.update({ conn });
  }

  onOpen(): void {
    this.resyncing = false;
    const g = this.view.game;
    const token = g ? this.deps.tokens.get(gameRef(g)) : null;
    if (this.watchTarget && !(g && isSpectator(g) && g.status === "completed")) {
      // A new connection watches nothing: ask again (a finished game has nothing more to show).
      this.send({ t: "watch", game: g && isSpectator(g) ? gameRef(g) : this.watchTarget }, "watch");
    } else if (g && token && g.status !== "completed") {
      // Every new connection takes the seat back; the snapshot replaces our state.
      this.send({ t: "resume", game: g.id, token }, "resume");
    } else if (this.resumeTarget) {
      this.send({ t: "resume", game: this.resumeTarget.game, token: this.resumeTarget.token }, "resume");
    } else if (this.queued) {
      const msg = this.queued;
      this.queued = null;
      this.send(msg, msg.t as Request);
    }
  }

  onClose(code: number): void {
    const patch: Partial<View> = { pendingCells: new Set() };
    const resent = this.view.busy === "resume" || this.view.busy === "watch";
    if (this.view.busy && !resent && !this.queued) {
      // The answer is lost with the connection; we cannot know if it happened.
      patch.busy = null;
      patch.error = { code: "connection_lost", text: "The connection dropped before the server answered. Please try again." };
    }
    if (code === 4001) {
      patch.replaced = true;
      patch.error = { code: "session_replaced", text: closeText(code) ?? "" };
    } else if (code === 1008 || code === 1009) {
      patch.error = { code: `close_${code}`, text: closeText(code) ?? "" };
    }
    this.update(patch);
  }

  onMessage(msg: ServerMessage): void {
    if (msg.t === "joined") return this.joined(msg);
    if (msg.t === "watching") return this.watching(msg);
    if (isGameEvent(msg)) {
      const g = this.view.game;
      if (!g) return;
      const { state, outcome } = applyEvent(g, msg, this.deps.now());
      if (outcome === "gap") return this.resync(g);
      if (outcome === "stale") return;
      const patch: Partial<View> = { game: state };
      if (msg.t === "captured" && this.view.pendingCells.has(msg.cell)) {
        const pending = new Set(this.view.pendingCells);
        pending.delete(msg.cell);
        patch.pendingCells = pending;
      }
      if (msg.t === "game_over") patch.pendingCells = new Set();
      if (msg.t === "started" && this.view.error?.code === "not_enough_players") patch.error = null;
      return this.update(patch);
    }
    switch (msg.t) {
      case "rejected": {
        const pending = new Set(this.view.pendingCells);
        pending.delete(msg.cell);
        return this.update({ pendingCells: pending, notice: rejectText(msg.reason) });
      }
      case "error":
        return this.serverError(msg.code, msg.message);
      case "pong":
        return;
    }
  }

  // ---- internals -------------------------------------------------------------

  private joined(msg: Extract<ServerMessage, { t: "joined" }>): void {
    const ref = gameRef(msg.game);
    const previous = this.view.game ? gameRef(this.view.game) : this.resumeTarget?.game;
    if (previous && previous !== ref) this.deps.tokens.delete(previous);
    this.deps.tokens.set(ref, msg.token);
    this.resumeTarget = null;
    this.watchTarget = null;
    this.resyncing = false;
    const game = fromSnapshot(msg.game, msg.you, this.deps.now());
    if (!this.name) this.name = player(game, msg.you)?.name ?? "";
    this.deps.onGameUrl?.(ref, "play");
    this.update({ game, screen: "game", invite: null, busy: null, error: null, watchOffer: null, pendingCells: new Set() });
  }

  /** The answer to `watch` (first, after a reconnect, or a resync): the snapshot replaces the state. */
  private watching(msg: Extract<ServerMessage, { t: "watching" }>): void {
    const ref = gameRef(msg.game);
    this.watchTarget = ref;
    this.resyncing = false;
    const game = fromSnapshot(msg.game, null, this.deps.now());
    this.deps.onGameUrl?.(ref, "watch");
    this.update({ game, screen: "game", invite: null, busy: null, error: null, watchOffer: null, pendingCells: new Set() });
  }

  private resync(g: GameState): void {
    if (this.resyncing) return;
    if (isSpectator(g)) {
      // A spectator has no token: watching again brings a fresh snapshot (section 7).
      this.resyncing = true;
      this.send({ t: "watch", game: gameRef(g) }, "watch");
      return;
    }
    const token = this.deps.tokens.get(gameRef(g));
    if (!token) return;
    this.resyncing = true;
    this.send({ t: "resume", game: g.id, token }, "resume");
  }

  private serverError(code: string, message: string): void {
    const op = this.view.busy;
    const error = { code, text: errorText(code, message) };
    if (code === "rate_limited") return this.update({ notice: error.text });
    if (op === "watch") return this.watchFailed(error);
    if (op === "resume") {
      if (code === "already_in_game" && this.resyncing) {
        // This server will not resume on a connection that holds the seat:
        // resync through a fresh connection instead (onOpen resumes).
        this.update({ busy: null });
        this.deps.conn.reconnectNow();
        return;
      }
      this.resyncing = false;
      const gameId = (this.view.game ? gameRef(this.view.game) : this.resumeTarget?.game) ?? null;
      this.resumeTarget = null;
      if (gameId) this.deps.tokens.delete(gameId);
      if (this.view.game?.status === "completed") return this.update({ busy: null, error });
      // The seat is gone. After bad_token the game may still take a new player.
      const invite = code === "bad_token" ? gameId : null;
      this.deps.onGameUrl?.(invite);
      return this.update({ busy: null, error, game: null, screen: "home", invite, pendingCells: new Set() });
    }
    if (op === "join" && JOIN_FATAL.has(code)) {
      this.deps.onGameUrl?.(null);
      const watchOffer = JOIN_WATCHABLE.has(code) ? this.joinTarget : null;
      return this.update({ busy: null, error, invite: null, watchOffer });
    }
    this.update({ busy: null, error });
  }

  /** A `watch` was refused: the game is gone (unknown_game) or has no room for spectators (game_full). */
  private watchFailed(refusal: { code: string; text: string }): void {
    this.resyncing = false;
    const error = refusal.code === "game_full" ? { code: refusal.code, text: WATCH_FULL_TEXT } : refusal;
    const g = this.view.game;
    // A seat keeps its game (already_in_game); a finished game stays on screen as it ended.
    if (g && (!isSpectator(g) || g.status === "completed")) return this.update({ busy: null, error });
    this.watchTarget = null;
    this.deps.onGameUrl?.(null);
    this.update({ busy: null, error, game: null, screen: "home", pendingCells: new Set() });
  }

  private request(msg: ClientMessage & { t: Request }): void {
    if (this.view.busy) return;
    this.update({ error: null });
    this.send(msg, msg.t);
  }

  private send(msg: ClientMessage, busy: Request): void {
    // A resume or watch that cannot go out now needs no queue: every open sends it again.
    if (!this.deps.conn.send(msg) && msg.t !== "resume" && msg.t !== "watch") this.queued = msg;
    this.update({ busy });
  }

  private update(patch: Partial<View>): void {
    this.view = { ...this.view, ...patch };
    for (const l of this.listeners) l(this.view);
  }
}
