import { decode, encode } from "@msgpack/msgpack";
import { describe, expect, it } from "vitest";
import {
  decodeClient,
  decodeServer,
  encodeClient,
  encodeServer,
  parseGameId,
  ProtocolError,
  validateName,
  wsUrl,
  type ClientMessage,
  type ServerMessage,
} from "../src/protocol";
import { GAME_ID, mkPlayer, mkSnapshot } from "./fixtures";

describe("client messages", () => {
  const all: ClientMessage[] = [
    { t: "create", name: "Ada", max_players: 3, duration_ms: 5000 },
    { t: "join", game: GAME_ID, name: "Bob" },
    { t: "resume", game: GAME_ID, token: "tok" },
    { t: "start" },
    { t: "capture", cell: 80, ref: 7 },
    { t: "leave" },
    { t: "ping", ts: 1234 },
  ];

  it.each(all)("round-trips $t as a MessagePack map with string keys", (msg) => {
    const bytes = encodeClient(msg);
    // fixmap/map16 marker: the top-level value is a map, not an array.
    expect(bytes[0]! >= 0x80 && bytes[0]! <= 0x8f).toBe(true);
    expect(decodeClient(bytes)).toEqual(msg);
  });

  it("leaves out undefined optional fields instead of sending nil", () => {
    const decoded = decodeClient(encodeClient({ t: "capture", cell: 3, ref: undefined } as unknown as ClientMessage));
    expect(decoded).toEqual({ t: "capture", cell: 3 });
    expect("ref" in decoded).toBe(false);
  });
});

describe("server messages", () => {
  it("decodes joined with cells as 81-byte bin", () => {
    const cells = new Uint8Array(81);
    cells[0] = 1;
    cells[80] = 2;
    const msg: ServerMessage = {
      t: "joined",
      game: mkSnapshot({ status: "active", cells, remaining_ms: 1500, ends_at_ms: 1_700_000_000_000, players: [mkPlayer(0), mkPlayer(1)] }),
      you: 1,
      token: "secret",
    };
    const bytes = encodeServer(msg);
    // The cells travel as bin 8 (0xc4) of length 81 (0x51).
    const hex = Buffer.from(bytes).toString("hex");
    expect(hex).toContain("c451" + "01" + "00".repeat(79) + "02");
    const back = decodeServer(bytes);
    expect(back).toEqual(msg);
    if (back?.t !== "joined") throw new Error("wrong type");
    expect(back.game.cells).toBeInstanceOf(Uint8Array);
    expect(back.game.cells.length).toBe(81);
    expect(back.game.cells[80]).toBe(2);
  });

  it("copies cells so they do not alias the frame buffer", () => {
    const bytes = encodeServer({ t: "joined", game: mkSnapshot(), you: 0, token: "x" });
    const msg = decodeServer(bytes);
    if (msg?.t !== "joined") throw new Error("wrong type");
    bytes.fill(0xff);
    expect(msg.game.cells.every((c) => c === 0)).toBe(true);
  });

  const events: ServerMessage[] = [
    { t: "player_joined", seq: 2, player: mkPlayer(1, "Bob") },
    { t: "player_left", seq: 3, player: 1 },
    { t: "presence", seq: 4, player: 0, connected: false },
    { t: "started", seq: 5, ends_at_ms: 1_700_000_030_000, remaining_ms: 30_000 },
    { t: "captured", seq: 6, cell: 40, player: 0, score: 1 },
    { t: "game_over", seq: 7, reason: "board_full", scores: [41, 40], winners: [0] },
    { t: "rejected", cell: 40, ref: 9, reason: "taken" },
    { t: "rejected", cell: 81, reason: "out_of_range" },
    { t: "pong", ts: 12.5, server_ms: 1_700_000_000_123 },
    { t: "error", code: "game_full", message: "no seat left" },
  ];
  it.each(events)("round-trips $t", (msg) => {
    expect(decodeServer(encodeServer(msg))).toEqual(msg);
  });

  it("ignores unknown keys and returns null for an unknown type", () => {
    const withExtra = encode({ t: "presence", seq: 3, player: 1, connected: true, shard: "eu-1" });
    expect(decodeServer(withExtra)).toEqual({ t: "presence", seq: 3, player: 1, connected: true });
    expect(decodeServer(encode({ t: "future_thing", x: 1 }))).toBeNull();
  });

  it("accepts seq and times sent as 64-bit integers", () => {
    // rmp-serde may encode u64 as uint64 (0xcf) even for small values.
    const hand = new Uint8Array([
      0x84, 0xa1, 0x74, 0xa7, ...Buffer.from("started"),
      0xa3, ...Buffer.from("seq"), 0xcf, 0, 0, 0, 0, 0, 0, 0, 5,
      0xaa, ...Buffer.from("ends_at_ms"), 0xcf, 0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00,
      0xac, ...Buffer.from("remaining_ms"), 0xcd, 0x75, 0x30,
    ]);
    const msg = decodeServer(hand);
    expect(msg).toMatchObject({ t: "started", seq: 5, remaining_ms: 30_000 });
  });

  it("rejects frames that break the contract", () => {
    expect(() => decodeServer(new Uint8Array([0xc1]))).toThrow(ProtocolError);
    expect(() => decodeServer(encode([1, 2]))).toThrow(ProtocolError);
    expect(() => decodeServer(encode({ seq: 1 }))).toThrow(/no string t/);
    expect(() => decodeServer(encode({ t: "captured", seq: 1, cell: 81, player: 0, score: 1 }))).toThrow(/out of the grid/);
    expect(() => decodeServer(encode({ t: "captured", seq: "1", cell: 1, player: 0, score: 1 }))).toThrow(/seq/);
    const shortCells = { ...mkSnapshot(), cells: new Uint8Array(80) };
    expect(() => decodeServer(encode({ t: "joined", game: shortCells, you: 0, token: "x" }))).toThrow(/80 bytes/);
    const arrayCells = { ...mkSnapshot(), cells: new Array(81).fill(0) };
    expect(() => decodeServer(encode({ t: "joined", game: arrayCells, you: 0, token: "x" }))).toThrow(/not binary/);
    expect(() => decodeServer(encode({ t: "game_over", seq: 2, reason: "boredom", scores: [], winners: [] }))).toThrow(/reason/);
  });

  it("decodes what a generic MessagePack encoder produces", () => {
    const raw = encode({ t: "error", code: "unknown_game", message: "no such game" });
    expect(decode(raw)).toEqual({ t: "error", code: "unknown_game", message: "no such game" });
    expect(decodeServer(raw)).toEqual({ t: "error", code: "unknown_game", message: "no such game" });
  });
});

describe("helpers", () => {
  it("builds the WebSocket URL from the page's origin", () => {
    expect(wsUrl({ protocol: "http:", host: "localhost:8080" })).toBe("ws://localhost:8080/ws");
    expect(wsUrl({ protocol: "https:", host: "gridcap.example" })).toBe("wss://gridcap.example/ws");
  });

  it("validates names like the server", () => {
    expect(validateName("  Ada ")).toEqual({ ok: true, name: "Ada" });
    expect(validateName("   ").ok).toBe(false);
    expect(validateName("x".repeat(25)).ok).toBe(false);
    expect(validateName("😀".repeat(24)).ok).toBe(true);
    expect(validateName("a\u0007b").ok).toBe(false);
    expect(validateName("\u200b\u200b").ok).toBe(false);
    expect(validateName("\u3164").ok).toBe(false);
    expect(validateName("eve\u202emada").ok).toBe(false);
    expect(validateName("\u05d3\u05d5\u05d3")).toEqual({ ok: true, name: "\u05d3\u05d5\u05d3" });
    expect(validateName("Zoe\u0301")).toEqual({ ok: true, name: "Zo\u00e9" });
  });

  it("accepts only canonical UUID game ids", () => {
    expect(parseGameId(GAME_ID.toUpperCase())).toBe(GAME_ID);
    expect(parseGameId("not-a-uuid")).toBeNull();
    expect(parseGameId(null)).toBeNull();
  });
});
