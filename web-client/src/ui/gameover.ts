/**
 * The end of the round: why it ended, who won (all tied leaders), and a
 * "play again" that creates a new game on the same connection. A spectator
 * gets the same result without "(you)", and the way back to the lobby, where
 * quick play or an open game seats them in the next round.
 */
import type { Controller, View } from "../controller";
import { h, setText, show } from "./dom";
import { joinNames, playerName } from "./players";

export class GameOver {
  readonly el: HTMLElement;
  private readonly heading: HTMLElement;
  private readonly winners: HTMLElement;
  private readonly reason: HTMLElement;
  private readonly againBtn: HTMLButtonElement;
  private readonly backBtn: HTMLButtonElement;
  private readonly playHint: HTMLElement;

  constructor(private readonly ctl: Controller) {
    this.heading = h("h3", {}, "Game over");
    this.winners = h("p", { class: "winners", "data-testid": "winners", role: "status" });
    this.reason = h("p", { class: "hint" });
    this.againBtn = h("button", { type: "button", class: "primary big", "data-testid": "play-again", onclick: () => this.ctl.playAgain() }, "Play again");
    this.backBtn = h("button", { type: "button", class: "link", "data-testid": "back-to-lobby", onclick: () => this.ctl.leave() }, "Back to start");
    this.playHint = h("p", { class: "hint", hidden: true }, "Want to play? Quick play in the lobby seats you in the next game.");
    this.el = h(
      "section",
      { class: "card gameover", "aria-label": "Game over" },
      this.heading,
      this.winners,
      this.reason,
      this.playHint,
      this.againBtn,
      this.backBtn,
    );
  }

  update(v: View): void {
    const g = v.game;
    if (!g || g.status !== "completed") return;
    const winners = g.winners ?? [];
    const names = winners.map((id) => (id === g.you ? `${playerName(g, id)} (you)` : playerName(g, id)));
    const youWon = g.you !== null && winners.includes(g.you);
    const watching = g.you === null;
    show(this.againBtn, !watching);
    show(this.playHint, watching);
    this.backBtn.className = watching ? "primary big" : "link";
    setText(this.backBtn, watching ? "Back to the lobby" : "Back to start");
    setText(this.heading, youWon ? (winners.length > 1 ? "It's a tie — you share the win!" : "You win!") : "Game over");
    setText(
      this.winners,
      winners.length === 0 ? "No winner: nobody captured a cell." : `${winners.length > 1 ? "Winners" : "Winner"}: ${joinNames(names)}`,
    );
    setText(this.reason, g.reason === "board_full" ? "Every cell was captured." : g.reason === "time" ? "Time's up." : "");
    this.againBtn.disabled = v.busy !== null;
    setText(this.againBtn, v.busy === "create" ? "Creating…" : "Play again");
  }
}
