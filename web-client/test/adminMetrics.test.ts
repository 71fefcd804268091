import { describe, expect, it } from "vitest";
import { p99, parseMetrics, rate, sum } from "../src/admin/metricsText";

const before = parseMetrics(`# HELP gridcap_captures_total Accepted captures
# TYPE gridcap_captures_total counter
gridcap_captures_total 100
gridcap_games{status="active"} 3
gridcap_games{status="waiting"} 1
gridcap_handshakes_refused_total{status="403",reason="origin \\"x\\" not allowed"} 2
h_bucket{le="0.01"} 10
h_bucket{le="0.05"} 10
h_bucket{le="+Inf"} 10
`);
const after = parseMetrics(`gridcap_captures_total 150
h_bucket{le="0.01"} 10
h_bucket{le="0.05"} 110
h_bucket{le="+Inf"} 110
`);

describe("the admin page's reading of /metrics", () => {
  it("parses names, labels and values", () => {
    expect(sum(before, "gridcap_games")).toBe(4);
    expect(sum(before, "gridcap_games", { status: "active" })).toBe(3);
    const refused = before.find((s) => s.name === "gridcap_handshakes_refused_total");
    expect(refused?.labels.reason).toBe('origin "x" not allowed');
  });

  it("turns two scrapes into a rate", () => {
    expect(rate(before, after, "gridcap_captures_total", 2)).toBe(25);
    expect(rate(after, before, "gridcap_captures_total", 2)).toBe(0);
  });

  it("takes p99 of the observations between two scrapes only", () => {
    // 100 new observations, all in (0.01, 0.05]: p99 is 99 % into that bucket.
    expect(p99(before, after, "h")).toBeCloseTo(0.01 + 0.04 * 0.99, 6);
    expect(p99(after, after, "h")).toBeNull();
  });
});
