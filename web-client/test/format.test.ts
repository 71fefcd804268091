import { describe, expect, it } from "vitest";
import { connText } from "../src/ui/app";
import { formatClock } from "../src/ui/game";
import { shareLink } from "../src/ui/lobby";
import { joinNames } from "../src/ui/players";

describe("display helpers", () => {
  it("formats the countdown, rounding up so 0:00 means time is out", () => {
    expect(formatClock(30_000)).toBe("0:30");
    expect(formatClock(4_001)).toBe("0:05");
    expect(formatClock(1)).toBe("0:01");
    expect(formatClock(0)).toBe("0:00");
    expect(formatClock(300_000)).toBe("5:00");
  });

  it("shows the connection state with the round-trip time", () => {
    expect(connText({ status: "open", attempt: 0, rttMs: 23 }, 0)).toBe("Connected · 23 ms");
    expect(connText({ status: "open", attempt: 0 }, 0)).toBe("Connected");
    expect(connText({ status: "waiting", attempt: 2, retryAt: 3500 }, 1000)).toBe("Offline · retrying in 3 s");
    expect(connText({ status: "connecting", attempt: 3 }, 0)).toBe("Reconnecting…");
    expect(connText({ status: "replaced", attempt: 0 }, 0)).toBe("Open in another tab");
  });

  it("builds the share link on the page's origin", () => {
    expect(shareLink("https://gridcap.example", "abc")).toBe("https://gridcap.example/?game=abc");
  });

  it("joins winner names for humans", () => {
    expect(joinNames(["Ada"])).toBe("Ada");
    expect(joinNames(["Ada", "Bob"])).toBe("Ada and Bob");
    expect(joinNames(["Ada", "Bob", "Cyd"])).toBe("Ada, Bob and Cyd");
  });
});
