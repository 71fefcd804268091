import { describe, expect, it } from "vitest";
import { closeText, errorText, rejectText } from "../src/messages";

const CODES = [
  "bad_frame", "bad_message", "invalid_name", "invalid_settings", "unknown_game", "game_full",
  "already_started", "already_in_game", "not_in_game", "not_host", "not_enough_players",
  "bad_token", "rate_limited", "overloaded",
];

describe("human messages", () => {
  it.each(CODES)("has its own sentence for %s", (code) => {
    const text = errorText(code, "server words");
    expect(text).not.toContain(code);
    expect(text).not.toContain("server words");
    expect(text.length).toBeGreaterThan(15);
  });

  it("falls back to the server's message for a code it does not know", () => {
    expect(errorText("new_code", "the details")).toBe("Server error (new_code): the details");
  });

  it("explains every rejection reason", () => {
    expect(rejectText("taken")).toMatch(/taken/);
    expect(rejectText("not_active")).toMatch(/not running/);
    expect(rejectText("out_of_range")).toMatch(/not on the board/);
  });

  it("explains close codes and stays quiet for a normal close", () => {
    expect(closeText(1000)).toBeNull();
    expect(closeText(4001)).toMatch(/another tab/);
    expect(closeText(1013)).toMatch(/overloaded/);
  });
});
