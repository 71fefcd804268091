/**
 * The public lobby on the home screen: open games (join with one click) and
 * running games (players, scores, time left, spectators; watch with one click).
 * Rows are keyed by game id and updated in place, so a poll every two seconds
 * never steals keyboard focus from a Join or Watch button. Times count down locally between polls.
 */
import type { LobbyList, OpenGame, RunningGame } from "../lobbyApi";
import { watchingText } from "../state";
import { h, setAttr, setText, show } from "./dom";
import { formatClock } from "./game";
import { joinNames } from "./players";

interface Row<T> {
  el: HTMLLIElement;
  update(entry: T, elapsedMs: number): void;
}

/** A list whose rows are created once per key and then only updated. */
class KeyedList<T extends { id: string }> {
  private readonly rows = new Map<string, Row<T>>();
  private entries: T[] = [];

  constructor(
    readonly el: HTMLUListElement,
    private readonly make: (entry: T) => Row<T>,
  ) {}

  get size(): number {
    return this.entries.length;
  }

  set(entries: T[], elapsedMs: number): void {
    this.entries = entries;
    const keep = new Set(entries.map((e) => e.id));
    for (const [id, row] of this.rows) {
      if (!keep.has(id)) {
        row.el.remove();
        this.rows.delete(id);
      }
    }
    entries.forEach((entry, i) => {
      let row = this.rows.get(entry.id);
      if (!row) {
        row = this.make(entry);
        this.rows.set(entry.id, row);
      }
      // Move only when out of place: moving a node drops its keyboard focus.
      const at = this.el.children[i];
      if (at !== row.el) this.el.insertBefore(row.el, at ?? null);
      row.update(entry, elapsedMs);
    });
  }

  tick(elapsedMs: number): void {
    for (const entry of this.entries) this.rows.get(entry.id)?.update(entry, elapsedMs);
  }
}

/** One game's row: its code, two lines about it (filled in by the caller), and an action. */
function gameRow(g: { id: string; code: string }, action: HTMLElement) {
  const first = h("span", { class: "game-players" });
  const second = h("span", { class: "game-meta" });
  const el = h(
    "li",
    { class: "game-row", "data-game": g.id },
    h("span", { class: "game-code" }, g.code),
    h("span", { class: "game-info" }, first, second),
    action,
  );
  return { el, first, second };
}

export function seconds(ms: number): string {
  return `${Math.max(0, Math.ceil(ms / 1000))} s`;
}

export class PublicGames {
  readonly el: HTMLElement;
  private readonly open: KeyedList<OpenGame>;
  private readonly running: KeyedList<RunningGame>;
  private readonly openEmpty: HTMLElement;
  private readonly runningEmpty: HTMLElement;
  private readonly openCount: HTMLElement;
  private readonly runningCount: HTMLElement;
  private readonly unavailable: HTMLElement;
  /** Local time of the last answer: the times in it count down from there. */
  private loadedAt = 0;
  private busy = false;

  constructor(
    /** Join that game (by id); the home screen checks the name first. */
    private readonly onJoin: (game: OpenGame) => void,
    /** Open the watch view of that running game. */
    private readonly onWatch: (game: RunningGame) => void,
    private readonly now: () => number,
  ) {
    this.open = new KeyedList(h("ul", { class: "games", "data-testid": "open-games" }), (g) => this.openRow(g));
    this.running = new KeyedList(h("ul", { class: "games", "data-testid": "running-games" }), (g) => this.runningRow(g));
    this.openEmpty = h("p", { class: "hint" }, "No open games right now. Press Quick play and others will find yours here.");
    this.runningEmpty = h("p", { class: "hint" }, "No public game is being played right now.");
    this.openCount = h("span", { class: "seats" });
    this.runningCount = h("span", { class: "seats" });
    this.unavailable = h("p", { class: "hint", hidden: true }, "The list of public games is not available right now.");
    this.el = h(
      "div",
      { class: "public-games" },
      h(
        "section",
        { class: "card", "aria-labelledby": "open-games-title" },
        h("div", { class: "card-head" }, h("h2", { id: "open-games-title" }, "Open games"), this.openCount),
        this.unavailable,
        this.openEmpty,
        this.open.el,
      ),
      h(
        "section",
        { class: "card", "aria-labelledby": "running-games-title" },
        h("div", { class: "card-head" }, h("h2", { id: "running-games-title" }, "Running games"), this.runningCount),
        this.runningEmpty,
        this.running.el,
      ),
    );
  }

  /** A fresh answer from the poller; null keeps the last lists and says the lobby is unavailable. */
  set(lobby: LobbyList | null): void {
    show(this.unavailable, lobby === null);
    if (!lobby) return;
    this.loadedAt = this.now();
    this.open.set(lobby.waiting, 0);
    this.running.set(lobby.active, 0);
    show(this.openEmpty, lobby.waiting.length === 0);
    show(this.runningEmpty, lobby.active.length === 0);
    setText(this.openCount, lobby.waiting.length ? String(lobby.waiting.length) : "");
    setText(this.runningCount, lobby.active.length ? String(lobby.active.length) : "");
  }

  /** While a create/join/quick play/watch is on its way, the Join and Watch buttons wait. */
  setBusy(busy: boolean): void {
    if (this.busy === busy) return;
    this.busy = busy;
    for (const list of [this.open.el, this.running.el]) {
      for (const btn of list.querySelectorAll("button")) btn.disabled = busy;
    }
  }

  tick(): void {
    const elapsed = this.now() - this.loadedAt;
    this.open.tick(elapsed);
    this.running.tick(elapsed);
  }

  private openRow(first: OpenGame): Row<OpenGame> {
    return this.actionRow(first, { label: "Join", class: "primary", testid: "join-open", act: this.onJoin }, (g, elapsed, players, meta) => {
      setText(players, joinNames(g.players));
      const parts = [`${g.players.length} of ${g.maxPlayers} seats`, `${seconds(g.durationMs)} round`];
      if (g.startsInMs !== undefined) parts.push(`starts in ${seconds(g.startsInMs - elapsed)}`);
      setText(meta, parts.join(" · "));
    });
  }

  private runningRow(first: RunningGame): Row<RunningGame> {
    return this.actionRow(first, { label: "Watch", class: "secondary", testid: "watch-running", act: this.onWatch }, (g, elapsed, scores, meta) => {
      setText(scores, g.players.map((name, i) => `${name} ${g.scores[i] ?? 0}`).join(" · "));
      setText(meta, `${formatClock(Math.max(0, g.remainingMs - elapsed))} left · ${watchingText(g)}`);
    });
  }

  /** A game's row with one button (`data-code` = the game's code) that acts on the row's latest entry. */
  private actionRow<T extends { id: string; code: string; players: string[] }>(
    first: T,
    action: { label: string; class: string; testid: string; act: (game: T) => void },
    fill: (game: T, elapsedMs: number, firstLine: HTMLElement, secondLine: HTMLElement) => void,
  ): Row<T> {
    const btn = h("button", { type: "button", class: action.class, "data-testid": action.testid, "data-code": first.code }, action.label);
    let current = first;
    btn.addEventListener("click", () => action.act(current));
    btn.disabled = this.busy;
    const { el, first: firstLine, second: secondLine } = gameRow(first, btn);
    return {
      el,
      update: (g, elapsed) => {
        current = g;
        fill(g, elapsed, firstLine, secondLine);
        setAttr(btn, "aria-label", `${action.label} ${joinNames(g.players)} in game ${g.code}`);
      },
    };
  }
}
