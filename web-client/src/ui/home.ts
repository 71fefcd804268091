/**
 * The first screen: pick a name, then quick play (a game size), type a code,
 * create a game (max players, round length, public or not), or pick an open
 * game from the public lobby. Arriving from a share link, join that game
 * instead; the link also fetches a preview of the game over HTTP so a dead link
 * is reported before the player types anything, and a game that has already
 * started is offered for watching. A running public game is watched from the lobby.
 *
 * Each action is its own small form, so Enter in a field does what that field is
 * for (Enter in the code box joins by code); Enter in the name does the main
 * action (join the invitation, else quick play).
 */
import type { Controller, View } from "../controller";
import type { LobbyList } from "../lobbyApi";
import { errorText } from "../messages";
import { CODE_LENGTH, DURATION_MS_RANGE, MAX_PLAYERS_RANGE, parseGameRef, validateName } from "../protocol";
import { loadName, loadSettings, saveName, saveSettings } from "../storage";
import { h, setText, show } from "./dom";
import { PublicGames } from "./publicGames";

/** Quick play's game size when the player has not picked one (PROTOCOL section 7). */
const QUICK_PLAY_DEFAULT_SIZE = 4;

export interface Preview {
  status: string;
  players: number;
  maxPlayers: number;
  hostName: string | null;
}

export class HomeScreen {
  readonly el: HTMLElement;
  private readonly name: HTMLInputElement;
  private readonly maxPlayers: HTMLInputElement;
  private readonly duration: HTMLInputElement;
  private readonly isPublic: HTMLInputElement;
  private readonly quickSize: HTMLSelectElement;
  private readonly code: HTMLInputElement;
  private readonly createBtn: HTMLButtonElement;
  private readonly joinBtn: HTMLButtonElement;
  private readonly quickBtn: HTMLButtonElement;
  private readonly codeBtn: HTMLButtonElement;
  /** Shown with the invitation once its preview says the game is under way. */
  private readonly watchInviteBtn: HTMLButtonElement;
  /** Everything offered when no invitation is pending: quick play, code, create. */
  private readonly choosePart: HTMLElement;
  private readonly invitePart: HTMLElement;
  private readonly inviteText: HTMLElement;
  private readonly publicGames: PublicGames;
  private previewFor: string | null = null;

  constructor(
    private readonly ctl: Controller,
    private readonly fetchPreview: (game: string) => Promise<Preview | "unknown" | null>,
    now: () => number,
  ) {
    const settings = loadSettings();
    this.name = h("input", {
      id: "name",
      "data-testid": "name",
      type: "text",
      maxlength: 24,
      autocomplete: "nickname",
      placeholder: "e.g. Ada",
      required: true,
      value: loadName(),
    });
    this.maxPlayers = h("input", {
      id: "max-players",
      "data-testid": "max-players",
      type: "number",
      min: MAX_PLAYERS_RANGE.min,
      max: MAX_PLAYERS_RANGE.max,
      step: 1,
      value: settings.maxPlayers,
    });
    this.duration = h("input", {
      id: "duration",
      "data-testid": "duration",
      type: "number",
      min: DURATION_MS_RANGE.min / 1000,
      max: DURATION_MS_RANGE.max / 1000,
      step: 1,
      value: Math.round(settings.durationMs / 1000),
    });
    this.isPublic = h("input", { id: "public", "data-testid": "public", type: "checkbox" });
    this.isPublic.checked = settings.public ?? false;
    this.quickSize = h("select", { id: "quick-size", "data-testid": "quick-size" });
    for (let n: number = MAX_PLAYERS_RANGE.min; n <= MAX_PLAYERS_RANGE.max; n++) {
      this.quickSize.append(h("option", { value: n, selected: n === QUICK_PLAY_DEFAULT_SIZE }, `${n} players`));
    }
    this.code = h("input", {
      id: "code",
      "data-testid": "code",
      type: "text",
      autocomplete: "off",
      autocapitalize: "characters",
      spellcheck: "false",
      placeholder: "e.g. K7QX2M",
      "aria-describedby": "code-hint",
    });
    this.createBtn = h("button", { type: "submit", class: "secondary", "data-testid": "create" }, "Create game");
    this.joinBtn = h("button", { type: "submit", class: "primary", "data-testid": "join" }, "Join game");
    this.quickBtn = h("button", { type: "submit", class: "primary", "data-testid": "quick-play" }, "Quick play");
    this.codeBtn = h("button", { type: "submit", class: "secondary", "data-testid": "join-code" }, "Join");
    this.inviteText = h("p", { class: "invite-text" });
    this.watchInviteBtn = h("button", {
      type: "button",
      class: "primary",
      "data-testid": "watch-invite",
      hidden: true,
      onclick: () => {
        if (this.previewFor) this.ctl.watch(this.previewFor);
      },
    }, "Watch it");

    const quickForm = h(
      "form",
      { class: "quick-part", novalidate: true, onsubmit: (e: Event) => this.submit(e, () => this.quickPlay()) },
      h("h3", {}, "Play now"),
      h("p", { class: "hint small" }, "Quick play seats you in a public game that is about to start, or opens one."),
      h("div", { class: "inline" }, h("label", { for: "quick-size" }, "Game size", this.quickSize), this.quickBtn),
    );
    const codeForm = h(
      "form",
      { class: "code-part", novalidate: true, onsubmit: (e: Event) => this.submit(e, () => this.joinCode()) },
      h("h3", {}, "Have a code?"),
      h("div", { class: "inline" }, h("label", { for: "code" }, "Game code", this.code), this.codeBtn),
      h("p", { class: "hint small", id: "code-hint" }, `${CODE_LENGTH} letters and digits, or the whole link.`),
    );
    const createForm = h(
      "form",
      { class: "create-part", novalidate: true, onsubmit: (e: Event) => this.submit(e, () => this.create()) },
      h("h3", {}, "Create a game"),
      h(
        "div",
        { class: "settings" },
        h("label", { for: "max-players" }, "Players", this.maxPlayers),
        h("label", { for: "duration" }, "Round (seconds)", this.duration),
      ),
      h("label", { for: "public", class: "check" }, this.isPublic, "Public: list it in the open games"),
      this.createBtn,
    );
    this.choosePart = h("div", { class: "choose-part" }, quickForm, codeForm, createForm);
    this.invitePart = h(
      "form",
      { class: "invite-part", novalidate: true, onsubmit: (e: Event) => this.submit(e, () => this.joinInvite()) },
      this.inviteText,
      this.watchInviteBtn,
      this.joinBtn,
      h("button", { type: "button", class: "link", onclick: () => this.ctl.dropInvite() }, "Create a new game instead"),
    );
    this.name.addEventListener("keydown", (e) => {
      if (e.key !== "Enter") return;
      e.preventDefault();
      if (!this.invitePart.hidden) this.joinInvite();
      else this.quickPlay();
    });

    this.publicGames = new PublicGames(
      (g) => this.withName((name) => this.ctl.join(name, g.id)),
      (g) => this.ctl.watch(g.code),
      now,
    );
    const card = h(
      "div",
      { class: "card home" },
      h("h2", {}, "Capture the grid"),
      h("p", { class: "lead" }, "Race your friends to claim the most of the 81 cells before the clock runs out."),
      h("label", { for: "name", class: "name-label" }, "Your name", this.name),
      this.invitePart,
      this.choosePart,
    );
    this.el = h("section", { class: "screen home-screen" }, h("div", { class: "home-grid" }, card, this.publicGames.el));
  }

  /** A fresh lobby from the poller. */
  setLobby(lobby: LobbyList | null): void {
    this.publicGames.set(lobby);
  }

  tick(): void {
    this.publicGames.tick();
  }

  update(v: View): void {
    const inviting = v.invite !== null;
    show(this.invitePart, inviting);
    show(this.choosePart, !inviting);
    const busy = v.busy !== null;
    for (const btn of [this.createBtn, this.joinBtn, this.quickBtn, this.codeBtn, this.watchInviteBtn]) btn.disabled = busy;
    this.publicGames.setBusy(busy);
    const pending = v.conn.status === "open" ? null : "Connecting…";
    setText(this.createBtn, v.busy === "create" ? (pending ?? "Creating…") : "Create game");
    setText(this.joinBtn, v.busy === "join" ? (pending ?? "Joining…") : "Join game");
    setText(this.codeBtn, v.busy === "join" ? (pending ?? "Joining…") : "Join");
    setText(this.quickBtn, v.busy === "quick_play" ? (pending ?? "Finding a game…") : "Quick play");
    if (inviting && v.invite !== this.previewFor) {
      this.previewFor = v.invite;
      setText(this.inviteText, "You have been invited to a game.");
      show(this.watchInviteBtn, false);
      void this.loadPreview(v.invite!);
    }
    if (!inviting) this.previewFor = null;
  }

  focus(): void {
    if (!this.name.value) this.name.focus();
  }

  private async loadPreview(game: string): Promise<void> {
    const preview = await this.fetchPreview(game);
    if (this.previewFor !== game) return;
    if (preview === "unknown") {
      setText(this.inviteText, "This invitation link does not lead to a game that exists now.");
      this.ctl.showError("unknown_game", errorText("unknown_game"));
      return;
    }
    if (!preview) return;
    const host = preview.hostName ? `${preview.hostName}'s game` : "A game";
    const state =
      preview.status === "waiting"
        ? `is waiting for players (${preview.players} of ${preview.maxPlayers} seats taken).`
        : preview.status === "active"
          ? "has already started."
          : "is already over.";
    setText(this.inviteText, `${host} ${state}`);
    // Too late for a seat, not to look: a running (or just finished) game can be watched.
    show(this.watchInviteBtn, preview.status !== "waiting");
  }

  private submit(e: Event, action: () => void): void {
    e.preventDefault();
    action();
  }

  /** Run `f` with the validated name, or point at the name field. */
  private withName(f: (name: string) => void): void {
    const checked = validateName(this.name.value);
    if (!checked.ok) return this.showFormError(checked.reason, this.name);
    saveName(checked.name);
    this.showFormError(null);
    f(checked.name);
  }

  private joinInvite(): void {
    this.withName((name) => this.ctl.join(name));
  }

  private quickPlay(): void {
    this.withName((name) => this.ctl.quickPlay(name, Number(this.quickSize.value)));
  }

  private joinCode(): void {
    this.withName((name) => {
      const game = parseGameRef(this.code.value);
      if (!game) {
        return this.showFormError(
          `A game code is ${CODE_LENGTH} characters from A-Z and 2-9 (no 0, O, 1, I or L).`,
          this.code,
        );
      }
      this.ctl.join(name, game);
    });
  }

  private create(): void {
    this.withName((name) => this.createAs(name));
  }

  private createAs(name: string): void {
    const maxPlayers = Number(this.maxPlayers.value);
    if (!Number.isInteger(maxPlayers) || maxPlayers < MAX_PLAYERS_RANGE.min || maxPlayers > MAX_PLAYERS_RANGE.max) {
      return this.showFormError(`Players must be a whole number from ${MAX_PLAYERS_RANGE.min} to ${MAX_PLAYERS_RANGE.max}.`, this.maxPlayers);
    }
    const seconds = Number(this.duration.value);
    const durationMs = Math.round(seconds * 1000);
    if (!Number.isFinite(seconds) || durationMs < DURATION_MS_RANGE.min || durationMs > DURATION_MS_RANGE.max) {
      return this.showFormError(
        `The round lasts from ${DURATION_MS_RANGE.min / 1000} to ${DURATION_MS_RANGE.max / 1000} seconds.`,
        this.duration,
      );
    }
    this.showFormError(null);
    const settings = { maxPlayers, durationMs, public: this.isPublic.checked };
    saveSettings(settings);
    this.ctl.create(name, settings);
  }

  /** Local validation shares the one error element with server errors. */
  private showFormError(text: string | null, field?: HTMLInputElement): void {
    for (const input of [this.name, this.maxPlayers, this.duration, this.code]) input.removeAttribute("aria-invalid");
    if (text === null) return;
    this.ctl.showError("invalid_input", text);
    if (field) {
      field.setAttribute("aria-invalid", "true");
      field.focus();
    }
  }
}
