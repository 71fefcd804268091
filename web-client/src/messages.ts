/**
 * Human wording for everything the server can say "no" with: error codes,
 * capture rejections and WebSocket close codes. Kept in one place so every
 * screen words the same problem the same way.
 */
import type { RejectReason } from "./protocol";

const ERROR_TEXT: Record<string, string> = {
  bad_frame: "The client sent a frame the server could not read. Please reload the page.",
  bad_message: "The server did not understand a message from this client. Please reload the page.",
  invalid_name: "That name is not allowed: use 1 to 24 characters, at least one visible, without control characters.",
  invalid_settings: "Those game settings are not allowed: 2 to 8 players and a round the server accepts.",
  unknown_game: "This game does not exist (anymore). Finished games are removed after a minute — create a new one.",
  game_full: "This game is full: every seat is taken.",
  already_started: "This game has already started, so nobody can join it now.",
  already_in_game: "You are already in a game on this connection.",
  not_in_game: "You are not in a game (anymore).",
  not_host: "Only the host can start the game.",
  not_enough_players: "Not enough connected players to start yet: at least 2 are needed.",
  bad_token: "Your seat in this game could not be restored (the saved session is invalid or expired).",
  rate_limited: "Slow down: you are sending too many actions at once.",
  overloaded: "The server is busy right now. Please try again in a moment.",
};

/** A clear sentence for an `error{code}`; falls back to the server's own message. */
export function errorText(code: string, serverMessage = ""): string {
  const known = ERROR_TEXT[code];
  if (known) return known;
  const detail = serverMessage.trim();
  return detail ? `Server error (${code}): ${detail}` : `Server error: ${code}.`;
}

/** `game_full` in answer to `watch`: the spectators' limit (section 7), not the seats. */
export const WATCH_FULL_TEXT = "This game already has as many spectators as the server allows. Please try again later.";

const REJECT_TEXT: Record<RejectReason, string> = {
  taken: "Too late — that cell is already taken.",
  not_active: "The round is not running, so cells cannot be captured now.",
  out_of_range: "That cell is not on the board.",
};

export function rejectText(reason: RejectReason): string {
  return REJECT_TEXT[reason];
}

/** What a close code means to a player, or null for an ordinary close. */
export function closeText(code: number): string | null {
  switch (code) {
    case 1000:
    case 1005:
      return null;
    case 1001:
      return "The server is restarting; reconnecting…";
    case 1006:
      return "Connection lost; reconnecting…";
    case 1008:
      return "The server closed the connection because of too many invalid or excessive messages.";
    case 1009:
      return "The server closed the connection: a message was too large.";
    case 1011:
      return "The server hit an internal error; reconnecting…";
    case 1013:
      return "The server is overloaded; retrying shortly…";
    case 4001:
      return "This seat is now open in another tab or window.";
    default:
      return `Connection closed (code ${code}); reconnecting…`;
  }
}
