import { describe, expect, it } from "vitest";
import type { GameEvent } from "../src/protocol";
import {
  applyEvent,
  connectedCount,
  fromSnapshot,
  leaders,
  ownerOf,
  remainingMs,
  startBlocker,
  type GameState,
} from "../src/state";
import { mkPlayer, mkSnapshot } from "./fixtures";

function applyAll(s: GameState, events: GameEvent[], now = 0): GameState {
  for (const ev of events) {
    const r = applyEvent(s, ev, now);
    expect(r.outcome).toBe("applied");
    s = r.state;
  }
  return s;
}

describe("client game state", () => {
  it("applies events in seq order: joins, start, captures, game over", () => {
    let s = fromSnapshot(mkSnapshot(), 0, 1000);
    s = applyAll(s, [
      { t: "player_joined", seq: 2, player: mkPlayer(1, "Bob") },
      { t: "started", seq: 3, ends_at_ms: 99, remaining_ms: 5000 },
      { t: "captured", seq: 4, cell: 0, player: 0, score: 1 },
      { t: "captured", seq: 5, cell: 80, player: 1, score: 1 },
      { t: "captured", seq: 6, cell: 40, player: 1, score: 2 },
    ], 1000);
    expect(s.seq).toBe(6);
    expect(s.status).toBe("active");
    expect(ownerOf(s, 0)).toBe(0);
    expect(ownerOf(s, 80)).toBe(1);
    expect(ownerOf(s, 1)).toBeNull();
    expect(s.players.map((p) => [p.name, p.score])).toEqual([["Ada", 1], ["Bob", 2]]);
    expect(leaders(s)).toEqual([1]);

    s = applyAll(s, [{ t: "game_over", seq: 7, reason: "time", scores: [1, 2], winners: [1] }]);
    expect(s.status).toBe("completed");
    expect(s.winners).toEqual([1]);
    expect(s.reason).toBe("time");
    expect(remainingMs(s, 2000)).toBeNull();
  });

  it("never mutates the previous state", () => {
    const s0 = fromSnapshot(mkSnapshot({ status: "active", remaining_ms: 1000 }), 0, 0);
    const { state: s1 } = applyEvent(s0, { t: "captured", seq: 2, cell: 5, player: 0, score: 1 }, 0);
    expect(ownerOf(s1, 5)).toBe(0);
    expect(ownerOf(s0, 5)).toBeNull();
    expect(s0.players[0]!.score).toBe(0);
  });

  it("reports a gap and leaves the state unchanged", () => {
    const s = fromSnapshot(mkSnapshot({ seq: 10, status: "active", remaining_ms: 1000 }), 0, 0);
    const r = applyEvent(s, { t: "captured", seq: 12, cell: 3, player: 0, score: 1 }, 0);
    expect(r.outcome).toBe("gap");
    expect(r.state).toBe(s);
    expect(ownerOf(r.state, 3)).toBeNull();
  });

  it("ignores stale events already included in a snapshot", () => {
    const s = fromSnapshot(mkSnapshot({ seq: 10 }), 0, 0);
    const r = applyEvent(s, { t: "player_joined", seq: 10, player: mkPlayer(1) }, 0);
    expect(r.outcome).toBe("stale");
    expect(r.state.players).toHaveLength(1);
  });

  it("a snapshot replaces the whole state", () => {
    let s = fromSnapshot(mkSnapshot({ status: "active", remaining_ms: 9000, players: [mkPlayer(0), mkPlayer(1)] }), 1, 0);
    s = applyAll(s, [{ t: "captured", seq: 2, cell: 1, player: 1, score: 1 }]);
    const cells = new Uint8Array(81);
    cells[60] = 1;
    const fresh = fromSnapshot(
      mkSnapshot({ seq: 9, status: "active", remaining_ms: 4000, cells, players: [mkPlayer(0, "Ada", { score: 1 }), mkPlayer(1)] }),
      1,
      500,
    );
    expect(fresh.seq).toBe(9);
    expect(ownerOf(fresh, 1)).toBeNull();
    expect(ownerOf(fresh, 60)).toBe(0);
    expect(remainingMs(fresh, 1500)).toBe(3000);
  });

  it("counts down from remaining_ms and the arrival time, never the wall clock", () => {
    const s0 = fromSnapshot(mkSnapshot({ players: [mkPlayer(0), mkPlayer(1)] }), 0, 0);
    // ends_at_ms deliberately far from any local clock: only remaining_ms counts.
    const { state } = applyEvent(s0, { t: "started", seq: 2, ends_at_ms: 1, remaining_ms: 3000 }, 10_000);
    expect(remainingMs(state, 10_000)).toBe(3000);
    expect(remainingMs(state, 11_250)).toBe(1750);
    expect(remainingMs(state, 99_999)).toBe(0);
  });

  it("game_over sets winners (all tied leaders) and final scores", () => {
    const s0 = fromSnapshot(mkSnapshot({ status: "active", remaining_ms: 1, players: [mkPlayer(0), mkPlayer(1), mkPlayer(2)] }), 2, 0);
    const { state } = applyEvent(s0, { t: "game_over", seq: 2, reason: "board_full", scores: [30, 30, 21], winners: [0, 1] }, 0);
    expect(state.winners).toEqual([0, 1]);
    expect(state.players.map((p) => p.score)).toEqual([30, 30, 21]);
    expect(state.reason).toBe("board_full");
  });

  it("a completed snapshot carries winners", () => {
    const s = fromSnapshot(mkSnapshot({ status: "completed", winners: [1], players: [mkPlayer(0), mkPlayer(1, "B", { score: 3 })] }), 0, 0);
    expect(s.winners).toEqual([1]);
    expect(remainingMs(s, 0)).toBeNull();
  });

  it("a waiting game frees the seat of a leaver and hands host to the lowest id", () => {
    let s = fromSnapshot(mkSnapshot({ players: [mkPlayer(0), mkPlayer(1), mkPlayer(2)] }), 2, 0);
    s = applyAll(s, [{ t: "player_left", seq: 2, player: 0 }]);
    expect(s.players.map((p) => p.id)).toEqual([1, 2]);
    expect(s.host).toBe(1);
  });

  it("a player leaving an active game keeps cells and score", () => {
    let s = fromSnapshot(mkSnapshot({ status: "active", remaining_ms: 5000, players: [mkPlayer(0), mkPlayer(1)] }), 0, 0);
    s = applyAll(s, [
      { t: "captured", seq: 2, cell: 7, player: 1, score: 1 },
      { t: "player_left", seq: 3, player: 1 },
    ]);
    expect(ownerOf(s, 7)).toBe(1);
    expect(s.players[1]).toMatchObject({ score: 1, left: true, connected: false });
  });

  it("tracks presence, and Start needs the host and two connected players", () => {
    let s = fromSnapshot(mkSnapshot(), 0, 0);
    expect(startBlocker(s)).toMatch(/1 more connected player/);
    s = applyAll(s, [{ t: "player_joined", seq: 2, player: mkPlayer(1) }]);
    expect(startBlocker(s)).toBeNull();
    s = applyAll(s, [{ t: "presence", seq: 3, player: 1, connected: false }]);
    expect(connectedCount(s)).toBe(1);
    expect(startBlocker(s)).not.toBeNull();
    s = applyAll(s, [{ t: "presence", seq: 4, player: 1, connected: true }]);
    expect(startBlocker(s)).toBeNull();
    expect(startBlocker({ ...s, you: 1 })).toMatch(/Only the host/);
  });
});
