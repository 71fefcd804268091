/**
 * The waiting room: the share link with a copy button, and for the host the
 * Start button, disabled with a visible reason until enough players are
 * connected. Everyone else sees who they are waiting for.
 */
import type { Controller, View } from "../controller";
import { startBlocker } from "../state";
import { h, setText, show } from "./dom";
import { playerName } from "./players";

export function shareLink(origin: string, game: string): string {
  return `${origin}/?game=${game}`;
}

export class Lobby {
  readonly el: HTMLElement;
  private readonly link: HTMLInputElement;
  private readonly copyBtn: HTMLButtonElement;
  private readonly startBtn: HTMLButtonElement;
  private readonly reason: HTMLElement;
  private readonly waitText: HTMLElement;
  private readonly autoText: HTMLElement;

  constructor(
    private readonly ctl: Controller,
    private readonly origin: string,
  ) {
    this.link = h("input", {
      id: "share-link",
      "data-testid": "share-link",
      type: "text",
      readonly: true,
      "aria-label": "Share link",
      onfocus: () => this.link.select(),
    });
    this.copyBtn = h("button", { type: "button", class: "secondary", "data-testid": "copy-link", onclick: () => void this.copy() }, "Copy link");
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
      h("p", { class: "hint" }, "Send this link to your friends:"),
      h("div", { class: "share" }, this.link, this.copyBtn),
      this.startBtn,
      this.reason,
      this.waitText,
      this.autoText,
    );
  }

  update(v: View): void {
    const g = v.game;
    if (!g) return;
    const url = shareLink(this.origin, g.id);
    if (this.link.value !== url) this.link.value = url;
    const host = g.host === g.you;
    show(this.startBtn, host);
    const blocker = host ? startBlocker(g) : null;
    this.startBtn.disabled = blocker !== null || v.conn.status !== "open";
    setText(this.reason, host ? (v.conn.status !== "open" ? "Reconnecting…" : (blocker ?? "Everyone here? Start when ready.")) : "");
    show(this.reason, host);
    setText(this.waitText, host ? "" : `Waiting for ${playerName(g, g.host)} (host) to start the game…`);
    show(this.waitText, !host);
    setText(this.autoText, `The round starts by itself once all ${g.maxPlayers} seats are taken.`);
  }

  private async copy(): Promise<void> {
    const url = this.link.value;
    let ok = false;
    try {
      await navigator.clipboard.writeText(url);
      ok = true;
    } catch {
      // Clipboard API refused (permissions, insecure origin): fall back to a selection copy.
      this.link.select();
      ok = document.execCommand("copy");
    }
    setText(this.copyBtn, ok ? "Copied!" : "Select & copy");
    setTimeout(() => setText(this.copyBtn, "Copy link"), 2000);
  }
}
