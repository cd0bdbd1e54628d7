import { describe, expect, it } from "vitest";
import { smoothEma } from "../src/lib/smoothing";

describe("smoothEma", () => {
  it("is the identity at weight 0", () => {
    expect(smoothEma([3, 1, 2], 0)).toEqual([3, 1, 2]);
  });
  it("is debiased: a constant series stays constant", () => {
    for (const v of smoothEma([5, 5, 5, 5], 0.9)) expect(v).toBeCloseTo(5, 12);
  });
  it("averages towards recent values", () => {
    const out = smoothEma([0, 10], 0.5);
    expect(out[0]).toBe(0);
    // last = 0.5*(0.5*0) + 0.5*10 = 5; debias 1 - 0.25 = 0.75
    expect(out[1]).toBeCloseTo(5 / 0.75, 12);
  });
  it("passes non-finite values through without disturbing the average", () => {
    const out = smoothEma([1, NaN, 1], 0.8);
    expect(out[1]).toBeNaN();
    expect(out[2]).toBeCloseTo(1, 12);
  });
  it("damps a spike", () => {
    const out = smoothEma([0, 0, 0, 100, 0, 0], 0.9);
    expect(Math.max(...out)).toBeLessThan(100);
  });
});
