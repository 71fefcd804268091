/**
 * gridcap wire protocol v1, client side (see shared PROTOCOL.md).
 *
 * Every WebSocket message is one binary frame holding one MessagePack map whose
 * key `t` names the type. This module is pure: typed messages in, bytes out, and
 * bytes in, validated typed messages out. Unknown keys are ignored (forward
 * compatibility); an unknown `t` from the server decodes to `null` so newer
 * servers do not break older clients.
 */
import { decode, encode } from "@msgpack/msgpack";

/** WebSocket subprotocol the client offers. */
export const SUBPROTOCOL = "gridcap.v1";
/** Path of the WebSocket endpoint on the page's origin. */
export const WS_PATH = "/ws";
export const GRID_SIZE = 9;
export const CELL_COUNT = GRID_SIZE * GRID_SIZE;
export const MAX_PLAYERS_RANGE = { min: 2, max: 8 } as const;
export const DURATION_MS_RANGE = { min: 1000, max: 300_000 } as const;
export const NAME_MAX_CHARS = 24;
/** Short game codes (section 7): no 0/O, 1/I/L, so a code read aloud is typed right. */
export const CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";
export const CODE_LENGTH = 6;

export type GameId = string;
/** A game id or a short code: what `join`, `resume` and `/api/games/{ref}` accept. */
export type GameRef = string;
export type PlayerId = number;
export type GameStatus = "waiting" | "active" | "completed";
export type GameOverReason = "time" | "board_full";
export type RejectReason = "taken" | "not_active" | "out_of_range";

export interface Player {
  id: PlayerId;
  name: string;
  /** 0..=7, equal to id; kept because the protocol carries it. */
  color: number;
  score: number;
  connected: boolean;
}

export interface Snapshot {
  id: GameId;
  status: GameStatus;
  seq: number;
  host: PlayerId;
  max_players: number;
  duration_ms: number;
  players: Player[];
  /** 81 bytes: 0 free, k+1 owned by player k. */
  cells: Uint8Array;
  remaining_ms?: number;
  ends_at_ms?: number;
  winners?: PlayerId[];
  /** Section 7; absent from servers that predate it. */
  code?: string;
  public?: boolean;
  /** Connections watching the game (section 7, "Spectators"); a `watching` snapshot counts the new spectator. */
  spectators?: number;
  /** Waiting only, while the lobby auto-start is scheduled. */
  starts_in_ms?: number;
  starts_at_ms?: number;
}

// ---- client -> server -------------------------------------------------------

export type ClientMessage =
  | { t: "create"; name: string; max_players?: number; duration_ms?: number; public?: boolean }
  | { t: "join"; game: GameRef; name: string }
  | { t: "quick_play"; name: string; max_players?: number }
  | { t: "resume"; game: GameRef; token: string }
  | { t: "start" }
  | { t: "capture"; cell: number; ref?: number }
  | { t: "leave" }
  | { t: "ping"; ts: number }
  /** Watch a game without a seat (section 7); sent again to resync after a seq gap. */
  | { t: "watch"; game: GameRef };

// ---- server -> client -------------------------------------------------------

export interface JoinedMsg { t: "joined"; game: Snapshot; you: PlayerId; token: string }
/** The answer to `watch`: the game as it is now; its broadcast events follow. */
export interface WatchingMsg { t: "watching"; game: Snapshot }
export interface PlayerJoinedMsg { t: "player_joined"; seq: number; player: Player }
/** `host`: the host after this event (the server's addition; absent from older servers). */
export interface PlayerLeftMsg { t: "player_left"; seq: number; player: PlayerId; host?: PlayerId }
export interface PresenceMsg { t: "presence"; seq: number; player: PlayerId; connected: boolean }
export interface StartedMsg { t: "started"; seq: number; ends_at_ms: number; remaining_ms: number }
export interface CapturedMsg { t: "captured"; seq: number; cell: number; player: PlayerId; score: number }
export interface GameOverMsg {
  t: "game_over";
  seq: number;
  reason: GameOverReason;
  scores: number[];
  winners: PlayerId[];
}
/** The lobby auto-start was scheduled (numbers) or cancelled (nulls). */
export interface CountdownMsg { t: "countdown"; seq: number; starts_in_ms: number | null; starts_at_ms: number | null }
/**
 * A server message of a type this client does not know that carries a `seq`: it is
 * ignored, but its seq is counted so the gap rule stays right (section 7).
 */
export interface UnknownEventMsg { t: "unknown_event"; type: string; seq: number }
export interface RejectedMsg { t: "rejected"; cell: number; ref?: number; reason: RejectReason }
export interface PongMsg { t: "pong"; ts: number; server_ms: number }
export interface ErrorMsg { t: "error"; code: string; message: string }

/** Broadcast game events: each carries the game's `seq`. */
export type GameEvent =
  | PlayerJoinedMsg
  | PlayerLeftMsg
  | PresenceMsg
  | StartedMsg
  | CapturedMsg
  | GameOverMsg
  | CountdownMsg
  | UnknownEventMsg;

export type ServerMessage = JoinedMsg | WatchingMsg | GameEvent | RejectedMsg | PongMsg | ErrorMsg;

const EVENT_TYPES: ReadonlySet<string> = new Set([
  "player_joined",
  "player_left",
  "presence",
  "started",
  "captured",
  "game_over",
  "countdown",
  "unknown_event",
]);

export function isGameEvent(msg: ServerMessage): msg is GameEvent {
  return EVENT_TYPES.has(msg.t);
}

/** A server frame that is not what the contract says. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

// ---- encoding ---------------------------------------------------------------

/** Encode one client message; undefined optional fields are left out of the map. */
export function encodeClient(msg: ClientMessage): Uint8Array {
  return encode(msg, { ignoreUndefined: true });
}

/** Decode a client message (used by tests and tooling, not by the browser app). */
export function decodeClient(bytes: Uint8Array | ArrayBuffer): Record<string, unknown> {
  const value = decode(bytes);
  if (!isRecord(value)) throw new ProtocolError("not a map");
  return value;
}

/** Encode a server message: the inverse of `decodeServer`, for tests and fakes. */
export function encodeServer(msg: ServerMessage): Uint8Array {
  return encode(msg, { ignoreUndefined: true });
}

// ---- decoding and validation ------------------------------------------------

type Rec = Record<string, unknown>;

function isRecord(v: unknown): v is Rec {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function field(obj: Rec, key: string, ctx: string): unknown {
  if (!(key in obj)) throw new ProtocolError(`${ctx}: missing ${key}`);
  return obj[key];
}

function asInt(v: unknown, ctx: string): number {
  if (typeof v === "bigint") {
    if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ProtocolError(`${ctx} out of range`);
    return Number(v);
  }
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
    throw new ProtocolError(`${ctx} is not a non-negative integer`);
  }
  return v;
}

function int(obj: Rec, key: string, ctx: string): number {
  return asInt(field(obj, key, ctx), `${ctx}: ${key}`);
}

function optInt(obj: Rec, key: string, ctx: string): number | undefined {
  return obj[key] === undefined || obj[key] === null ? undefined : int(obj, key, ctx);
}

function num(obj: Rec, key: string, ctx: string): number {
  const v = field(obj, key, ctx);
  if (typeof v === "bigint") return Number(v);
  if (typeof v !== "number") throw new ProtocolError(`${ctx}: ${key} is not a number`);
  return v;
}

function str(obj: Rec, key: string, ctx: string): string {
  const v = field(obj, key, ctx);
  if (typeof v !== "string") throw new ProtocolError(`${ctx}: ${key} is not a string`);
  return v;
}

function bool(obj: Rec, key: string, ctx: string): boolean {
  const v = field(obj, key, ctx);
  if (typeof v !== "boolean") throw new ProtocolError(`${ctx}: ${key} is not a bool`);
  return v;
}

function intArray(obj: Rec, key: string, ctx: string): number[] {
  const v = field(obj, key, ctx);
  if (!Array.isArray(v)) throw new ProtocolError(`${ctx}: ${key} is not an array`);
  return v.map((x: unknown, i) => asInt(x, `${ctx}: ${key}[${i}]`));
}

function oneOf<T extends string>(obj: Rec, key: string, allowed: readonly T[], ctx: string): T {
  const v = str(obj, key, ctx);
  if (!(allowed as readonly string[]).includes(v)) throw new ProtocolError(`${ctx}: bad ${key} ${v}`);
  return v as T;
}

function cellIndex(obj: Rec, key: string, ctx: string): number {
  const v = int(obj, key, ctx);
  if (v >= CELL_COUNT) throw new ProtocolError(`${ctx}: ${key} ${v} out of the grid`);
  return v;
}

export function parsePlayer(v: unknown): Player {
  if (!isRecord(v)) throw new ProtocolError("player: not a map");
  return {
    id: int(v, "id", "player"),
    name: str(v, "name", "player"),
    color: int(v, "color", "player"),
    score: int(v, "score", "player"),
    connected: bool(v, "connected", "player"),
  };
}

function parseCells(v: unknown): Uint8Array {
  // The contract says bin; copy so the array does not alias the frame buffer.
  if (v instanceof Uint8Array) {
    if (v.length !== CELL_COUNT) throw new ProtocolError(`snapshot: cells has ${v.length} bytes`);
    return new Uint8Array(v);
  }
  throw new ProtocolError("snapshot: cells is not binary");
}

export function parseSnapshot(v: unknown): Snapshot {
  const ctx = "snapshot";
  if (!isRecord(v)) throw new ProtocolError("snapshot: not a map");
  const players = field(v, "players", ctx);
  if (!Array.isArray(players)) throw new ProtocolError("snapshot: players is not an array");
  const snap: Snapshot = {
    id: str(v, "id", ctx),
    status: oneOf(v, "status", ["waiting", "active", "completed"] as const, ctx),
    seq: int(v, "seq", ctx),
    host: int(v, "host", ctx),
    max_players: int(v, "max_players", ctx),
    duration_ms: int(v, "duration_ms", ctx),
    players: players.map(parsePlayer),
    cells: parseCells(field(v, "cells", ctx)),
  };
  if (typeof v.code === "string") snap.code = v.code;
  if (typeof v.public === "boolean") snap.public = v.public;
  const spectators = optInt(v, "spectators", ctx);
  if (spectators !== undefined) snap.spectators = spectators;
  const startsIn = optInt(v, "starts_in_ms", ctx);
  if (startsIn !== undefined) snap.starts_in_ms = startsIn;
  const startsAt = optInt(v, "starts_at_ms", ctx);
  if (startsAt !== undefined) snap.starts_at_ms = startsAt;
  const remaining = optInt(v, "remaining_ms", ctx);
  if (remaining !== undefined) snap.remaining_ms = remaining;
  const endsAt = optInt(v, "ends_at_ms", ctx);
  if (endsAt !== undefined) snap.ends_at_ms = endsAt;
  if (v.winners !== undefined && v.winners !== null) snap.winners = intArray(v, "winners", ctx);
  return snap;
}

/**
 * Validate one decoded server value. A type this client does not know becomes an
 * `unknown_event` when it carries a seq (so the seq is counted), null otherwise.
 */
export function parseServer(value: unknown): ServerMessage | null {
  if (!isRecord(value)) throw new ProtocolError("message is not a map");
  const t = value.t;
  if (typeof t !== "string") throw new ProtocolError("message has no string t");
  const m = value;
  switch (t) {
    case "joined":
      return { t, game: parseSnapshot(field(m, "game", t)), you: int(m, "you", t), token: str(m, "token", t) };
    case "watching":
      return { t, game: parseSnapshot(field(m, "game", t)) };
    case "player_joined":
      return { t, seq: int(m, "seq", t), player: parsePlayer(field(m, "player", t)) };
    case "player_left": {
      const left: PlayerLeftMsg = { t, seq: int(m, "seq", t), player: int(m, "player", t) };
      const host = optInt(m, "host", t);
      return host === undefined ? left : { ...left, host };
    }
    case "presence":
      return { t, seq: int(m, "seq", t), player: int(m, "player", t), connected: bool(m, "connected", t) };
    case "started":
      return { t, seq: int(m, "seq", t), ends_at_ms: int(m, "ends_at_ms", t), remaining_ms: int(m, "remaining_ms", t) };
    case "captured":
      return {
        t,
        seq: int(m, "seq", t),
        cell: cellIndex(m, "cell", t),
        player: int(m, "player", t),
        score: int(m, "score", t),
      };
    case "game_over":
      return {
        t,
        seq: int(m, "seq", t),
        reason: oneOf(m, "reason", ["time", "board_full"] as const, t),
        scores: intArray(m, "scores", t),
        winners: intArray(m, "winners", t),
      };
    case "countdown":
      return {
        t,
        seq: int(m, "seq", t),
        starts_in_ms: optInt(m, "starts_in_ms", t) ?? null,
        starts_at_ms: optInt(m, "starts_at_ms", t) ?? null,
      };
    case "rejected": {
      const msg: RejectedMsg = {
        t,
        cell: int(m, "cell", t),
        reason: oneOf(m, "reason", ["taken", "not_active", "out_of_range"] as const, t),
      };
      const ref = optInt(m, "ref", t);
      if (ref !== undefined) msg.ref = ref;
      return msg;
    }
    case "pong":
      return { t, ts: num(m, "ts", t), server_ms: int(m, "server_ms", t) };
    case "error":
      return { t, code: str(m, "code", t), message: typeof m.message === "string" ? m.message : "" };
    default: {
      const seq = optInt(m, "seq", t);
      return seq === undefined ? null : { t: "unknown_event", type: t, seq };
    }
  }
}

/** Decode one binary frame from the server. Throws ProtocolError when it breaks the contract. */
export function decodeServer(data: ArrayBuffer | Uint8Array): ServerMessage | null {
  let value: unknown;
  try {
    value = decode(data);
  } catch (e) {
    throw new ProtocolError(`not MessagePack: ${(e as Error).message}`);
  }
  return parseServer(value);
}

/** The URL of the WebSocket endpoint for a page at `loc` (ws: for http:, wss: for https:). */
export function wsUrl(loc: { protocol: string; host: string }): string {
  const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${loc.host}${WS_PATH}`;
}

/** A character that draws something: a letter, number, punctuation or symbol, not a default-ignorable one. */
const VISIBLE_RE = /(?!\p{Default_Ignorable_Code_Point})[\p{L}\p{N}\p{P}\p{S}]/u;
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]|\p{Bidi_Control}/u;

/**
 * `name`, as the server checks it: NFC, 1 to 24 characters after trimming, at least one
 * visible, no control characters (nor bidirectional controls such as U+202E).
 */
export function validateName(raw: string): { ok: true; name: string } | { ok: false; reason: string } {
  const name = raw.normalize("NFC").trim();
  const chars = [...name];
  if (chars.length === 0) return { ok: false, reason: "Please enter a name." };
  if (chars.length > NAME_MAX_CHARS) return { ok: false, reason: `Names are at most ${NAME_MAX_CHARS} characters.` };
  if (CONTROL_RE.test(name)) return { ok: false, reason: "Names cannot contain control characters." };
  if (!VISIBLE_RE.test(name)) return { ok: false, reason: "Names need at least one visible character." };
  return { ok: true, name };
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A game id in canonical lowercase UUID form, or null. */
export function parseGameId(raw: string | null | undefined): GameId | null {
  if (!raw) return null;
  const id = raw.trim().toLowerCase();
  return UUID_RE.test(id) ? id : null;
}

const CODE_RE = new RegExp(`^[${CODE_ALPHABET}]{${CODE_LENGTH}}$`);

/**
 * A short code as typed by a person: case-insensitive, spaces and dashes ignored
 * ("k7q-x2m" is K7QX2M). Null when it is not 6 characters of the alphabet.
 */
export function parseGameCode(raw: string | null | undefined): string | null {
  if (!raw) return null;
  const code = raw.replace(/[\s-]/g, "").toUpperCase();
  return CODE_RE.test(code) ? code : null;
}

/**
 * What a share link or the code box points at: a UUID, a code, or a whole pasted
 * link holding either in `?game=` (or `?watch=`, a watch link). Null when it is none of them.
 */
export function parseGameRef(raw: string | null | undefined): GameRef | null {
  if (!raw) return null;
  const text = raw.trim();
  const inLink = /[?&](?:game|watch)=([^&#\s]+)/.exec(text);
  const value = inLink ? inLink[1]! : text;
  return parseGameId(value) ?? parseGameCode(value);
}
