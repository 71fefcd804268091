/**
 * One logical connection to the server that survives drops: a WebSocket on
 * `/ws` with subprotocol `gridcap.v1`, binary frames only, automatic reconnect
 * with capped exponential backoff and jitter, and an application-level
 * `ping`/`pong` for the round-trip time (browsers cannot send ping frames).
 *
 * It knows nothing about games: the controller decides what to send on open
 * (for instance a `resume`).
 */
import { decodeServer, encodeClient, SUBPROTOCOL, type ClientMessage, type ServerMessage } from "./protocol";

export type ConnStatus =
  /** First attempt, or a retry in flight. */
  | "connecting"
  | "open"
  /** Closed; the next attempt is scheduled at `retryAt`. */
  | "waiting"
  /** Closed with 4001: the seat moved to another connection; no automatic retry. */
  | "replaced";

export interface ConnInfo {
  status: ConnStatus;
  /** Last measured round trip, ms. */
  rttMs?: number;
  /** Local monotonic time of the next attempt (status "waiting"). */
  retryAt?: number;
  /** Failed attempts since the last healthy connection. */
  attempt: number;
}

export interface ConnectionHandlers {
  onOpen(): void;
  onMessage(msg: ServerMessage): void;
  onClose(code: number): void;
  onInfo(info: ConnInfo): void;
}

export interface ConnectionOptions {
  pingIntervalMs?: number;
  /** A connection that has received nothing for this long is considered dead. */
  staleAfterMs?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  now?: () => number;
  random?: () => number;
  WebSocketImpl?: typeof WebSocket;
}

/**
 * Delay before reconnect attempt number `attempt` (0-based): exponential from
 * `baseMs`, capped at `capMs`, then "equal jitter" (50–100 % of that) so a crowd
 * of clients dropped together by a restart does not come back in lockstep.
 */
export function backoffDelay(attempt: number, random: number, baseMs = 300, capMs = 10_000): number {
  const exp = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(exp / 2 + (exp / 2) * random);
}

/** What the send side needs; lets the controller be tested with a fake. */
export interface Sender {
  send(msg: ClientMessage): boolean;
  readonly isOpen: boolean;
  reconnectNow(): void;
}

export class Connection implements Sender {
  private ws: WebSocket | null = null;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  /** Local time of the last frame received, to detect a silently dead link. */
  private lastRx = 0;
  private rttMs: number | undefined;
  private status: ConnStatus = "connecting";
  private retryAt: number | undefined;
  private stopped = false;
  private readonly opts: Required<ConnectionOptions>;

  constructor(
    private readonly url: string,
    private readonly handlers: ConnectionHandlers,
    options: ConnectionOptions = {},
  ) {
    this.opts = {
      pingIntervalMs: options.pingIntervalMs ?? 5000,
      staleAfterMs: options.staleAfterMs ?? 16_000,
      baseDelayMs: options.baseDelayMs ?? 300,
      maxDelayMs: options.maxDelayMs ?? 10_000,
      now: options.now ?? (() => performance.now()),
      random: options.random ?? Math.random,
      WebSocketImpl: options.WebSocketImpl ?? WebSocket,
    };
  }

  get isOpen(): boolean {
    return this.ws !== null && this.ws.readyState === this.opts.WebSocketImpl.OPEN && this.status === "open";
  }

  start(): void {
    this.stopped = false;
    this.open();
  }

  /** Stop for good: no more reconnects (page unload, tests). */
  stop(): void {
    this.stopped = true;
    this.clearTimers();
    this.drop(1000);
  }

  send(msg: ClientMessage): boolean {
    if (!this.ws || !this.isOpen) return false;
    this.ws.send(encodeClient(msg));
    return true;
  }

  /** Drop whatever we have and connect again at once (user asked, or the browser came online). */
  reconnectNow(): void {
    if (this.stopped) return;
    this.drop();
    this.attempt = 0;
    this.open();
  }

  private open(): void {
    this.clearTimers();
    this.setStatus("connecting");
    let ws: WebSocket;
    try {
      ws = new this.opts.WebSocketImpl(this.url, [SUBPROTOCOL]);
    } catch {
      this.scheduleRetry();
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => {
      this.lastRx = this.opts.now();
      this.setStatus("open");
      this.startPinging();
      this.handlers.onOpen();
    };
    ws.onmessage = (ev: MessageEvent) => this.receive(ev.data);
    ws.onclose = (ev: CloseEvent) => this.closed(ws, ev.code);
    // onerror is always followed by onclose, which does the work.
    ws.onerror = () => {};
  }

  private receive(data: unknown): void {
    this.lastRx = this.opts.now();
    // A healthy exchange resets the backoff, not a mere open: a server that
    // accepts and immediately closes must still be retried slower and slower.
    this.attempt = 0;
    if (!(data instanceof ArrayBuffer)) {
      console.warn("gridcap: ignoring a non-binary frame");
      return;
    }
    let msg: ServerMessage | null;
    try {
      msg = decodeServer(data);
    } catch (e) {
      console.warn("gridcap: ignoring an invalid server message:", (e as Error).message);
      return;
    }
    if (msg === null) return; // a message type from a newer server
    if (msg.t === "pong") {
      this.rttMs = Math.max(0, Math.round(this.opts.now() - msg.ts));
      this.emitInfo();
    }
    this.handlers.onMessage(msg);
  }

  private closed(ws: WebSocket, code: number): void {
    if (ws !== this.ws) return; // an old socket we already gave up on
    this.ws = null;
    this.lost(code);
  }

  private lost(code: number): void {
    this.clearTimers();
    this.handlers.onClose(code);
    if (this.stopped) return;
    if (code === 4001) {
      this.setStatus("replaced");
      return;
    }
    this.scheduleRetry(code === 1013 ? 2 : 0);
  }

  private scheduleRetry(extraAttempts = 0): void {
    const delay = backoffDelay(this.attempt + extraAttempts, this.opts.random(), this.opts.baseDelayMs, this.opts.maxDelayMs);
    this.attempt++;
    this.retryAt = this.opts.now() + delay;
    this.setStatus("waiting");
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.open();
    }, delay);
  }

  private startPinging(): void {
    const ping = () => {
      if (this.opts.now() - this.lastRx > this.opts.staleAfterMs) {
        // Nothing heard for several pings: the link is dead even if the
        // browser has not noticed yet. Give up on it and reconnect.
        this.drop();
        this.lost(1006);
        return;
      }
      this.send({ t: "ping", ts: Math.round(this.opts.now()) });
    };
    ping();
    this.pingTimer = setInterval(ping, this.opts.pingIntervalMs);
  }

  /** Detach and close the current socket without running its close handling. */
  private drop(code = 4000): void {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    ws.onopen = ws.onmessage = ws.onclose = null;
    try {
      ws.close(code);
    } catch {
      // already closing
    }
  }

  private clearTimers(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.retryTimer = null;
    this.pingTimer = null;
  }

  private setStatus(status: ConnStatus): void {
    this.status = status;
    if (status !== "waiting") this.retryAt = undefined;
    this.emitInfo();
  }

  private emitInfo(): void {
    const info: ConnInfo = { status: this.status, attempt: this.attempt };
    if (this.rttMs !== undefined) info.rttMs = this.rttMs;
    if (this.retryAt !== undefined) info.retryAt = this.retryAt;
    this.handlers.onInfo(info);
  }
}
