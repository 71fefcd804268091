/** Spectators (PROTOCOL section 7): the wire messages, the state of a seatless client, the controller's watch flow. */
import { describe, expect, it } from "vitest";
import { fetchSpectators } from "../src/gameApi";
import { decodeClient, decodeServer, encodeClient, encodeServer, ProtocolError, type ClientMessage, type ServerMessage } from "../src/protocol";
import { fromSnapshot, isHost, isSpectator, ownerOf, watchingText } from "../src/state";
import { GAME_ID, mkPlayer, mkSnapshot, setup } from "./fixtures";

const CODE = "K7QX2M";
const twoPlayers = [mkPlayer(0, "Ada"), mkPlayer(1, "Bob")];

const watching = (over = {}): ServerMessage => ({
  t: "watching",
  game: mkSnapshot({ code: CODE, public: true, players: twoPlayers, status: "active", seq: 4, remaining_ms: 20_000, spectators: 3, ...over }),
});

/** A controller that watches an active game at seq 4. */
function watchingSetup() {
  const env = setup();
  env.ctl.watch(CODE);
  env.ctl.onMessage(watching());
  env.conn.sent = [];
  return env;
}

describe("spectator wire messages", () => {
  it("encodes watch by code or id", () => {
    const msg: ClientMessage = { t: "watch", game: CODE };
    expect(decodeClient(encodeClient(msg))).toEqual(msg);
  });

  it("decodes watching with its snapshot and spectator count", () => {
    const decoded = decodeServer(encodeServer(watching()));
    expect(decoded?.t).toBe("watching");
    if (decoded?.t !== "watching") return;
    expect(decoded.game).toMatchObject({ code: CODE, status: "active", seq: 4, spectators: 3 });
  });

  it("refuses a watching without a snapshot", () => {
    expect(() => decodeServer(encodeClient({ t: "watching" } as unknown as ClientMessage))).toThrow(ProtocolError);
  });
});

describe("spectator state", () => {
  it("has no seat, is never host, and says how many watch", () => {
    const s = fromSnapshot(mkSnapshot({ spectators: 1 }), null, 0);
    expect(isSpectator(s)).toBe(true);
    expect(isHost(s)).toBe(false);
    expect(watchingText(s)).toBe("1 watching");
    const player = fromSnapshot(mkSnapshot(), 0, 0);
    expect(isSpectator(player)).toBe(false);
    expect(watchingText(player)).toBeNull(); // an older server does not count spectators
  });
});

describe("controller: watching", () => {
  it("watches from the lobby: sends watch, then shows the game read-only under /?watch=CODE", () => {
    const { ctl, conn, links } = setup();
    ctl.watch(CODE);
    expect(conn.sent).toEqual([{ t: "watch", game: CODE }]);
    expect(ctl.current.busy).toBe("watch");
    expect(ctl.current.screen).toBe("resuming");
    ctl.onMessage(watching());
    const v = ctl.current;
    expect(v.screen).toBe("game");
    expect(v.busy).toBeNull();
    expect(v.game?.you).toBeNull();
    expect(v.game?.spectators).toBe(3);
    expect(links.at(-1)).toBe(`/?watch=${CODE}`);
  });

  it("follows every event to game over", () => {
    const { ctl } = watchingSetup();
    ctl.onMessage({ t: "captured", seq: 5, cell: 7, player: 1, score: 1 });
    ctl.onMessage({ t: "game_over", seq: 6, reason: "time", scores: [0, 1], winners: [1] });
    const g = ctl.current.game!;
    expect(ownerOf(g, 7)).toBe(1);
    expect(g.status).toBe("completed");
    expect(g.winners).toEqual([1]);
  });

  it("resyncs a seq gap by sending watch again, once, and takes the new snapshot", () => {
    const { ctl, conn } = watchingSetup();
    ctl.onMessage({ t: "captured", seq: 6, cell: 2, player: 0, score: 1 });
    ctl.onMessage({ t: "captured", seq: 7, cell: 3, player: 0, score: 2 });
    expect(conn.sent).toEqual([{ t: "watch", game: CODE }]);
    expect(ownerOf(ctl.current.game!, 2)).toBeNull();
    const cells = new Uint8Array(81);
    cells[1] = cells[2] = cells[3] = 1;
    ctl.onMessage(watching({ seq: 7, cells, spectators: 4 }));
    expect(ctl.current.game!.seq).toBe(7);
    expect(ownerOf(ctl.current.game!, 3)).toBe(0);
    expect(ctl.current.game!.spectators).toBe(4);
    ctl.onMessage({ t: "captured", seq: 8, cell: 4, player: 1, score: 1 });
    expect(ownerOf(ctl.current.game!, 4)).toBe(1);
    expect(conn.sent).toHaveLength(1);
  });

  it("never sends a capture or a play again for a spectator", () => {
    const { ctl, conn } = watchingSetup();
    ctl.capture(10);
    expect(conn.sent).toEqual([]);
    expect(ctl.current.notice).toMatch(/watching/);
    ctl.onMessage({ t: "game_over", seq: 5, reason: "time", scores: [0, 0], winners: [] });
    ctl.playAgain();
    expect(conn.sent).toEqual([]);
  });

  it("watches again after a reconnect, with no error for the lost answer; not once the game is over", () => {
    const { ctl, conn } = watchingSetup();
    ctl.onClose(1006);
    expect(ctl.current.error).toBeNull();
    ctl.onOpen();
    expect(conn.sent).toEqual([{ t: "watch", game: CODE }]);
    ctl.onMessage(watching({ seq: 5 }));
    ctl.onMessage({ t: "game_over", seq: 6, reason: "time", scores: [0, 0], winners: [] });
    conn.sent = [];
    ctl.onClose(1006);
    ctl.onOpen();
    expect(conn.sent).toEqual([]);
    expect(ctl.current.game?.status).toBe("completed");
  });

  it("opens a watch link on load: watch on the first open, not a join", () => {
    const { ctl, conn } = setup(null, undefined, CODE);
    expect(ctl.current.screen).toBe("resuming");
    expect(ctl.current.busy).toBe("watch");
    expect(ctl.current.invite).toBeNull();
    ctl.onOpen();
    expect(conn.sent).toEqual([{ t: "watch", game: CODE }]);
    ctl.onMessage(watching());
    expect(ctl.current.screen).toBe("game");
  });

  it("a watch of a game that is gone leads home with the reason and a clean address bar", () => {
    const { ctl, links } = setup(null, undefined, CODE);
    ctl.onOpen();
    ctl.onMessage({ t: "error", code: "unknown_game", message: "" });
    expect(ctl.current.screen).toBe("home");
    expect(ctl.current.busy).toBeNull();
    expect(ctl.current.error?.code).toBe("unknown_game");
    expect(links.at(-1)).toBe("/");
  });

  it("keeps a finished game on screen when watching it again fails", () => {
    const { ctl } = watchingSetup();
    ctl.onMessage({ t: "game_over", seq: 5, reason: "time", scores: [0, 0], winners: [] });
    ctl.onMessage({ t: "captured", seq: 9, cell: 1, player: 0, score: 1 }); // cannot happen, but a gap all the same
    ctl.onMessage({ t: "error", code: "unknown_game", message: "" });
    expect(ctl.current.screen).toBe("game");
    expect(ctl.current.game?.status).toBe("completed");
  });

  it("offers to watch a game that started before the join; not one that does not exist", () => {
    for (const code of ["already_started", "game_full"]) {
      const { ctl, conn } = setup(CODE);
      ctl.join("Cyd");
      ctl.onMessage({ t: "error", code, message: "" });
      expect(ctl.current.watchOffer).toBe(CODE);
      expect(ctl.current.invite).toBeNull();
      ctl.watchOffered();
      expect(conn.sent.at(-1)).toEqual({ t: "watch", game: CODE });
      expect(ctl.current.watchOffer).toBeNull();
      expect(ctl.current.error).toBeNull();
      ctl.onMessage({ t: "error", code: "game_full", message: "" }); // 100 watchers already
      expect(ctl.current.screen).toBe("home");
      expect(ctl.current.error?.code).toBe("game_full");
      expect(ctl.current.error?.text).toMatch(/spectators/);
    }
    const { ctl } = setup(CODE);
    ctl.join("Cyd");
    ctl.onMessage({ t: "error", code: "unknown_game", message: "" });
    expect(ctl.current.watchOffer).toBeNull();
  });

  it("dismissing the error drops the offer", () => {
    const { ctl } = setup();
    ctl.join("Cyd", CODE);
    ctl.onMessage({ t: "error", code: "already_started", message: "" });
    ctl.dismissError();
    expect(ctl.current.watchOffer).toBeNull();
  });

  it("stop watching sends leave, goes home, and no later open watches again", () => {
    const { ctl, conn, links } = watchingSetup();
    ctl.leave();
    expect(conn.sent).toEqual([{ t: "leave" }]);
    expect(ctl.current.screen).toBe("home");
    expect(ctl.current.game).toBeNull();
    expect(links.at(-1)).toBe("/");
    ctl.onClose(1000);
    ctl.onOpen();
    expect(conn.sent).toEqual([{ t: "leave" }]);
  });

  it("takes a refreshed spectator count for the game shown only", () => {
    const { ctl } = watchingSetup();
    ctl.setSpectators(CODE, 7);
    expect(ctl.current.game?.spectators).toBe(7);
    ctl.setSpectators(GAME_ID, 8);
    expect(ctl.current.game?.spectators).toBe(8);
    ctl.setSpectators("ZZZZZZ", 1);
    expect(ctl.current.game?.spectators).toBe(8);
  });

  it("a seat in a game under way does not watch", () => {
    const { ctl, conn } = setup();
    ctl.create("Ada", { maxPlayers: 2, durationMs: 5000 });
    ctl.onMessage({ t: "joined", game: mkSnapshot({ status: "active", remaining_ms: 5000 }), you: 0, token: "t" });
    conn.sent = [];
    ctl.watch(CODE);
    expect(conn.sent).toEqual([]);
  });
});

describe("spectator count over HTTP", () => {
  const answer = (status: number, body: unknown) => (async () => new Response(JSON.stringify(body), { status })) as unknown as typeof fetch;

  it("reads spectators from GET /api/games/{ref}, null when unknown", async () => {
    const seen: string[] = [];
    const fetchFn = (async (url: string) => {
      seen.push(url);
      return new Response(JSON.stringify({ id: GAME_ID, status: "active", players: [], spectators: 5 }), { status: 200 });
    }) as unknown as typeof fetch;
    expect(await fetchSpectators(CODE, fetchFn)).toBe(5);
    expect(seen).toEqual([`/api/games/${CODE}`]);
    expect(await fetchSpectators(CODE, answer(404, {}))).toBeNull();
    expect(await fetchSpectators(CODE, answer(200, { status: "active" }))).toBeNull();
    expect(await fetchSpectators(CODE, answer(200, { spectators: -1 }))).toBeNull();
    const failing = (async () => {
      throw new TypeError("offline");
    }) as unknown as typeof fetch;
    expect(await fetchSpectators(CODE, failing)).toBeNull();
  });
});
