/**
 * The page shell: top bar with the connection indicator (state and round-trip
 * time), the error banner (`[data-testid=error]`), a polite notice line, and
 * whichever screen the view asks for. It also polls the public lobby, only while
 * the home screen shows in a visible tab: nobody else needs the list.
 */
import type { ConnInfo } from "../connection";
import type { Controller, View } from "../controller";
import { LobbyPoller, type LobbyList } from "../lobbyApi";
import { h, setAttr, setText, show } from "./dom";
import { GameScreen } from "./game";
import { HomeScreen, type Preview } from "./home";

const NOTICE_MS = 4000;

export function connText(c: ConnInfo, now: number): string {
  switch (c.status) {
    case "open":
      return c.rttMs === undefined ? "Connected" : `Connected · ${c.rttMs} ms`;
    case "connecting":
      return c.attempt === 0 ? "Connecting…" : "Reconnecting…";
    case "waiting": {
      const s = c.retryAt === undefined ? 0 : Math.max(0, Math.ceil((c.retryAt - now) / 1000));
      return s > 0 ? `Offline · retrying in ${s} s` : "Reconnecting…";
    }
    case "replaced":
      return "Open in another tab";
  }
}

export class App {
  private readonly conn: HTMLElement;
  private readonly error: HTMLElement;
  private readonly errorText: HTMLElement;
  private readonly takeBack: HTMLButtonElement;
  private readonly notice: HTMLElement;
  private readonly home: HomeScreen;
  private readonly game: GameScreen;
  private readonly resuming: HTMLElement;
  private view: View | null = null;
  private noticeTimer: ReturnType<typeof setTimeout> | null = null;
  private lastScreen: string | null = null;
  private readonly poller: LobbyPoller;

  constructor(
    root: HTMLElement,
    private readonly ctl: Controller,
    origin: string,
    private readonly now: () => number,
    fetchPreview: (game: string) => Promise<Preview | "unknown" | null>,
    loadLobby: () => Promise<LobbyList | null>,
  ) {
    this.conn = h("span", { class: "conn", "data-testid": "connection", role: "status", "aria-live": "polite" });
    this.errorText = h("span", { class: "error-text" });
    this.takeBack = h("button", { type: "button", class: "secondary", onclick: () => this.ctl.takeBackSeat() }, "Play here instead");
    this.error = h(
      "div",
      { class: "banner error", "data-testid": "error", role: "alert", hidden: true },
      this.errorText,
      this.takeBack,
      h("button", { type: "button", class: "close", "aria-label": "Dismiss", onclick: () => this.ctl.dismissError() }, "×"),
    );
    this.notice = h("div", { class: "notice", "data-testid": "notice", "aria-live": "polite", hidden: true });
    this.home = new HomeScreen(ctl, fetchPreview, now);
    this.poller = new LobbyPoller({
      load: loadLobby,
      onUpdate: (lobby) => this.home.setLobby(lobby),
      setTimer: (fn, ms) => setTimeout(fn, ms),
      clearTimer: (t) => clearTimeout(t as ReturnType<typeof setTimeout>),
    });
    document.addEventListener("visibilitychange", () => this.pollWhileHomeShows());
    this.game = new GameScreen(ctl, origin, now);
    this.resuming = h("section", { class: "screen resuming" }, h("div", { class: "card" }, h("p", { class: "spinner", "aria-hidden": "true" }), h("p", {}, "Rejoining your game…")));
    const top = h(
      "header",
      { class: "topbar" },
      // The one level-one heading of every screen: the name of the game.
      h("h1", { class: "logo-title" }, h("a", { class: "logo", href: "/" }, h("span", { class: "logo-grid", "aria-hidden": "true" }), "gridcap")),
      this.conn,
    );
    root.replaceChildren(top, h("main", { class: "content" }, this.error, this.resuming, this.home.el, this.game.el), this.notice);
    ctl.subscribe((v) => this.render(v));
  }

  /** Called on a short interval: the countdown and the retry countdown move on their own. */
  tick(): void {
    this.game.tick();
    this.home.tick();
    if (this.view) this.renderConn(this.view.conn);
  }

  private render(v: View): void {
    const prev = this.view;
    this.view = v;
    this.renderConn(v.conn);
    setText(this.errorText, v.error?.text ?? "");
    setAttr(this.error, "data-code", v.error?.code ?? null);
    show(this.error, v.error !== null);
    show(this.takeBack, v.replaced);
    if (v.notice !== prev?.notice || (v.notice && !this.noticeTimer)) this.showNotice(v.notice);

    show(this.resuming, v.screen === "resuming");
    show(this.home.el, v.screen === "home");
    show(this.game.el, v.screen === "game");
    if (v.screen === "home") this.home.update(v);
    if (v.screen === "game") this.game.update(v);
    if (v.screen !== this.lastScreen) {
      this.lastScreen = v.screen;
      if (v.screen === "home") this.home.focus();
      this.pollWhileHomeShows();
    }
  }

  private pollWhileHomeShows(): void {
    if (this.view?.screen === "home" && document.visibilityState !== "hidden") this.poller.start();
    else this.poller.stop();
  }

  private renderConn(c: ConnInfo): void {
    setText(this.conn, connText(c, this.now()));
    setAttr(this.conn, "data-state", c.status);
  }

  private showNotice(text: string | null): void {
    if (this.noticeTimer) clearTimeout(this.noticeTimer);
    this.noticeTimer = null;
    setText(this.notice, text ?? "");
    show(this.notice, text !== null);
    if (text !== null) {
      this.noticeTimer = setTimeout(() => {
        this.noticeTimer = null;
        this.ctl.clearNotice();
      }, NOTICE_MS);
    }
  }
}
