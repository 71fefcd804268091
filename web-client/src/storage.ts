/**
 * Browser storage. Seat tokens go to sessionStorage (per tab, survives a
 * reload, keyed by game id) so a reload resumes the seat while a second tab
 * joins as its own player. The last name and settings go to localStorage only to
 * pre-fill the form. Storage can be unavailable (privacy modes): every access
 * falls back to memory rather than breaking the game.
 */
import type { GameSettings, TokenStore } from "./controller";

const TOKEN_PREFIX = "gridcap.token.";
const NAME_KEY = "gridcap.name";
const SETTINGS_KEY = "gridcap.settings";

function safe(get: () => Storage): Storage | null {
  try {
    const s = get();
    const probe = "gridcap.probe";
    s.setItem(probe, "1");
    s.removeItem(probe);
    return s;
  } catch {
    return null;
  }
}

export class SessionTokenStore implements TokenStore {
  private readonly storage: Storage | null;
  private readonly memory = new Map<string, string>();

  constructor(storage: Storage | null = safe(() => window.sessionStorage)) {
    this.storage = storage;
  }

  get(game: string): string | null {
    return this.storage?.getItem(TOKEN_PREFIX + game) ?? this.memory.get(game) ?? null;
  }

  set(game: string, token: string): void {
    this.memory.set(game, token);
    this.storage?.setItem(TOKEN_PREFIX + game, token);
  }

  delete(game: string): void {
    this.memory.delete(game);
    this.storage?.removeItem(TOKEN_PREFIX + game);
  }
}

const prefs = (): Storage | null => safe(() => window.localStorage);

export function loadName(): string {
  return prefs()?.getItem(NAME_KEY) ?? "";
}

export function saveName(name: string): void {
  prefs()?.setItem(NAME_KEY, name);
}

export function loadSettings(): GameSettings {
  const fallback: GameSettings = { maxPlayers: 4, durationMs: 30_000, public: false };
  try {
    const raw = prefs()?.getItem(SETTINGS_KEY);
    if (!raw) return fallback;
    const v = JSON.parse(raw) as Partial<GameSettings>;
    return {
      maxPlayers: typeof v.maxPlayers === "number" ? v.maxPlayers : fallback.maxPlayers,
      durationMs: typeof v.durationMs === "number" ? v.durationMs : fallback.durationMs,
      public: v.public === true,
    };
  } catch {
    return fallback;
  }
}

export function saveSettings(s: GameSettings): void {
  prefs()?.setItem(SETTINGS_KEY, JSON.stringify(s));
}
