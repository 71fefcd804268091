/** Shared builders for unit tests: a snapshot and players that match the contract, a controller on fakes. */
import { Controller, type GameUrlKind, type TokenStore } from "../src/controller";
import type { ClientMessage, Player, Snapshot } from "../src/protocol";

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

export class FakeConn {
  sent: ClientMessage[] = [];
  isOpen = true;
  reconnects = 0;
  send(msg: ClientMessage): boolean {
    if (!this.isOpen) return false;
    this.sent.push(msg);
    return true;
  }
  reconnectNow(): void {
    this.reconnects++;
  }
}

export class MemTokens implements TokenStore {
  map = new Map<string, string>();
  get(g: string) {
    return this.map.get(g) ?? null;
  }
  set(g: string, t: string) {
    this.map.set(g, t);
  }
  delete(g: string) {
    this.map.delete(g);
  }
}

/**
 * A controller on a fake connection, memory tokens and a clock moved by `tick`.
 * `urls` records what the address bar was set to, `links` the same as `/?game=…`
 * or `/?watch=…` ("/" for none).
 */
export function setup(invite: string | null = null, tokens = new MemTokens(), watch: string | null = null) {
  const conn = new FakeConn();
  let now = 0;
  const urls: Array<string | null> = [];
  const links: string[] = [];
  const onGameUrl = (g: string | null, kind: GameUrlKind = "play") => {
    urls.push(g);
    links.push(g ? `/?${kind === "watch" ? "watch" : "game"}=${g}` : "/");
  };
  const ctl = new Controller({ conn, tokens, now: () => now, onGameUrl }, invite, watch);
  return { ctl, conn, tokens, urls, links, tick: (ms: number) => (now += ms) };
}
