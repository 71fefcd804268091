/** Section 7 on the client: codes, the countdown, unknown events, quick play, the lobby list. */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { LobbyPoller, parseLobby, type LobbyList } from "../src/lobbyApi";
import {
  decodeClient,
  decodeServer,
  encodeClient,
  parseGameCode,
  parseGameRef,
  parseSnapshot,
  type ClientMessage,
  type ServerMessage,
} from "../src/protocol";
import { applyEvent, fromSnapshot, gameRef, startsInMs } from "../src/state";
import { countdownText } from "../src/ui/lobby";
import { GAME_ID, MemTokens, mkPlayer, mkSnapshot, setup } from "./fixtures";

const CODE = "K7QX2M";

describe("short codes and links", () => {
  it("accepts a code case-insensitively, ignoring spaces and dashes", () => {
    expect(parseGameCode("k7qx2m")).toBe(CODE);
    expect(parseGameCode(" K7Q-X2M ")).toBe(CODE);
    expect(parseGameCode("k7q x2m")).toBe(CODE);
  });

  it("refuses codes with letters outside the alphabet or of the wrong length", () => {
    for (const bad of ["K7QX20", "K7QXOM", "K7QX1M", "K7QXIM", "K7QXLM", "K7QX2", "K7QX2MM", "", "K7QX2!"]) {
      expect(parseGameCode(bad), bad).toBeNull();
    }
  });

  it("takes a UUID, a code, or a whole link holding either", () => {
    expect(parseGameRef(GAME_ID)).toBe(GAME_ID);
    expect(parseGameRef(GAME_ID.toUpperCase())).toBe(GAME_ID);
    expect(parseGameRef("k7qx2m")).toBe(CODE);
    expect(parseGameRef(`https://play.example/?game=${CODE.toLowerCase()}`)).toBe(CODE);
    expect(parseGameRef(`http://127.0.0.1:8080/?x=1&game=${GAME_ID}#top`)).toBe(GAME_ID);
    expect(parseGameRef("https://play.example/?game=nope")).toBeNull();
    expect(parseGameRef("hello")).toBeNull();
  });

  it("names a game by its code when it has one, by its id otherwise", () => {
    expect(gameRef({ id: GAME_ID, code: CODE })).toBe(CODE);
    expect(gameRef({ id: GAME_ID })).toBe(GAME_ID);
  });
});

describe("section 7 wire messages", () => {
  const wire = (v: Record<string, unknown>) => decodeServer(encodeClient(v as unknown as ClientMessage));

  it("encodes quick_play and a public create", () => {
    const qp: ClientMessage = { t: "quick_play", name: "Ada", max_players: 3 };
    expect(decodeClient(encodeClient(qp))).toEqual(qp);
    const create: ClientMessage = { t: "create", name: "Ada", max_players: 4, duration_ms: 30_000, public: true };
    expect(decodeClient(encodeClient(create))).toEqual(create);
  });

  it("decodes countdown, scheduled and cancelled (nil)", () => {
    expect(wire({ t: "countdown", seq: 5, starts_in_ms: 10_000, starts_at_ms: 1_700_000_010_000 })).toEqual({
      t: "countdown",
      seq: 5,
      starts_in_ms: 10_000,
      starts_at_ms: 1_700_000_010_000,
    });
    expect(wire({ t: "countdown", seq: 6, starts_in_ms: null, starts_at_ms: null })).toEqual({
      t: "countdown",
      seq: 6,
      starts_in_ms: null,
      starts_at_ms: null,
    });
  });

  it("keeps the seq of a message type it does not know, and ignores one without seq", () => {
    expect(wire({ t: "fireworks", seq: 9, colour: "red" })).toEqual({ t: "unknown_event", type: "fireworks", seq: 9 });
    expect(wire({ t: "emote", text: "gg" })).toBeNull();
  });

  it("reads code, public, spectators and the scheduled start from a snapshot", () => {
    const snap = parseSnapshot({ ...mkSnapshot(), code: CODE, public: true, spectators: 2, starts_in_ms: 8000, starts_at_ms: 5 });
    expect(snap).toMatchObject({ code: CODE, public: true, spectators: 2, starts_in_ms: 8000, starts_at_ms: 5 });
    const old = parseSnapshot(mkSnapshot());
    expect(old.code).toBeUndefined();
    expect(old.public).toBeUndefined();
  });
});

describe("countdown in the game state", () => {
  const waiting = (over = {}) => fromSnapshot(mkSnapshot({ code: CODE, public: true, seq: 4, ...over }), 0, 1000);

  it("a waiting snapshot with starts_in_ms counts down locally", () => {
    const s = waiting({ starts_in_ms: 9000, starts_at_ms: 1 });
    expect(startsInMs(s, 1000)).toBe(9000);
    expect(startsInMs(s, 4000)).toBe(6000);
    expect(startsInMs(s, 20_000)).toBe(0);
    expect(countdownText(s, 4000)).toBe("Starting in 0:06");
    expect(startsInMs(waiting(), 1000)).toBeNull();
    expect(countdownText(waiting(), 1000)).toBeNull();
  });

  it("countdown schedules and cancels, and counts in the seq", () => {
    let s = waiting();
    let r = applyEvent(s, { t: "countdown", seq: 5, starts_in_ms: 1500, starts_at_ms: 2 }, 2000);
    expect(r.outcome).toBe("applied");
    s = r.state;
    expect(s.seq).toBe(5);
    expect(startsInMs(s, 2500)).toBe(1000);
    r = applyEvent(s, { t: "countdown", seq: 6, starts_in_ms: null, starts_at_ms: null }, 2600);
    expect(r.outcome).toBe("applied");
    expect(startsInMs(r.state, 2600)).toBeNull();
  });

  it("a lost countdown is a seq gap like any lost event", () => {
    const s = waiting();
    // seq 5 (the countdown) never arrived: the started with seq 6 reveals it.
    const r = applyEvent(s, { t: "started", seq: 6, ends_at_ms: 1, remaining_ms: 30_000 }, 2000);
    expect(r.outcome).toBe("gap");
    expect(r.state).toBe(s);
  });

  it("an unknown event only advances the seq", () => {
    const s = waiting();
    const r = applyEvent(s, { t: "unknown_event", type: "fireworks", seq: 5 }, 2000);
    expect(r.outcome).toBe("applied");
    expect(r.state).toEqual({ ...s, seq: 5 });
    expect(applyEvent(r.state, { t: "player_joined", seq: 6, player: mkPlayer(1, "Bob") }, 2000).outcome).toBe("applied");
  });

  it("the start ends the countdown", () => {
    const s = waiting({ starts_in_ms: 500 });
    const r = applyEvent(s, { t: "started", seq: 5, ends_at_ms: 1, remaining_ms: 30_000 }, 1500);
    expect(r.state.status).toBe("active");
    expect(startsInMs(r.state, 1500)).toBeNull();
    expect(r.state.startsAt).toBeUndefined();
  });
});

describe("controller and section 7", () => {
  const full = [mkPlayer(0, "Ada"), mkPlayer(1, "Bob")];

  it("quick play sends quick_play and is answered with joined like create", () => {
    const { ctl, conn, tokens, urls } = setup();
    ctl.quickPlay("Bob", 2);
    expect(conn.sent).toEqual([{ t: "quick_play", name: "Bob", max_players: 2 }]);
    expect(ctl.current.busy).toBe("quick_play");
    ctl.onMessage({ t: "joined", game: mkSnapshot({ code: CODE, public: true, players: full, max_players: 3 }), you: 1, token: "tk" });
    expect(ctl.current.screen).toBe("game");
    expect(ctl.current.busy).toBeNull();
    // The address bar and the token follow the code: a reload of /?game=K7QX2M resumes.
    expect(urls).toEqual([CODE]);
    expect(tokens.get(CODE)).toBe("tk");
  });

  it("create sends public only when asked", () => {
    const { ctl, conn } = setup();
    ctl.create("Ada", { maxPlayers: 4, durationMs: 30_000, public: true });
    expect(conn.sent[0]).toEqual({ t: "create", name: "Ada", max_players: 4, duration_ms: 30_000, public: true });
    const other = setup();
    other.ctl.create("Ada", { maxPlayers: 4, durationMs: 30_000, public: false });
    expect("public" in other.conn.sent[0]!).toBe(false);
  });

  it("play again keeps a public game public", () => {
    const { ctl, conn } = setup();
    ctl.onMessage({ t: "joined", game: mkSnapshot({ code: CODE, public: true, players: full, status: "completed", winners: [0] }), you: 0, token: "tk" });
    ctl.playAgain();
    expect(conn.sent.at(-1)).toMatchObject({ t: "create", public: true });
  });

  it("joins a typed code or a lobby game without an invitation", () => {
    const { ctl, conn } = setup();
    ctl.join("Cyd", CODE);
    expect(conn.sent).toEqual([{ t: "join", game: CODE, name: "Cyd" }]);
  });

  it("a code link resumes its stored seat on load", () => {
    const tokens = new MemTokens();
    tokens.set(CODE, "tk");
    const { ctl, conn } = setup(CODE, tokens);
    expect(ctl.current.screen).toBe("resuming");
    ctl.onOpen();
    expect(conn.sent).toEqual([{ t: "resume", game: CODE, token: "tk" }]);
  });

  it("an old UUID link moves to the code once joined, and the seat goes with it", () => {
    const tokens = new MemTokens();
    tokens.set(GAME_ID, "tk");
    const { ctl, urls } = setup(GAME_ID, tokens);
    ctl.onOpen();
    ctl.onMessage({ t: "joined", game: mkSnapshot({ code: CODE, players: full }), you: 0, token: "tk" });
    expect(urls).toEqual([CODE]);
    expect(tokens.get(CODE)).toBe("tk");
    expect(tokens.get(GAME_ID)).toBeNull();
  });

  it("a resync after a gap resumes by id with the token kept under the code", () => {
    const { ctl, conn } = setup();
    ctl.onMessage({ t: "joined", game: mkSnapshot({ code: CODE, players: full, seq: 3 }), you: 0, token: "tk" });
    ctl.onMessage({ t: "countdown", seq: 5, starts_in_ms: 1000, starts_at_ms: 1 });
    expect(conn.sent).toEqual([{ t: "resume", game: GAME_ID, token: "tk" }]);
  });

  it("the joiner who fills the game gets joined (still waiting) then started", () => {
    const { ctl, tick } = setup();
    ctl.join("Bob", CODE);
    ctl.onMessage({ t: "joined", game: mkSnapshot({ code: CODE, players: full, max_players: 2, seq: 2 }), you: 1, token: "tk" });
    expect(ctl.current.game?.status).toBe("waiting");
    tick(10);
    ctl.onMessage({ t: "started", seq: 3, ends_at_ms: 1, remaining_ms: 30_000 });
    expect(ctl.current.game?.status).toBe("active");
    expect(ctl.current.game?.deadline).toBe(30_010);
  });

  it("an older server's filled snapshot that is already active still plays", () => {
    const { ctl } = setup();
    ctl.join("Bob", GAME_ID);
    ctl.onMessage({ t: "joined", game: mkSnapshot({ players: full, max_players: 2, seq: 3, status: "active", remaining_ms: 29_000 }), you: 1, token: "tk" });
    expect(ctl.current.game?.status).toBe("active");
    expect(ctl.current.game?.deadline).toBe(29_000);
    // The next event follows on from the snapshot's seq.
    ctl.onMessage({ t: "captured", seq: 4, cell: 0, player: 0, score: 1 });
    expect(ctl.current.game?.seq).toBe(4);
  });

  it("a countdown after the joiner's snapshot shows the auto-start", () => {
    const { ctl } = setup();
    ctl.onMessage({ t: "joined", game: mkSnapshot({ code: CODE, public: true, players: full, seq: 2 }), you: 1, token: "tk" });
    ctl.onMessage({ t: "countdown", seq: 3, starts_in_ms: 1500, starts_at_ms: 1 } satisfies ServerMessage);
    expect(startsInMs(ctl.current.game!, 0)).toBe(1500);
  });
});

describe("the lobby list", () => {
  const body = {
    waiting: [
      { id: "a", code: "AAAAAA", players: ["Ada"], max_players: 4, duration_ms: 30_000 },
      { id: "b", code: "BBBBBB", players: ["Bob", "Cyd"], max_players: 2, duration_ms: 30_000, starts_in_ms: 800 },
      { id: "bad", code: "CCCCCC", players: "Dan", max_players: 4, duration_ms: 30_000 },
    ],
    active: [
      { id: "c", code: "DDDDDD", players: ["Eve", "Fay"], scores: [3, 5], remaining_ms: 12_000, spectators: 1 },
      { id: "bad", code: "EEEEEE", players: ["Gus"], remaining_ms: 1 },
      { id: "d", code: "FFFFFF", players: ["Hal"], scores: [0], remaining_ms: 0, extra: true },
    ],
  };

  it("parses entries as PROTOCOL section 7 says, dropping the malformed ones only", () => {
    const lobby = parseLobby(body)!;
    expect(lobby.waiting).toEqual([
      { id: "a", code: "AAAAAA", players: ["Ada"], maxPlayers: 4, durationMs: 30_000 },
      { id: "b", code: "BBBBBB", players: ["Bob", "Cyd"], maxPlayers: 2, durationMs: 30_000, startsInMs: 800 },
    ]);
    expect(lobby.active).toEqual([
      { id: "c", code: "DDDDDD", players: ["Eve", "Fay"], scores: [3, 5], remainingMs: 12_000, spectators: 1 },
      { id: "d", code: "FFFFFF", players: ["Hal"], scores: [0], remainingMs: 0, spectators: 0 },
    ]);
  });

  it("is null for something that is not a lobby", () => {
    expect(parseLobby(null)).toBeNull();
    expect(parseLobby([])).toBeNull();
    expect(parseLobby({ error: "not found" })).toBeNull();
    expect(parseLobby({ waiting: [] })).toEqual({ waiting: [], active: [] });
  });
});

describe("the lobby poller", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  const empty: LobbyList = { waiting: [], active: [] };

  function poller() {
    const seen: Array<LobbyList | null> = [];
    let loads = 0;
    let answer: (v: LobbyList | null) => void = () => {};
    const p = new LobbyPoller({
      load: () => {
        loads++;
        return new Promise((r) => (answer = r));
      },
      onUpdate: (l) => seen.push(l),
      setTimer: (fn, ms) => setTimeout(fn, ms),
      clearTimer: (t) => clearTimeout(t as ReturnType<typeof setTimeout>),
      intervalMs: 2000,
    });
    return { p, seen, loads: () => loads, answer: (v: LobbyList | null) => answer(v) };
  }

  it("loads at once, then every interval after the previous answer", async () => {
    const t = poller();
    t.p.start();
    t.p.start(); // already running: no second loop
    expect(t.loads()).toBe(1);
    await vi.advanceTimersByTimeAsync(5000);
    expect(t.loads()).toBe(1); // no answer yet: no overlapping request
    t.answer(empty);
    await vi.advanceTimersByTimeAsync(0);
    expect(t.seen).toEqual([empty]);
    await vi.advanceTimersByTimeAsync(1999);
    expect(t.loads()).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(t.loads()).toBe(2);
  });

  it("stops polling when stopped, and drops an answer that arrives after", async () => {
    const t = poller();
    t.p.start();
    t.p.stop();
    t.answer(empty);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(t.seen).toEqual([]);
    expect(t.loads()).toBe(1);
    expect(t.p.isRunning).toBe(false);

    t.p.start();
    expect(t.loads()).toBe(2);
    t.answer(null);
    await vi.advanceTimersByTimeAsync(0);
    t.p.stop();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(t.loads()).toBe(2);
    expect(t.seen).toEqual([null]);
  });
});
