/**
 * The first screen: pick a name, then either create a game (max players,
 * round length) or, arriving from a share link, join that game. A share link
 * also fetches a preview of the game over HTTP so a dead link is reported
 * before the player types anything.
 */
import type { Controller, View } from "../controller";
import { errorText } from "../messages";
import { DURATION_MS_RANGE, MAX_PLAYERS_RANGE, validateName } from "../protocol";
import { loadName, loadSettings, saveName, saveSettings } from "../storage";
import { h, setText, show } from "./dom";

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
  private readonly createBtn: HTMLButtonElement;
  private readonly joinBtn: HTMLButtonElement;
  private readonly createPart: HTMLElement;
  private readonly invitePart: HTMLElement;
  private readonly inviteText: HTMLElement;
  private previewFor: string | null = null;

  constructor(
    private readonly ctl: Controller,
    private readonly fetchPreview: (game: string) => Promise<Preview | "unknown" | null>,
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
    this.createBtn = h("button", { type: "submit", class: "primary", "data-testid": "create" }, "Create game");
    this.joinBtn = h("button", { type: "submit", class: "primary", "data-testid": "join" }, "Join game");
    this.inviteText = h("p", { class: "invite-text" });

    this.createPart = h(
      "div",
      { class: "create-part" },
      h(
        "div",
        { class: "settings" },
        h("label", { for: "max-players" }, "Players", this.maxPlayers),
        h("label", { for: "duration" }, "Round (seconds)", this.duration),
      ),
      this.createBtn,
    );
    this.invitePart = h(
      "div",
      { class: "invite-part" },
      this.inviteText,
      this.joinBtn,
      h("button", { type: "button", class: "link", onclick: () => this.ctl.dropInvite() }, "Create a new game instead"),
    );

    const form = h(
      "form",
      { class: "card home", novalidate: true, onsubmit: (e: Event) => this.submit(e) },
      h("h2", {}, "Capture the grid"),
      h("p", { class: "lead" }, "Race your friends to claim the most of the 81 cells before the clock runs out."),
      h("label", { for: "name", class: "name-label" }, "Your name", this.name),
      this.invitePart,
      this.createPart,
    );
    this.el = h("section", { class: "screen home-screen" }, form);
  }

  update(v: View): void {
    const inviting = v.invite !== null;
    show(this.invitePart, inviting);
    show(this.createPart, !inviting);
    const busy = v.busy !== null;
    this.createBtn.disabled = busy;
    this.joinBtn.disabled = busy;
    setText(this.createBtn, v.busy === "create" ? (v.conn.status === "open" ? "Creating…" : "Connecting…") : "Create game");
    setText(this.joinBtn, v.busy === "join" ? (v.conn.status === "open" ? "Joining…" : "Connecting…") : "Join game");
    if (inviting && v.invite !== this.previewFor) {
      this.previewFor = v.invite;
      setText(this.inviteText, "You have been invited to a game.");
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
  }

  private submit(e: Event): void {
    e.preventDefault();
    const checked = validateName(this.name.value);
    if (!checked.ok) return this.showFormError(checked.reason, this.name);
    saveName(checked.name);
    if (!this.invitePart.hidden) {
      this.showFormError(null);
      this.ctl.join(checked.name);
      return;
    }
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
    saveSettings({ maxPlayers, durationMs });
    this.ctl.create(checked.name, { maxPlayers, durationMs });
  }

  /** Local validation shares the one error element with server errors. */
  private showFormError(text: string | null, field?: HTMLInputElement): void {
    for (const input of [this.name, this.maxPlayers, this.duration]) input.removeAttribute("aria-invalid");
    if (text === null) return;
    this.ctl.showError("invalid_input", text);
    if (field) {
      field.setAttribute("aria-invalid", "true");
      field.focus();
    }
  }
}
