/**
 * The page shell: top bar with the connection indicator (state and round-trip
 * time), the error banner (`[data-testid=error]`), a polite notice line, and
 * whichever screen the view asks for. It also polls the public lobby, only while
 * the home screen shows in a visible tab (nobody else needs the list), and the
 * watched game's spectator count, only while the watch view shows in a visible
 * tab: no event carries that count (PROTOCOL section 7).
 */
import type { ConnInfo } from "../connection";
import type { Controller, View } from "../controller";
import { SPECTATORS_POLL_MS } from "../gameApi";
import { LobbyPoller, type LobbyList } from "../lobbyApi";
import { Poller } from "../poller";
import { gameRef, isSpectator } from "../state";
import { h, setAttr, setText, show } from "./dom";
import { GameScreen } from "./game";
import { HomeScreen, type Preview } from "./home";

const NOTICE_MS = 4000;

/** What the app reads over HTTP; injected so the page can run against any origin. */
export interface AppApi {
  fetchPreview: (game: string) => Promise<Preview | "unknown" | null>;
  loadLobby: () => Promise<LobbyList | null>;
  /** The watched game's spectator count now; null when unknown. */
  loadSpectators: (game: string) => Promise<number | null>;
}

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
  private readonly watchOffer: HTMLButtonElement;
  private readonly notice: HTMLElement;
  private readonly home: HomeScreen;
  private readonly game: GameScreen;
  private readonly resuming: HTMLElement;
  private readonly resumingText: HTMLElement;
  private view: View | null = null;
  private noticeTimer: ReturnType<typeof setTimeout> | null = null;
  private lastScreen: string | null = null;
  private readonly poller: LobbyPoller;
  private readonly spectatorPoller: Poller<{ game: string; count: number | null }>;
  /** The game whose spectators are being counted (the poller follows the watch view). */
  private countedGame: string | null = null;

  constructor(
    root: HTMLElement,
    private readonly ctl: Controller,
    origin: string,
    private readonly now: () => number,
    api: AppApi,
  ) {
    this.conn = h("span", { class: "conn", "data-testid": "connection", role: "status", "aria-live": "polite" });
    this.errorText = h("span", { class: "error-text" });
    this.takeBack = h("button", { type: "button", class: "secondary", onclick: () => this.ctl.takeBackSeat() }, "Play here instead");
    this.watchOffer = h("button", { type: "button", class: "secondary", "data-testid": "watch-offer", onclick: () => this.ctl.watchOffered() }, "Watch this game");
    this.error = h(
      "div",
      { class: "banner error", "data-testid": "error", role: "alert", hidden: true },
      this.errorText,
      this.takeBack,
      this.watchOffer,
      h("button", { type: "button", class: "close", "aria-label": "Dismiss", onclick: () => this.ctl.dismissError() }, "×"),
    );
    this.notice = h("div", { class: "notice", "data-testid": "notice", "aria-live": "polite", hidden: true });
    this.home = new HomeScreen(ctl, api.fetchPreview, now);
    const timers = {
      setTimer: (fn: () => void, ms: number) => setTimeout(fn, ms),
      clearTimer: (t: unknown) => clearTimeout(t as ReturnType<typeof setTimeout>),
    };
    this.poller = new LobbyPoller({ load: api.loadLobby, onUpdate: (lobby) => this.home.setLobby(lobby), ...timers });
    this.spectatorPoller = new Poller({
      load: async () => {
        const game = this.countedGame ?? "";
        return { game, count: game ? await api.loadSpectators(game) : null };
      },
      onUpdate: ({ game, count }) => {
        if (count !== null) this.ctl.setSpectators(game, count);
      },
      intervalMs: SPECTATORS_POLL_MS,
      ...timers,
    });
    document.addEventListener("visibilitychange", () => this.pollWhatShows());
    this.game = new GameScreen(ctl, origin, now);
    this.resumingText = h("p", {}, "Rejoining your game…");
    this.resuming = h("section", { class: "screen resuming" }, h("div", { class: "card" }, h("p", { class: "spinner", "aria-hidden": "true" }), this.resumingText));
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
    show(this.watchOffer, v.watchOffer !== null && v.error !== null);
    setText(this.resumingText, v.busy === "watch" ? "Opening the game to watch…" : "Rejoining your game…");
    if (v.notice !== prev?.notice || (v.notice && !this.noticeTimer)) this.showNotice(v.notice);

    show(this.resuming, v.screen === "resuming");
    show(this.home.el, v.screen === "home");
    show(this.game.el, v.screen === "game");
    if (v.screen === "home") this.home.update(v);
    if (v.screen === "game") this.game.update(v);
    if (v.screen !== this.lastScreen) {
      this.lastScreen = v.screen;
      if (v.screen === "home") this.home.focus();
    }
    this.pollWhatShows();
  }

  /** The lobby while the home screen shows, the spectator count while the watch view shows; nothing in a hidden tab. */
  private pollWhatShows(): void {
    const visible = document.visibilityState !== "hidden";
    if (this.view?.screen === "home" && visible) this.poller.start();
    else this.poller.stop();
    const g = this.view?.screen === "game" ? this.view.game : null;
    const watched = g && isSpectator(g) && visible ? gameRef(g) : null;
    if (watched !== this.countedGame) {
      this.spectatorPoller.stop();
      this.countedGame = watched;
      if (watched) this.spectatorPoller.start();
    }
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
