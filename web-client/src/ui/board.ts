/**
 * The 9x9 board: 81 `<button data-cell="N">`s built once and updated in place
 * (rebuilding would lose keyboard focus mid-game). A cell owned by player K
 * carries `data-owner="K"`, shows K's label and pattern besides the colour, and
 * your own cells get `data-mine` and a ring. Keyboard: one roving tab stop,
 * arrows move, Home/End jump within a row, Enter/Space capture (native button).
 * A spectator gets the same board read-only: every cell `aria-disabled`, still
 * focusable so arrow keys can read the owners out.
 */
import type { Controller, View } from "../controller";
import { CELL_COUNT, GRID_SIZE } from "../protocol";
import { isSpectator, ownerOf, type GameState } from "../state";
import { h, setAttr, setText } from "./dom";
import { playerLabel, playerName } from "./players";

const PLAY_LABEL = "Board, 9 by 9 cells. Use the arrow keys to move and Enter to capture.";
const WATCH_LABEL = "Board, 9 by 9 cells, read-only while you watch. Use the arrow keys to move from cell to cell.";

export class Board {
  readonly el: HTMLElement;
  private readonly cells: HTMLButtonElement[] = [];
  /** The cell that holds the single tab stop. */
  private focusIndex = 40;
  private lastOwners = new Uint8Array(CELL_COUNT);
  /** Game the board last drew; a new game draws without the capture animation. */
  private drawn: string | null = null;

  constructor(private readonly ctl: Controller) {
    this.el = h("div", {
      class: "board",
      role: "group",
      "aria-label": PLAY_LABEL,
      onkeydown: (e: Event) => this.onKey(e as KeyboardEvent),
    });
    for (let i = 0; i < CELL_COUNT; i++) {
      const btn = h("button", {
        type: "button",
        class: "cell",
        "data-cell": i,
        tabindex: i === this.focusIndex ? 0 : -1,
        onclick: () => this.ctl.capture(i),
        onfocus: () => this.moveTabStop(i),
      });
      this.cells.push(btn);
      this.el.append(btn);
    }
  }

  update(v: View): void {
    const g = v.game;
    if (!g) return;
    const playable = g.status === "active" && !isSpectator(g);
    setAttr(this.el, "aria-label", isSpectator(g) ? WATCH_LABEL : PLAY_LABEL);
    const animate = this.drawn === g.id;
    this.drawn = g.id;
    this.el.classList.toggle("playable", playable);
    for (let i = 0; i < CELL_COUNT; i++) {
      const cell = this.cells[i]!;
      const owner = ownerOf(g, i);
      const prev = this.lastOwners[i]!;
      setAttr(cell, "data-owner", owner === null ? null : String(owner));
      setAttr(cell, "data-mine", owner !== null && owner === g.you ? "" : null);
      setAttr(cell, "data-pending", v.pendingCells.has(i) ? "" : null);
      setAttr(cell, "aria-disabled", playable && owner === null ? null : "true");
      setText(cell, owner === null ? "" : playerLabel(owner));
      setAttr(cell, "aria-label", this.describe(g, i, owner, v.pendingCells.has(i)));
      if (animate && owner !== null && prev === 0) {
        // A fresh capture pops once; replaying it on every render would be noise.
        cell.classList.remove("pop");
        void cell.offsetWidth;
        cell.classList.add("pop");
      }
      this.lastOwners[i] = owner === null ? 0 : owner + 1;
    }
  }

  private describe(g: GameState, i: number, owner: number | null, pending: boolean): string {
    const where = `Row ${Math.floor(i / GRID_SIZE) + 1}, column ${(i % GRID_SIZE) + 1}`;
    if (pending) return `${where}: capturing…`;
    if (owner === null) return `${where}: free`;
    // The visible label (the player number) must be part of the name, outside parentheses,
    // which axe's label-content-name-mismatch does not count.
    if (owner === g.you) return `${where}: yours, player ${playerLabel(owner)}`;
    return `${where}: ${playerName(g, owner)}, player ${playerLabel(owner)}`;
  }

  private moveTabStop(i: number): void {
    if (i === this.focusIndex) return;
    this.cells[this.focusIndex]!.tabIndex = -1;
    this.cells[i]!.tabIndex = 0;
    this.focusIndex = i;
  }

  private onKey(e: KeyboardEvent): void {
    const target = e.target as HTMLElement | null;
    const from = Number(target?.dataset.cell);
    if (!Number.isInteger(from)) return;
    const row = Math.floor(from / GRID_SIZE);
    const col = from % GRID_SIZE;
    let to: number | null = null;
    switch (e.key) {
      case "ArrowUp":
        to = row > 0 ? from - GRID_SIZE : null;
        break;
      case "ArrowDown":
        to = row < GRID_SIZE - 1 ? from + GRID_SIZE : null;
        break;
      case "ArrowLeft":
        to = col > 0 ? from - 1 : null;
        break;
      case "ArrowRight":
        to = col < GRID_SIZE - 1 ? from + 1 : null;
        break;
      case "Home":
        to = e.ctrlKey ? 0 : row * GRID_SIZE;
        break;
      case "End":
        to = e.ctrlKey ? CELL_COUNT - 1 : row * GRID_SIZE + GRID_SIZE - 1;
        break;
      default:
        return;
    }
    e.preventDefault();
    if (to === null) return;
    this.moveTabStop(to);
    this.cells[to]!.focus();
  }
}
