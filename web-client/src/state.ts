/**
 * Pure client-side game state.
 *
 * A `joined` (or, for a spectator, `watching`) snapshot replaces the whole state; broadcast events are applied in
 * `seq` order. An event whose seq is not exactly `seq + 1` is either stale (already
 * included, ignored) or reveals a gap (the caller must `resume` for a fresh
 * snapshot; the state is left unchanged). Time is an argument (`now`, a monotonic
 * local clock in ms such as `performance.now()`), never read here, so the round's
 * deadline is derived only from the server's `remaining_ms` and the moment the
 * message arrived — never from the local wall clock.
 */
import {
  CELL_COUNT,
  type GameEvent,
  type GameOverReason,
  type GameStatus,
  type Player,
  type PlayerId,
  type Snapshot,
} from "./protocol";

/** Minimum connected players for the host to start (server default `min_players`). */
export const MIN_PLAYERS = 2;

export interface PlayerView extends Player {
  /** Left an active game: the seat keeps its cells and score but is gone. */
  left: boolean;
}

export interface GameState {
  id: string;
  /** The short code (section 7); absent from servers that predate it. */
  code?: string;
  /** Listed in the public lobby. */
  public: boolean;
  status: GameStatus;
  /** Seq of the last event included in this state. */
  seq: number;
  host: PlayerId;
  maxPlayers: number;
  durationMs: number;
  /** Sorted by id. */
  players: PlayerView[];
  /** 81 bytes, 0 free, k+1 owned by player k. Never mutated in place. */
  cells: Uint8Array;
  /** This client's seat; null for a spectator, who has none. */
  you: PlayerId | null;
  /** Connections watching, as of the last snapshot or count refresh; absent from older servers. */
  spectators?: number;
  /** Local monotonic time at which the round ends (active only). */
  deadline?: number;
  /** Local monotonic time of the scheduled lobby auto-start (waiting only). */
  startsAt?: number;
  winners?: PlayerId[];
  reason?: GameOverReason;
}

export type ApplyOutcome = "applied" | "stale" | "gap";

export interface ApplyResult {
  state: GameState;
  outcome: ApplyOutcome;
}

/** The state a snapshot describes; `you` is null when this client watches (section 7). */
export function fromSnapshot(snap: Snapshot, you: PlayerId | null, now: number): GameState {
  const state: GameState = {
    id: snap.id,
    status: snap.status,
    seq: snap.seq,
    host: snap.host,
    maxPlayers: snap.max_players,
    durationMs: snap.duration_ms,
    players: sortPlayers(snap.players.map((p) => ({ ...p, left: false }))),
    cells: new Uint8Array(snap.cells),
    you,
    public: snap.public ?? false,
  };
  if (snap.code !== undefined) state.code = snap.code;
  if (snap.spectators !== undefined) state.spectators = snap.spectators;
  if (snap.status === "waiting" && snap.starts_in_ms !== undefined) state.startsAt = now + snap.starts_in_ms;
  if (snap.status === "active") {
    // A snapshot of an active game should carry remaining_ms; if a server leaves it
    // out, assume the full duration rather than showing no timer at all.
    state.deadline = now + (snap.remaining_ms ?? snap.duration_ms);
  }
  if (snap.status === "completed") state.winners = [...(snap.winners ?? leaders(state))];
  return state;
}

/** Apply one broadcast event, honouring seq order. */
export function applyEvent(state: GameState, ev: GameEvent, now: number): ApplyResult {
  if (ev.seq <= state.seq) return { state, outcome: "stale" };
  if (ev.seq > state.seq + 1) return { state, outcome: "gap" };
  return { state: { ...reduce(state, ev, now), seq: ev.seq }, outcome: "applied" };
}

function reduce(s: GameState, ev: GameEvent, now: number): GameState {
  switch (ev.t) {
    case "player_joined": {
      const others = s.players.filter((p) => p.id !== ev.player.id);
      return { ...s, players: sortPlayers([...others, { ...ev.player, left: false }]) };
    }
    case "player_left": {
      if (s.status === "waiting") {
        // The seat is freed. The server says who hosts now; without that (an
        // older server) the lowest remaining id, as the rules pick it.
        const players = s.players.filter((p) => p.id !== ev.player);
        const guess = s.host === ev.player && players.length > 0 ? players[0]!.id : s.host;
        return { ...s, players, host: ev.host ?? guess };
      }
      const left = updatePlayer(s, ev.player, (p) => ({ ...p, left: true, connected: false }));
      return { ...left, host: ev.host ?? left.host };
    }
    case "presence":
      return updatePlayer(s, ev.player, (p) => ({ ...p, connected: ev.connected }));
    case "started": {
      const next: GameState = { ...s, status: "active", deadline: now + ev.remaining_ms };
      delete next.startsAt;
      return next;
    }
    case "countdown": {
      if (s.status !== "waiting") return s;
      const next: GameState = { ...s };
      if (ev.starts_in_ms === null) delete next.startsAt;
      else next.startsAt = now + ev.starts_in_ms;
      return next;
    }
    case "unknown_event":
      // Not understood, but it happened: only its seq is taken (applyEvent does that).
      return s;
    case "captured": {
      const cells = new Uint8Array(s.cells);
      cells[ev.cell] = ev.player + 1;
      return updatePlayer({ ...s, cells }, ev.player, (p) => ({ ...p, score: ev.score }));
    }
    case "game_over": {
      const players = s.players.map((p) => ({ ...p, score: ev.scores[p.id] ?? p.score }));
      const next: GameState = { ...s, status: "completed", players, winners: [...ev.winners], reason: ev.reason };
      delete next.deadline;
      return next;
    }
  }
}

function updatePlayer(s: GameState, id: PlayerId, f: (p: PlayerView) => PlayerView): GameState {
  if (!s.players.some((p) => p.id === id)) return s;
  return { ...s, players: s.players.map((p) => (p.id === id ? f(p) : p)) };
}

function sortPlayers(players: PlayerView[]): PlayerView[] {
  return players.sort((a, b) => a.id - b.id);
}

// ---- queries ---------------------------------------------------------------

/** What links, the address bar and stored tokens name the game by: its code when it has one. */
export function gameRef(s: Pick<GameState, "id" | "code">): string {
  return s.code ?? s.id;
}

/** Milliseconds until the lobby auto-start, counted down locally; null when none is scheduled. */
export function startsInMs(s: GameState, now: number): number | null {
  if (s.status !== "waiting" || s.startsAt === undefined) return null;
  return Math.max(0, s.startsAt - now);
}

/** Milliseconds left in the round, counted down locally; null when not active. */
export function remainingMs(s: GameState, now: number): number | null {
  if (s.status !== "active" || s.deadline === undefined) return null;
  return Math.max(0, s.deadline - now);
}

export function ownerOf(s: GameState, cell: number): PlayerId | null {
  const v = s.cells[cell] ?? 0;
  return v === 0 ? null : v - 1;
}

export function player(s: GameState, id: PlayerId): PlayerView | undefined {
  return s.players.find((p) => p.id === id);
}

export function freeCells(s: GameState): number {
  let free = 0;
  for (let i = 0; i < CELL_COUNT; i++) if (s.cells[i] === 0) free++;
  return free;
}

export function connectedCount(s: GameState): number {
  return s.players.filter((p) => p.connected && !p.left).length;
}

export function isHost(s: GameState): boolean {
  return s.you !== null && s.host === s.you;
}

/** This client watches the game without a seat. */
export function isSpectator(s: GameState): boolean {
  return s.you === null;
}

/** "1 watching", "3 watching"; null when the server does not count spectators. */
export function watchingText(s: Pick<GameState, "spectators">): string | null {
  return s.spectators === undefined ? null : `${s.spectators} watching`;
}

/** Why the Start button is disabled, or null when this client may start now. */
export function startBlocker(s: GameState, minPlayers = MIN_PLAYERS): string | null {
  if (s.status !== "waiting") return "The game has already started.";
  if (!isHost(s)) return "Only the host can start the game.";
  const n = connectedCount(s);
  if (n < minPlayers) {
    const missing = minPlayers - n;
    return `Waiting for ${missing} more connected player${missing === 1 ? "" : "s"} (at least ${minPlayers} needed).`;
  }
  return null;
}

/** All tied leaders by score (empty when nobody scored). */
export function leaders(s: GameState): PlayerId[] {
  const best = Math.max(0, ...s.players.map((p) => p.score));
  if (best === 0) return [];
  return s.players.filter((p) => p.score === best).map((p) => p.id);
}

/** Players ranked for the scoreboard: score descending, then id. */
export function ranking(s: GameState): PlayerView[] {
  return [...s.players].sort((a, b) => b.score - a.score || a.id - b.id);
}
