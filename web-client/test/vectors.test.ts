// The TypeScript codec against fixed bytes written by hand from docs/protocol.md
// (protocol-vectors.json, shared with the Rust test tests/tests/protocol_vectors.rs):
// a round trip through one codec cannot catch a field both sides misname.
import { decode } from "@msgpack/msgpack";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { decodeClient, decodeServer, encodeClient, type ClientMessage } from "../src/protocol";

interface Vector {
  name: string;
  hex: string;
  message: Record<string, unknown>;
}
const vectors = JSON.parse(
  readFileSync(new URL("./protocol-vectors.json", import.meta.url), "utf8"),
) as { client: Vector[]; server: Vector[] };

const bytes = (hex: string) => Uint8Array.from(Buffer.from(hex, "hex"));

/** The message with byte arrays as plain arrays, as the vectors write them. */
function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return Array.from(value);
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

describe("protocol vectors", () => {
  it("cover every message type of docs/protocol.md", () => {
    const types = (vs: Vector[]) => new Set(vs.map((v) => v.message.t));
    expect(types(vectors.client)).toEqual(
      new Set(["create", "quick_play", "join", "resume", "start", "capture", "leave", "watch", "ping"]),
    );
    expect(types(vectors.server)).toEqual(
      new Set([
        "joined", "watching", "player_joined", "player_left", "presence", "countdown", "started",
        "captured", "rejected", "game_over", "pong", "error",
      ]),
    );
  });

  it.each(vectors.server)("decodes the server's $name", (v) => {
    expect(plain(decode(bytes(v.hex)))).toEqual(v.message); // the vector itself
    expect(plain(decodeServer(bytes(v.hex)))).toEqual(v.message);
  });

  it("keeps player_left's host (the host after the event)", () => {
    const v = vectors.server.find((v) => v.message.t === "player_left" && "host" in v.message)!;
    expect(decodeServer(bytes(v.hex))).toMatchObject({ host: v.message.host });
  });

  it.each(vectors.client)("encodes and reads the client's $name", ({ hex, message }) => {
    expect(plain(decode(bytes(hex)))).toEqual(message);
    // Key order and integer widths are free; the decoded map is not.
    expect(plain(decode(encodeClient(message as unknown as ClientMessage)))).toEqual(message);
    expect(plain(decodeClient(bytes(hex)))).toEqual(message);
  });
});
