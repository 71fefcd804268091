/**
 * The spectator's side card in the watch view: that this is watching (no seat,
 * no captures), how many watch ("N watching", from the `watching` snapshot, then
 * refreshed over HTTP by the app while the view shows), and the watch link to
 * pass on, which opens this view for whoever follows it.
 */
import type { View } from "../controller";
import { gameRef, watchingText } from "../state";
import { h, setText } from "./dom";
import { ShareLinkBox } from "./shareLink";

/** The link that opens the watch view of a game (its code, or its id on a server without codes). */
export function watchLink(origin: string, game: string): string {
  return `${origin}/?watch=${game}`;
}

export class WatchPanel {
  readonly el: HTMLElement;
  private readonly count: HTMLElement;
  private readonly link = new ShareLinkBox({ field: "watch-link", copy: "copy-watch-link", label: "Watch link" });

  constructor(private readonly origin: string) {
    this.count = h("span", { "data-testid": "spectators" });
    this.el = h(
      "section",
      { class: "card watch-panel", "aria-labelledby": "watch-title" },
      h("h3", { id: "watch-title" }, "You are watching"),
      h("p", { class: "watch-count" }, h("span", { class: "eye", "aria-hidden": "true" }), this.count),
      h("p", { class: "hint" }, "You see every capture live, without a seat: only the players capture cells."),
      h("p", { class: "hint" }, "Invite others to watch:"),
      this.link.el,
    );
  }

  update(v: View): void {
    const g = v.game;
    if (!g) return;
    setText(this.count, watchingText(g) ?? "Spectators are not counted by this server");
    this.link.set(watchLink(this.origin, gameRef(g)));
  }
}
