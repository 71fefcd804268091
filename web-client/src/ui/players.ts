/**
 * How a player is shown everywhere: a colour from a palette chosen to stay
 * distinguishable with colour-vision deficiencies (Okabe–Ito), plus a number
 * label and a pattern, so colour is never the only cue.
 */
import type { PlayerId } from "../protocol";
import type { GameState } from "../state";
import { h } from "./dom";

/** The label drawn on cells and badges: seat 0 is "1". */
export function playerLabel(id: PlayerId): string {
  return String(id + 1);
}

/** A round badge in the player's colour and pattern, same look as their cells. */
export function badge(id: PlayerId): HTMLSpanElement {
  return h("span", { class: "badge", "data-player": id, "aria-hidden": "true" }, playerLabel(id));
}

export function playerName(g: GameState, id: PlayerId): string {
  return g.players.find((p) => p.id === id)?.name ?? `Player ${playerLabel(id)}`;
}

/** "Alice", "Alice and Bob", "Alice, Bob and Carol". */
export function joinNames(names: string[]): string {
  if (names.length <= 1) return names.join("");
  return `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}
