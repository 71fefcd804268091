// The Prometheus text format, as the admin page reads it from /metrics:
// samples by name and labels, counter rates between two scrapes, and a
// histogram's p99 over the same interval.

/** One sample: metric name, labels, value. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Every sample of a /metrics body (comments skipped). */
export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = LINE.exec(line);
    const [name, rawLabels, rawValue] = [m?.[1], m?.[2] ?? "", m?.[3]];
    if (name === undefined || rawValue === undefined) continue;
    const labels: Record<string, string> = {};
    for (const [, key, value] of rawLabels.matchAll(LABEL)) {
      if (key !== undefined && value !== undefined) labels[key] = value.replace(/\\(.)/g, "$1");
    }
    const value = Number(rawValue);
    if (!Number.isNaN(value)) samples.push({ name, labels, value });
  }
  return samples;
}

/** The sum of every sample named `name` whose labels include `match`. */
export function sum(samples: Sample[], name: string, match: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .reduce((total, s) => total + s.value, 0);
}

/** Per-second rate of counter `name` between two scrapes `seconds` apart. */
export function rate(before: Sample[], after: Sample[], name: string, seconds: number): number {
  if (seconds <= 0) return 0;
  return Math.max(0, sum(after, name) - sum(before, name)) / seconds;
}

/**
 * The 0.99 quantile, in seconds, of histogram `name` over the observations
 * made between two scrapes (linear within a bucket, like PromQL's
 * histogram_quantile). `null` when nothing was observed in between.
 */
export function p99(before: Sample[], after: Sample[], name: string): number | null {
  const buckets = new Map<number, number>();
  for (const [samples, sign] of [[after, 1], [before, -1]] as const) {
    for (const s of samples) {
      if (s.name !== `${name}_bucket`) continue;
      const le = s.labels.le === "+Inf" ? Infinity : Number(s.labels.le);
      buckets.set(le, (buckets.get(le) ?? 0) + sign * s.value);
    }
  }
  const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total <= 0) return null;
  const rank = 0.99 * total;
  let lower = 0;
  let below = 0;
  for (const [le, count] of sorted) {
    if (count >= rank) {
      if (le === Infinity) return lower;
      const inBucket = count - below;
      return inBucket > 0 ? lower + ((le - lower) * (rank - below)) / inBucket : le;
    }
    lower = le;
    below = count;
  }
  return lower;
}
