/**
 * The game screen: a status line (status, countdown, who you are), the board,
 * and a side column that holds the lobby, the scoreboard and the game-over
 * panel depending on the game's status. For a spectator it is the watch view
 * (`data-mode="watch"`): the same board, read-only, the watch panel instead of
 * the waiting room, and "Stop watching" instead of "Leave".
 */
import type { Controller, View } from "../controller";
import { isSpectator, remainingMs, type GameState } from "../state";
import { Board } from "./board";
import { h, setAttr, setText, show } from "./dom";
import { GameOver } from "./gameover";
import { Lobby } from "./lobby";
import { badge, playerName } from "./players";
import { Scoreboard } from "./scoreboard";
import { WatchPanel } from "./watchPanel";

const STATUS_TEXT: Record<GameState["status"], string> = {
  waiting: "waiting for players",
  active: "active",
  completed: "completed",
};

/** "0:27" for the countdown; rounds up so 0:00 means the time is really out. */
export function formatClock(ms: number): string {
  const s = Math.ceil(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

export class GameScreen {
  readonly el: HTMLElement;
  private readonly status: HTMLElement;
  private readonly timer: HTMLElement;
  private readonly bar: HTMLElement;
  private readonly you: HTMLElement;
  private readonly leaveBtn: HTMLButtonElement;
  private readonly board: Board;
  private readonly lobby: Lobby;
  private readonly scoreboard = new Scoreboard();
  private readonly gameOver: GameOver;
  private readonly watchPanel: WatchPanel;
  private game: GameState | null = null;

  constructor(ctl: Controller, origin: string, private readonly now: () => number) {
    this.board = new Board(ctl);
    this.lobby = new Lobby(ctl, origin, now);
    this.gameOver = new GameOver(ctl);
    this.watchPanel = new WatchPanel(origin);
    this.status = h("span", { class: "status", "data-testid": "status", role: "status" });
    this.timer = h("span", { class: "timer", "data-testid": "timer" });
    this.bar = h("span", { class: "timebar-fill" });
    this.you = h("span", { class: "you" });
    this.leaveBtn = h("button", {
      type: "button",
      class: "link",
      onclick: () => {
        const g = this.game;
        if (!g || g.status !== "active" || isSpectator(g) || confirm("Leave this game? Your cells stay on the board.")) ctl.leave();
      },
    }, "Leave");
    const head = h(
      "div",
      { class: "game-head" },
      this.status,
      // The label is text, not aria-label: a plain span may not carry one, and the timer holds only the clock.
      h("span", { class: "clock" }, h("span", { class: "clock-icon", "aria-hidden": "true" }), h("span", { class: "sr-only" }, "Time left"), this.timer),
      this.you,
      this.leaveBtn,
    );
    const timebar = h("div", { class: "timebar", "aria-hidden": "true" }, this.bar);
    this.el = h(
      "section",
      { class: "screen game-screen" },
      head,
      timebar,
      h(
        "div",
        { class: "game-body" },
        h("div", { class: "board-wrap" }, this.board.el),
        h("div", { class: "side" }, this.gameOver.el, this.lobby.el, this.watchPanel.el, this.scoreboard.el),
      ),
    );
  }

  update(v: View): void {
    const g = v.game;
    this.game = g;
    if (!g) return;
    setText(this.status, STATUS_TEXT[g.status]);
    setAttr(this.status, "data-status", g.status);
    setAttr(this.el, "data-status", g.status);
    const watching = isSpectator(g);
    setAttr(this.el, "data-mode", watching ? "watch" : "play");
    if (g.you === null) this.you.replaceChildren(h("span", { class: "eye", "aria-hidden": "true" }), h("span", {}, "Watching"));
    else this.you.replaceChildren(badge(g.you), h("span", {}, `You: ${playerName(g, g.you)}`));
    setText(this.leaveBtn, watching ? "Stop watching" : "Leave");
    show(this.lobby.el, g.status === "waiting" && !watching);
    show(this.watchPanel.el, watching);
    show(this.gameOver.el, g.status === "completed");
    this.board.update(v);
    this.lobby.update(v);
    this.scoreboard.update(v);
    this.gameOver.update(v);
    if (watching) this.watchPanel.update(v);
    this.tick();
  }

  /** Redraw the countdown from the deadline; called often while a round runs. */
  tick(): void {
    const g = this.game;
    if (!g) return;
    if (g.status === "waiting") this.lobby.tick();
    let ms: number;
    if (g.status === "waiting") ms = g.durationMs;
    else ms = remainingMs(g, this.now()) ?? 0;
    setText(this.timer, formatClock(ms));
    const fraction = g.durationMs > 0 ? Math.min(1, ms / g.durationMs) : 0;
    this.bar.style.transform = `scaleX(${fraction})`;
    this.el.classList.toggle("hurry", g.status === "active" && ms <= 5000);
  }
}
