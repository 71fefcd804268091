/**
 * The end of the round: why it ended, who won (all tied leaders), and a
 * "play again" that creates a new game on the same connection.
 */
import type { Controller, View } from "../controller";
import { h, setText } from "./dom";
import { joinNames, playerName } from "./players";

export class GameOver {
  readonly el: HTMLElement;
  private readonly heading: HTMLElement;
  private readonly winners: HTMLElement;
  private readonly reason: HTMLElement;
  private readonly againBtn: HTMLButtonElement;

  constructor(private readonly ctl: Controller) {
    this.heading = h("h3", {}, "Game over");
    this.winners = h("p", { class: "winners", "data-testid": "winners", role: "status" });
    this.reason = h("p", { class: "hint" });
    this.againBtn = h("button", { type: "button", class: "primary big", "data-testid": "play-again", onclick: () => this.ctl.playAgain() }, "Play again");
    this.el = h(
      "section",
      { class: "card gameover", "aria-label": "Game over" },
      this.heading,
      this.winners,
      this.reason,
      this.againBtn,
      h("button", { type: "button", class: "link", onclick: () => this.ctl.leave() }, "Back to start"),
    );
  }

  update(v: View): void {
    const g = v.game;
    if (!g || g.status !== "completed") return;
    const winners = g.winners ?? [];
    const names = winners.map((id) => (id === g.you ? `${playerName(g, id)} (you)` : playerName(g, id)));
    const youWon = winners.includes(g.you);
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
