import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { backoffDelay, Connection, type ConnInfo } from "../src/connection";
import { decodeClient, encodeServer, SUBPROTOCOL, type ServerMessage } from "../src/protocol";

describe("backoffDelay", () => {
  it("doubles from the base, caps at 10 s, and jitters between 50 and 100 %", () => {
    expect(backoffDelay(0, 0)).toBe(150);
    expect(backoffDelay(0, 1)).toBe(300);
    expect(backoffDelay(3, 1)).toBe(2400);
    expect(backoffDelay(10, 1)).toBe(10_000);
    expect(backoffDelay(50, 0)).toBe(5000);
    for (let a = 0; a < 20; a++) {
      const d = backoffDelay(a, Math.random());
      expect(d).toBeGreaterThan(0);
      expect(d).toBeLessThanOrEqual(10_000);
    }
  });
});

/** Just enough of a browser WebSocket to drive `Connection`. */
class FakeWs {
  static OPEN = 1;
  static all: FakeWs[] = [];
  readyState = 0;
  binaryType = "blob";
  sent: Uint8Array[] = [];
  closedWith: number | null = null;
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number }) => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(
    readonly url: string,
    readonly protocols: string[],
  ) {
    FakeWs.all.push(this);
  }
  send(b: Uint8Array) {
    this.sent.push(b);
  }
  close(code: number) {
    this.closedWith = code;
  }
  serverOpen() {
    this.readyState = 1;
    this.onopen?.();
  }
  serverSend(msg: ServerMessage) {
    const b = encodeServer(msg);
    this.onmessage?.({ data: b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) });
  }
  serverClose(code: number) {
    this.readyState = 3;
    this.onclose?.({ code });
  }
}

describe("Connection", () => {
  let now = 0;
  let infos: ConnInfo[];
  let opened: number;
  let got: ServerMessage[];
  let conn: Connection;

  beforeEach(() => {
    vi.useFakeTimers();
    now = 0;
    FakeWs.all = [];
    infos = [];
    opened = 0;
    got = [];
    conn = new Connection(
      "ws://h/ws",
      { onOpen: () => opened++, onMessage: (m) => got.push(m), onClose: () => {}, onInfo: (i) => infos.push(i) },
      { now: () => now, random: () => 1, WebSocketImpl: FakeWs as unknown as typeof WebSocket },
    );
  });
  afterEach(() => {
    conn.stop();
    vi.useRealTimers();
  });

  it("offers gridcap.v1, uses arraybuffers, and pings with a round-trip time", () => {
    conn.start();
    const ws = FakeWs.all[0]!;
    expect(ws.protocols).toEqual([SUBPROTOCOL]);
    expect(ws.binaryType).toBe("arraybuffer");
    now = 1000;
    ws.serverOpen();
    expect(opened).toBe(1);
    const ping = decodeClient(ws.sent[0]!);
    expect(ping).toEqual({ t: "ping", ts: 1000 });
    now = 1042;
    ws.serverSend({ t: "pong", ts: 1000, server_ms: 1 });
    expect(infos.at(-1)).toMatchObject({ status: "open", rttMs: 42 });
    now = 6000;
    vi.advanceTimersByTime(5000);
    expect(ws.sent).toHaveLength(2);
  });

  it("reconnects with growing delays and resets after a healthy exchange", () => {
    conn.start();
    FakeWs.all[0]!.serverClose(1006);
    expect(infos.at(-1)).toMatchObject({ status: "waiting", attempt: 1 });
    vi.advanceTimersByTime(299);
    expect(FakeWs.all).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(FakeWs.all).toHaveLength(2);
    FakeWs.all[1]!.serverClose(1006);
    vi.advanceTimersByTime(599);
    expect(FakeWs.all).toHaveLength(2);
    vi.advanceTimersByTime(1);
    expect(FakeWs.all).toHaveLength(3);
    const ws = FakeWs.all[2]!;
    ws.serverOpen();
    ws.serverSend({ t: "pong", ts: 0, server_ms: 0 });
    ws.serverClose(1001);
    vi.advanceTimersByTime(300);
    expect(FakeWs.all).toHaveLength(4);
  });

  it("does not reconnect by itself after close 4001 (seat taken elsewhere)", () => {
    conn.start();
    FakeWs.all[0]!.serverOpen();
    FakeWs.all[0]!.serverClose(4001);
    expect(infos.at(-1)?.status).toBe("replaced");
    vi.advanceTimersByTime(60_000);
    expect(FakeWs.all).toHaveLength(1);
    conn.reconnectNow();
    expect(FakeWs.all).toHaveLength(2);
  });

  it("gives up on a link that stays silent and reconnects", () => {
    conn.start();
    FakeWs.all[0]!.serverOpen();
    now = 20_000;
    vi.advanceTimersByTime(5000);
    expect(FakeWs.all[0]!.closedWith).toBe(4000);
    vi.advanceTimersByTime(300);
    expect(FakeWs.all).toHaveLength(2);
  });

  it("drops invalid frames without passing them on", () => {
    conn.start();
    const ws = FakeWs.all[0]!;
    ws.serverOpen();
    ws.onmessage?.({ data: new Uint8Array([0xc1]).buffer });
    ws.onmessage?.({ data: "text" });
    ws.serverSend({ t: "error", code: "x", message: "" });
    expect(got.map((m) => m.t)).toEqual(["error"]);
  });
});
