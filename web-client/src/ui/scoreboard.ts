/**
 * Players and their live scores. In the lobby it is the player list (names,
 * colours, who is host, who is connected); during and after the round it is
 * the ranking. `[data-testid=score-K]` holds only player K's score number.
 */
import type { View } from "../controller";
import { ranking, type GameState, type PlayerView } from "../state";
import { badge } from "./players";
import { h, setText } from "./dom";

export class Scoreboard {
  readonly el: HTMLElement;
  private readonly title: HTMLElement;
  private readonly list: HTMLOListElement;
  private readonly seats: HTMLElement;

  constructor() {
    this.title = h("h3", {}, "Players");
    this.seats = h("span", { class: "seats" });
    this.list = h("ol", { class: "scores", "aria-live": "off" });
    this.el = h("section", { class: "card scoreboard", "aria-label": "Scoreboard" }, h("div", { class: "card-head" }, this.title, this.seats), this.list);
  }

  update(v: View): void {
    const g = v.game;
    if (!g) return;
    setText(this.title, g.status === "waiting" ? "Players" : "Scores");
    setText(this.seats, g.status === "waiting" ? `${g.players.length} / ${g.maxPlayers} seats` : "");
    // Our own seat is only as online as our connection, whatever the last snapshot said.
    const selfOnline = v.conn.status === "open";
    const rows = (g.status === "waiting" ? g.players : ranking(g)).map((p) => this.row(g, p, selfOnline));
    this.list.replaceChildren(...rows);
  }

  private row(g: GameState, p: PlayerView, selfOnline: boolean): HTMLLIElement {
    const tags: string[] = [];
    if (p.id === g.you) tags.push("you");
    if (p.id === g.host) tags.push("host");
    const connected = p.id === g.you ? p.connected && selfOnline : p.connected;
    const state = p.left ? "left" : connected ? "online" : "offline";
    const leading = g.status !== "waiting" && (g.winners ?? []).includes(p.id);
    return h(
      "li",
      { class: `score-row${p.id === g.you ? " me" : ""}${leading ? " winner" : ""}`, "data-player-row": p.id },
      badge(p.id),
      h(
        "span",
        { class: "who" },
        h("span", { class: "pname" }, p.name),
        ...tags.map((t) => h("span", { class: `tag tag-${t}` }, t)),
      ),
      // An image role: a bare span may not carry a label (axe aria-prohibited-attr).
      h("span", { class: `presence ${state}`, role: "img", title: state, "aria-label": state }),
      h("span", { class: "sr-only" }, "score"),
      h("span", { class: "score", "data-testid": `score-${p.id}` }, String(p.score)),
    );
  }
}
