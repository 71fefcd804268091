/**
 * The public lobby (PROTOCOL section 7): `GET /api/lobby` answers
 * `{"waiting": [...], "active": [...]}`. This module is DOM-free: it parses that
 * JSON leniently (an entry that breaks the contract is dropped, not the whole
 * list, so one odd game never hides the others) and polls it while the home
 * screen shows. Time and fetching come in as dependencies so tests drive both.
 */
import { Poller, type PollerDeps } from "./poller";

/** A public game with a free seat. */
export interface OpenGame {
  id: string;
  code: string;
  /** Names in seat order. */
  players: string[];
  maxPlayers: number;
  durationMs: number;
  /** Set while the lobby auto-start is scheduled. */
  startsInMs?: number;
}

/** A public game being played. */
export interface RunningGame {
  id: string;
  code: string;
  players: string[];
  /** Parallel to `players`. */
  scores: number[];
  remainingMs: number;
  spectators: number;
}

export interface LobbyList {
  waiting: OpenGame[];
  active: RunningGame[];
}

type Rec = Record<string, unknown>;

const isRec = (v: unknown): v is Rec => typeof v === "object" && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 0;
const isStr = (v: unknown): v is string => typeof v === "string";

function names(v: unknown): string[] | null {
  return Array.isArray(v) && v.every(isStr) ? v : null;
}

function openGame(v: unknown): OpenGame | null {
  if (!isRec(v)) return null;
  const players = names(v.players);
  if (!isStr(v.id) || !isStr(v.code) || !players || !isCount(v.max_players) || !isCount(v.duration_ms)) return null;
  const game: OpenGame = { id: v.id, code: v.code, players, maxPlayers: v.max_players, durationMs: v.duration_ms };
  if (isCount(v.starts_in_ms)) game.startsInMs = v.starts_in_ms;
  return game;
}

function runningGame(v: unknown): RunningGame | null {
  if (!isRec(v)) return null;
  const players = names(v.players);
  const scores = Array.isArray(v.scores) && v.scores.every(isCount) ? v.scores : null;
  if (!isStr(v.id) || !isStr(v.code) || !players || !scores || !isCount(v.remaining_ms)) return null;
  return {
    id: v.id,
    code: v.code,
    players,
    scores,
    remainingMs: v.remaining_ms,
    spectators: isCount(v.spectators) ? v.spectators : 0,
  };
}

function entries<T>(v: unknown, parse: (e: unknown) => T | null): T[] {
  if (!Array.isArray(v)) return [];
  return v.map(parse).filter((e): e is T => e !== null);
}

/** Parse the body of `GET /api/lobby`; null when it is not the lobby at all. */
export function parseLobby(body: unknown): LobbyList | null {
  if (!isRec(body) || (!Array.isArray(body.waiting) && !Array.isArray(body.active))) return null;
  return { waiting: entries(body.waiting, openGame), active: entries(body.active, runningGame) };
}

/** Fetch the lobby; null when the server has no lobby (an older server: 404) or cannot be reached. */
export async function fetchLobby(fetchFn: typeof fetch = fetch): Promise<LobbyList | null> {
  try {
    const res = await fetchFn("/api/lobby", { headers: { accept: "application/json" } });
    if (!res.ok) return null;
    return parseLobby(await res.json());
  } catch {
    return null;
  }
}

export const LOBBY_POLL_MS = 2000;

/** The lobby's poller: every `LOBBY_POLL_MS` unless told otherwise. */
export class LobbyPoller extends Poller<LobbyList | null> {
  constructor(deps: PollerDeps<LobbyList | null>) {
    super({ intervalMs: LOBBY_POLL_MS, ...deps });
  }
}
