import { describe, expect, it } from "vitest";
import { DEFAULT_CHART, formatRoute, parseRoute, runsRoute, type Route } from "../src/lib/route";

describe("URL state", () => {
  const cases: Route[] = [
    { page: "experiments", q: "", view: "ACTIVE_ONLY" },
    { page: "experiments", q: "bert & co", view: "ALL" },
    runsRoute(["1", "2"]),
    runsRoute(["7"], {
      filter: "metrics.loss < 0.5 AND params.lr = '0.01'",
      sort: "metric.min:val/loss",
      asc: true,
      cols: ["attr:run_name", "param:a,b", "tag:x=y&z"],
      sel: ["abc", "def"],
      group: "params.lr",
      nest: true,
      view: "DELETED_ONLY",
      tab: "charts",
      chart: { keys: ["loss", "acc/top1"], x: "relative", logY: true, smooth: 0.6, zoom: [10, 250.5] },
    }),
    runsRoute(["3"], { cols: [], chart: { ...DEFAULT_CHART, keys: [] } }),
    { page: "run", runId: "0123abcd", artifact: "plots/a b.png" },
    { page: "compare", runIds: ["a", "b"], chart: DEFAULT_CHART, scatterX: "param:lr", scatterY: "metric:loss", axes: ["param:lr"] },
  ];
  it.each(cases.map((c) => [c.page, c]))("round-trips a %s route", (_page, route) => {
    expect(parseRoute(formatRoute(route))).toEqual(route);
  });

  it("reads MLflow-style experiment links", () => {
    const r = parseRoute("#/experiments/42");
    expect(r.page).toBe("runs");
    expect(r.page === "runs" && r.experimentIds).toEqual(["42"]);
  });

  it("falls back to defaults on bad values", () => {
    const r = parseRoute("#/runs?e=1&x=banana&smooth=7&zoom=5,1&view=NOPE");
    expect(r.page === "runs" && r.chart).toEqual({ ...DEFAULT_CHART, smooth: 0.99 });
    expect(r.page === "runs" && r.view).toBe("ACTIVE_ONLY");
  });

  it("keeps default values out of the URL", () => {
    expect(formatRoute(runsRoute(["5"]))).toBe("#/runs?e=5");
  });

  it("sends unknown paths to the experiments list", () => {
    expect(parseRoute("#/nowhere").page).toBe("experiments");
    expect(parseRoute("").page).toBe("experiments");
  });
});
