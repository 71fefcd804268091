import { describe, expect, it } from "vitest";
import type { ClientMessage, ServerMessage } from "../src/protocol";
import { ownerOf } from "../src/state";
import { GAME_ID, MemTokens, mkPlayer, mkSnapshot, setup } from "./fixtures";

const joined = (over = {}, you = 0, token = "tok-1"): ServerMessage => ({
  t: "joined",
  game: mkSnapshot({ players: [mkPlayer(0, "Ada"), mkPlayer(1, "Bob")], ...over }),
  you,
  token,
});

describe("controller", () => {
  it("creates a game, stores the token and puts the game in the URL", () => {
    const { ctl, conn, tokens, urls } = setup();
    ctl.create("Ada", { maxPlayers: 3, durationMs: 4000 });
    expect(conn.sent).toEqual([{ t: "create", name: "Ada", max_players: 3, duration_ms: 4000 }]);
    expect(ctl.current.busy).toBe("create");
    ctl.onMessage(joined());
    expect(tokens.get(GAME_ID)).toBe("tok-1");
    expect(urls).toEqual([GAME_ID]);
    expect(ctl.current.screen).toBe("game");
    expect(ctl.current.busy).toBeNull();
  });

  it("queues a create made while disconnected and sends it on open", () => {
    const { ctl, conn } = setup();
    conn.isOpen = false;
    ctl.create("Ada", { maxPlayers: 4, durationMs: 30_000 });
    expect(conn.sent).toEqual([]);
    conn.isOpen = true;
    ctl.onOpen();
    expect(conn.sent.map((m) => m.t)).toEqual(["create"]);
  });

  it("resumes the stored seat on page load and after every reconnect", () => {
    const tokens = new MemTokens();
    tokens.set(GAME_ID, "saved");
    const { ctl, conn } = setup(GAME_ID, tokens);
    expect(ctl.current.screen).toBe("resuming");
    ctl.onOpen();
    expect(conn.sent).toEqual([{ t: "resume", game: GAME_ID, token: "saved" }]);
    ctl.onMessage(joined({ status: "active", remaining_ms: 5000 }, 1, "saved"));
    ctl.onClose(1006);
    ctl.onOpen();
    expect(conn.sent.at(-1)).toEqual({ t: "resume", game: GAME_ID, token: "saved" });
  });

  it("a seq gap sends one resume, and the snapshot replaces the state", () => {
    const { ctl, conn } = setup();
    ctl.create("Ada", { maxPlayers: 2, durationMs: 5000 });
    ctl.onMessage(joined({ status: "active", seq: 4, remaining_ms: 5000 }));
    conn.sent = [];
    ctl.onMessage({ t: "captured", seq: 5, cell: 1, player: 1, score: 1 });
    expect(conn.sent).toEqual([]);
    ctl.onMessage({ t: "captured", seq: 7, cell: 2, player: 1, score: 2 });
    ctl.onMessage({ t: "captured", seq: 8, cell: 3, player: 1, score: 3 });
    expect(conn.sent).toEqual([{ t: "resume", game: GAME_ID, token: "tok-1" }]);
    expect(ownerOf(ctl.current.game!, 2)).toBeNull();
    const cells = new Uint8Array(81);
    cells[1] = cells[2] = cells[3] = 2;
    ctl.onMessage(joined({ status: "active", seq: 8, remaining_ms: 3000, cells }));
    expect(ctl.current.game!.seq).toBe(8);
    expect(ownerOf(ctl.current.game!, 3)).toBe(1);
    ctl.onMessage({ t: "captured", seq: 9, cell: 4, player: 0, score: 1 });
    expect(ownerOf(ctl.current.game!, 4)).toBe(0);
  });

  it("falls back to a fresh connection if the server refuses an in-connection resync", () => {
    const { ctl, conn } = setup();
    ctl.create("Ada", { maxPlayers: 2, durationMs: 5000 });
    ctl.onMessage(joined({ status: "active", seq: 1, remaining_ms: 5000 }));
    ctl.onMessage({ t: "captured", seq: 3, cell: 2, player: 1, score: 1 });
    ctl.onMessage({ t: "error", code: "already_in_game", message: "" });
    expect(conn.reconnects).toBe(1);
    expect(ctl.current.game).not.toBeNull();
    expect(ctl.current.error).toBeNull();
  });

  it("bad_token on resume clears the stored token and shows the error", () => {
    const tokens = new MemTokens();
    tokens.set(GAME_ID, "stale");
    const { ctl, urls } = setup(GAME_ID, tokens);
    ctl.onOpen();
    ctl.onMessage({ t: "error", code: "bad_token", message: "" });
    expect(tokens.get(GAME_ID)).toBeNull();
    expect(ctl.current.screen).toBe("home");
    expect(ctl.current.invite).toBe(GAME_ID); // may still join as a new player
    expect(ctl.current.error?.text).toMatch(/could not be restored/);
    expect(urls).toEqual([GAME_ID]);
  });

  it("unknown_game on resume clears the token and drops the link", () => {
    const tokens = new MemTokens();
    tokens.set(GAME_ID, "old");
    const { ctl } = setup(GAME_ID, tokens);
    ctl.onOpen();
    ctl.onMessage({ t: "error", code: "unknown_game", message: "" });
    expect(tokens.get(GAME_ID)).toBeNull();
    expect(ctl.current.invite).toBeNull();
    expect(ctl.current.error?.text).toMatch(/does not exist/);
  });

  it("join errors are worded for humans; fatal ones drop the invitation", () => {
    const { ctl } = setup(GAME_ID);
    ctl.join("Bob");
    ctl.onMessage({ t: "error", code: "game_full", message: "full" });
    expect(ctl.current.error?.text).toMatch(/full/);
    expect(ctl.current.invite).toBeNull();
    expect(ctl.current.busy).toBeNull();
  });

  it("captures carry a ref, stay pending until answered, and rejections explain themselves", () => {
    const { ctl, conn } = setup();
    ctl.create("Ada", { maxPlayers: 2, durationMs: 5000 });
    ctl.onMessage(joined({ status: "active", seq: 3, remaining_ms: 5000 }));
    ctl.capture(10);
    ctl.capture(10); // double click: one message
    ctl.capture(11);
    const caps = conn.sent.filter((m) => m.t === "capture");
    expect(caps).toEqual([
      { t: "capture", cell: 10, ref: 1 },
      { t: "capture", cell: 11, ref: 2 },
    ]);
    expect([...ctl.current.pendingCells]).toEqual([10, 11]);
    ctl.onMessage({ t: "captured", seq: 4, cell: 10, player: 0, score: 1 });
    ctl.onMessage({ t: "rejected", cell: 11, ref: 2, reason: "taken" });
    expect([...ctl.current.pendingCells]).toEqual([]);
    expect(ctl.current.notice).toMatch(/already taken/);
    // An owned cell is not even sent.
    ctl.capture(10);
    expect(conn.sent.filter((m) => m.t === "capture")).toHaveLength(2);
  });

  it("does not send captures before the round starts", () => {
    const { ctl, conn } = setup();
    ctl.create("Ada", { maxPlayers: 2, durationMs: 5000 });
    ctl.onMessage(joined());
    ctl.capture(0);
    expect(conn.sent.some((m) => m.t === "capture")).toBe(false);
    expect(ctl.current.notice).toMatch(/not started/);
  });

  it("start is refused locally with a reason until two players are connected", () => {
    const { ctl, conn } = setup();
    ctl.create("Ada", { maxPlayers: 2, durationMs: 5000 });
    ctl.onMessage(joined({ players: [mkPlayer(0, "Ada")] }));
    ctl.start();
    expect(conn.sent.some((m) => m.t === "start")).toBe(false);
    ctl.onMessage({ t: "player_joined", seq: 2, player: mkPlayer(1, "Bob") });
    ctl.start();
    expect(conn.sent.at(-1)).toEqual({ t: "start" });
  });

  it("play again creates a new game on the same connection and forgets the old token", () => {
    const { ctl, conn, tokens } = setup();
    ctl.create("Ada", { maxPlayers: 3, durationMs: 4000 });
    ctl.onMessage(joined({ status: "active", remaining_ms: 10, max_players: 3, duration_ms: 4000 }));
    ctl.onMessage({ t: "game_over", seq: 2, reason: "time", scores: [1, 0], winners: [0] });
    expect(ctl.current.game?.winners).toEqual([0]);
    ctl.playAgain();
    expect(conn.sent.at(-1)).toEqual({ t: "create", name: "Ada", max_players: 3, duration_ms: 4000 });
    const other = "1c9c7e4e-3f1a-4c55-9a51-2f7f3f3a9c11";
    ctl.onMessage({ t: "joined", game: mkSnapshot({ id: other }), you: 0, token: "tok-2" });
    expect(tokens.get(GAME_ID)).toBeNull();
    expect(tokens.get(other)).toBe("tok-2");
    expect(ctl.current.game?.status).toBe("waiting");
  });

  it("close 4001 offers to take the seat back", () => {
    const { ctl, conn } = setup();
    ctl.create("Ada", { maxPlayers: 2, durationMs: 5000 });
    ctl.onMessage(joined());
    ctl.onClose(4001);
    expect(ctl.current.replaced).toBe(true);
    expect(ctl.current.error?.text).toMatch(/another tab/);
    ctl.takeBackSeat();
    expect(conn.reconnects).toBe(1);
  });

  it("rate_limited is a passing notice, not an error", () => {
    const { ctl } = setup();
    ctl.onMessage({ t: "error", code: "rate_limited", message: "" });
    expect(ctl.current.error).toBeNull();
    expect(ctl.current.notice).toMatch(/Slow down/);
  });
});
