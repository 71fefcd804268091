/**
 * The waiting room: the game's code and share link with a copy button, whether
 * the game is listed in the public lobby, the countdown of the lobby auto-start,
 * and for the host the Start button, disabled with a visible reason until
 * enough players are connected. Everyone else sees who they are waiting for.
 */
import type { Controller, View } from "../controller";
import { gameRef, startBlocker, startsInMs, type GameState } from "../state";
import { h, setText, show } from "./dom";
import { formatClock } from "./game";
import { playerName } from "./players";
import { ShareLinkBox } from "./shareLink";

/** The link to share: with the game's code when the server gives one, else its id. */
export function shareLink(origin: string, game: string): string {
  return `${origin}/?game=${game}`;
}

/** The countdown line, or null when no auto-start is scheduled. */
export function countdownText(g: GameState, now: number): string | null {
  const ms = startsInMs(g, now);
  return ms === null ? null : `Starting in ${formatClock(ms)}`;
}

export class Lobby {
  readonly el: HTMLElement;
  private readonly link = new ShareLinkBox({ field: "share-link", copy: "copy-link", label: "Share link" });
  private readonly startBtn: HTMLButtonElement;
  private readonly reason: HTMLElement;
  private readonly waitText: HTMLElement;
  private readonly autoText: HTMLElement;
  private readonly code: HTMLElement;
  private readonly visibility: HTMLElement;
  private readonly countdown: HTMLElement;
  private game: GameState | null = null;

  constructor(
    private readonly ctl: Controller,
    private readonly origin: string,
    private readonly now: () => number,
  ) {
    this.code = h("strong", { class: "game-code big-code", "data-testid": "game-code" });
    this.visibility = h("p", { class: "hint small", "data-testid": "visibility" });
    this.countdown = h("p", { class: "countdown", "data-testid": "countdown", hidden: true });
    this.startBtn = h("button", {
      type: "button",
      class: "primary big",
      "data-testid": "start",
      "aria-describedby": "start-reason",
      onclick: () => this.ctl.start(),
    }, "Start game");
    this.reason = h("p", { class: "hint", id: "start-reason", "data-testid": "start-reason" });
    this.waitText = h("p", { class: "hint" });
    this.autoText = h("p", { class: "hint small" });
    this.el = h(
      "section",
      { class: "card lobby", "aria-label": "Lobby" },
      h("h3", {}, "Invite players"),
      h("p", { class: "code-line" }, "Game code ", this.code),
      this.visibility,
      h("p", { class: "hint" }, "Send this link to your friends:"),
      this.link.el,
      this.countdown,
      this.startBtn,
      this.reason,
      this.waitText,
      this.autoText,
    );
  }

  update(v: View): void {
    const g = v.game;
    this.game = g;
    if (!g) return;
    setText(this.code, g.code ?? "");
    show(this.code.parentElement!, g.code !== undefined);
    setText(
      this.visibility,
      g.public ? "Public: listed in the open games, anyone can join." : "Private: only people with the code or the link can join.",
    );
    this.link.set(shareLink(this.origin, gameRef(g)));
    const host = g.host === g.you;
    show(this.startBtn, host);
    const blocker = host ? startBlocker(g) : null;
    this.startBtn.disabled = blocker !== null || v.conn.status !== "open";
    setText(this.reason, host ? (v.conn.status !== "open" ? "Reconnecting…" : (blocker ?? "Everyone here? Start when ready.")) : "");
    show(this.reason, host);
    setText(this.waitText, host ? "" : `Waiting for ${playerName(g, g.host)} (host) to start the game…`);
    show(this.waitText, !host);
    setText(
      this.autoText,
      g.public
        ? `The round starts by itself shortly after a second player arrives, or once all ${g.maxPlayers} seats are taken.`
        : `The round starts by itself once all ${g.maxPlayers} seats are taken.`,
    );
    this.tick();
  }

  /** Redraw the auto-start countdown; called often while the game waits. */
  tick(): void {
    const text = this.game ? countdownText(this.game, this.now()) : null;
    show(this.countdown, text !== null);
    if (text !== null) setText(this.countdown, text);
  }
}
