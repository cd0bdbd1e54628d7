import { describe, expect, it } from "vitest";
import { aggregateSeries, nearestIndex } from "../src/lib/series";
import { chunkSeries } from "../src/lib/api";
import { pageSizeFor, PAGE_SIZE, JUMP_PAGE_SIZE } from "../src/lib/runLoader";

describe("nearestIndex", () => {
  it("finds the closest x", () => {
    const xs = [0, 10, 20, 30];
    expect(nearestIndex(xs, -5)).toBe(0);
    expect(nearestIndex(xs, 14)).toBe(1);
    expect(nearestIndex(xs, 16)).toBe(2);
    expect(nearestIndex(xs, 99)).toBe(3);
    expect(nearestIndex([], 1)).toBe(-1);
  });
});

describe("aggregateSeries", () => {
  it("gives mean and sample std across runs per bin", () => {
    const a = { x: [0, 1, 2, 3], y: [1, 1, 1, 1] };
    const b = { x: [0, 1, 2, 3], y: [3, 3, 3, 3] };
    const agg = aggregateSeries([a, b], 4);
    expect(agg.mean).toEqual([2, 2, 2, 2]);
    for (const s of agg.std) expect(s).toBeCloseTo(Math.SQRT2, 12);
    expect(agg.n).toEqual([2, 2, 2, 2]);
    expect(agg.min).toEqual([1, 1, 1, 1]);
    expect(agg.max).toEqual([3, 3, 3, 3]);
  });
  it("compares runs logged at different x values by binning", () => {
    const agg = aggregateSeries([{ x: [0, 10], y: [0, 10] }, { x: [1, 9], y: [2, 8] }], 2);
    expect(agg.mean).toEqual([1, 9]);
    expect(agg.x[0]).toBeCloseTo(0.5, 12);
  });
  it("skips empty bins and non-finite values", () => {
    const agg = aggregateSeries([{ x: [0, 100], y: [1, NaN] }], 10);
    expect(agg.mean).toEqual([1]);
    expect(aggregateSeries([], 10).x).toEqual([]);
  });
});

describe("helpers", () => {
  it("chunkSeries keeps every request within the series limit and covers every pair", () => {
    const runs = Array.from({ length: 450 }, (_, i) => `r${i}`);
    const keys = ["a", "b", "c"];
    const chunks = chunkSeries(runs, keys, 200);
    for (const c of chunks) expect(c.runIds.length * c.keys.length).toBeLessThanOrEqual(200);
    const pairs = new Set(chunks.flatMap((c) => c.runIds.flatMap((r) => c.keys.map((k) => `${r}/${k}`))));
    expect(pairs.size).toBe(450 * 3);
    const few = chunkSeries(["x", "y"], Array.from({ length: 250 }, (_, i) => `k${i}`), 200);
    expect(few.length).toBe(3);
    expect(chunkSeries([], keys)).toEqual([]);
  });
  it("pageSizeFor: small pages while scrolling, big ones for a jump", () => {
    expect(pageSizeFor(0, 50)).toBe(PAGE_SIZE);
    expect(pageSizeFor(200, 400)).toBe(PAGE_SIZE);
    expect(pageSizeFor(0, 90_000)).toBe(JUMP_PAGE_SIZE);
    const mid = pageSizeFor(0, 1500);
    expect(mid).toBeGreaterThanOrEqual(1500);
    expect(mid % PAGE_SIZE).toBe(0);
  });
});
