/**
 * `GET /api/games/{ref}` (PROTOCOL section 6; a code works as well as an id): the
 * JSON snapshot of one game, read without a WebSocket. The home screen peeks at a
 * shared game with it, and the watch view refreshes its "N watching" count with
 * it, since no event carries the spectator count. Parsing is lenient: a field
 * that breaks the contract gives "don't know" (null), never an exception.
 */
import type { Preview } from "./ui/home";

/** How often the watch view refreshes the spectator count: a few seconds is fresh enough to read. */
export const SPECTATORS_POLL_MS = 3000;

type GameJson = Record<string, unknown>;

/** The game's JSON; "unknown" on 404, null when the request fails or the answer is not a game. */
async function fetchGame(game: string, fetchFn: typeof fetch): Promise<GameJson | "unknown" | null> {
  try {
    const res = await fetchFn(`/api/games/${encodeURIComponent(game)}`, { headers: { accept: "application/json" } });
    if (res.status === 404) return "unknown";
    if (!res.ok) return null;
    const body: unknown = await res.json();
    return typeof body === "object" && body !== null && !Array.isArray(body) ? (body as GameJson) : null;
  } catch {
    return null;
  }
}

/** Peek at a shared game: "unknown" on 404, null when the peek itself fails. */
export async function fetchPreview(game: string, fetchFn: typeof fetch = fetch): Promise<Preview | "unknown" | null> {
  const snap = await fetchGame(game, fetchFn);
  if (snap === "unknown" || snap === null) return snap;
  if (typeof snap.status !== "string" || !Array.isArray(snap.players)) return null;
  const players = snap.players as Array<{ id?: unknown; name?: unknown }>;
  const host = players.find((p) => p.id === snap.host);
  return {
    status: snap.status,
    players: players.length,
    maxPlayers: typeof snap.max_players === "number" ? snap.max_players : players.length,
    hostName: typeof host?.name === "string" ? host.name : null,
  };
}

/** How many connections watch the game now; null when unknown (gone, unreachable, an older server). */
export async function fetchSpectators(game: string, fetchFn: typeof fetch = fetch): Promise<number | null> {
  const snap = await fetchGame(game, fetchFn);
  if (snap === "unknown" || snap === null) return null;
  const n = snap.spectators;
  return typeof n === "number" && Number.isInteger(n) && n >= 0 ? n : null;
}
