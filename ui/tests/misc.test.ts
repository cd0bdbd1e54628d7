import { describe, expect, it } from "vitest";
import { makeAxis } from "../src/lib/axes";
import { columnId, orderBy, parseColumnId, quoteKey, quoteValue, searchIdentifier } from "../src/lib/columns";
import { parseCsv } from "../src/lib/csv";
import { formatDuration, formatNumber } from "../src/lib/format";
import { nextDelay, LIVE_BACKOFF } from "../src/lib/poll";
import { previewKind } from "../src/components/ArtifactBrowser";
import { andFilter, groupFilter } from "../src/components/RunsTable";
import { visibleColumnRange } from "../src/components/VirtualGrid";
import { differingKeys } from "../src/pages/Compare";
import type { Run } from "../src/lib/types";

describe("columns and search expressions", () => {
  it("column ids keep any key", () => {
    expect(parseColumnId(columnId("metric.min", "a:b"))).toEqual({ id: "metric.min:a:b", kind: "metric.min", key: "a:b" });
    expect(parseColumnId("bogus:x")).toBeNull();
  });
  it("quotes keys and values for the search language", () => {
    expect(quoteKey("a`b")).toBe("`a``b`");
    expect(quoteValue("it's")).toBe("'it''s'");
    expect(searchIdentifier(parseColumnId("metric.max:val loss")!)).toBe("metrics.`val loss`.max");
    expect(searchIdentifier(parseColumnId("attr:duration")!)).toBeNull();
    expect(orderBy("param:lr", true)).toEqual(["params.`lr` ASC"]);
    expect(orderBy(null, false)).toBeUndefined();
  });
  it("builds group and combined filters", () => {
    expect(groupFilter("params.lr", "0.1")).toBe("params.`lr` = '0.1'");
    expect(groupFilter("tags.team", null)).toBe("tags.`team` IS NULL");
    expect(groupFilter("status", "FAILED")).toBe("attributes.status = 'FAILED'");
    expect(andFilter("a = 1 OR b = 2", "c = 3")).toBe("(a = 1 OR b = 2) AND c = 3");
    expect(andFilter("  ", "c = 3")).toBe("c = 3");
  });
});

describe("csv", () => {
  it("parses quotes, doubled quotes and CRLF", () => {
    const { rows } = parseCsv('a,"b,1"\r\n"say ""hi""",2\n');
    expect(rows).toEqual([["a", "b,1"], ['say "hi"', "2"]]);
  });
  it("stops at maxRows", () => {
    const { rows, truncated } = parseCsv("1\n2\n3\n", ",", 2);
    expect(rows).toEqual([["1"], ["2"]]);
    expect(truncated).toBe(true);
  });
  it("reads TSV", () => {
    expect(parseCsv("a\tb", "\t").rows).toEqual([["a", "b"]]);
  });
});

describe("formatting", () => {
  it("numbers", () => {
    expect(formatNumber(3)).toBe("3");
    expect(formatNumber(0.123456789)).toBe("0.12346");
    expect(formatNumber(1.5e-7)).toBe("1.500e-7");
    expect(formatNumber(NaN)).toBe("NaN");
    expect(formatNumber(-Infinity)).toBe("-∞");
    expect(formatNumber(undefined)).toBe("");
  });
  it("durations", () => {
    expect(formatDuration(250)).toBe("250ms");
    expect(formatDuration(61_000)).toBe("1m 1s");
    expect(formatDuration(3_600_000 * 26)).toBe("1d 2h");
  });
});

describe("live polling backoff", () => {
  it("resets on change and grows to the maximum otherwise", () => {
    expect(nextDelay(20000, true)).toBe(LIVE_BACKOFF.min);
    let d = LIVE_BACKOFF.min;
    for (let i = 0; i < 20; i++) d = nextDelay(d, false);
    expect(d).toBe(LIVE_BACKOFF.max);
    expect(nextDelay(LIVE_BACKOFF.min, false)).toBeGreaterThan(LIVE_BACKOFF.min);
  });
});

describe("plots and previews", () => {
  it("numeric and categorical axes", () => {
    const num = makeAxis([1, "3", undefined, 2]);
    expect(num.kind).toBe("numeric");
    expect(num.pos(3)).toBe(1);
    expect(num.pos(undefined)).toBeNull();
    const cat = makeAxis(["adam", "sgd", "adam"]);
    expect(cat.kind).toBe("categorical");
    expect(cat.ticks.map((t) => t.label)).toEqual(["adam", "sgd"]);
    expect(cat.pos("sgd")).toBe(1);
  });
  it("chooses a preview by file name", () => {
    expect(previewKind("plots/a.PNG")).toBe("image");
    expect(previewKind("model/MLmodel")).toBe("text");
    expect(previewKind("x.csv")).toBe("csv");
    expect(previewKind("r.html")).toBe("html");
    expect(previewKind("weights.bin")).toBe("none");
  });
  it("virtual grid draws only columns in view", () => {
    expect(visibleColumnRange([100, 100, 100, 100], 150, 250)).toEqual([1, 2]);
    expect(visibleColumnRange([100, 100], 500, 600)).toEqual([2, -1]);
  });
  it("finds differing params", () => {
    const run = (params: Record<string, string>) =>
      ({ info: {}, data: { params: Object.entries(params).map(([key, value]) => ({ key, value })) } }) as unknown as Run;
    const runs = [run({ a: "1", b: "x" }), run({ a: "1", b: "y" }), run({ a: "1" })];
    const value = (r: Run, k: string) => r.data.params?.find((p) => p.key === k)?.value;
    expect([...differingKeys(runs, ["a", "b"], value)]).toEqual(["b"]);
  });
});
