/** Shared builders for unit tests: a snapshot and players that match the contract. */
import type { Player, Snapshot } from "../src/protocol";

export const GAME_ID = "0b9c7e4e-3f1a-4c55-9a51-2f7f3f3a9c10";

export function mkPlayer(id: number, name = `P${id}`, over: Partial<Player> = {}): Player {
  return { id, name, color: id, score: 0, connected: true, ...over };
}

export function mkSnapshot(over: Partial<Snapshot> = {}): Snapshot {
  return {
    id: GAME_ID,
    status: "waiting",
    seq: 1,
    host: 0,
    max_players: 4,
    duration_ms: 30_000,
    players: [mkPlayer(0, "Ada")],
    cells: new Uint8Array(81),
    ...over,
  };
}
