// Everything the user sees is described by the URL's hash: page, experiments, filter, sort, columns,
// selection and chart settings. parseRoute/formatRoute are inverses (tested), so links and reloads restore
// the same view.
import type { ViewType, XAxis } from "./types";

export interface ChartSettings {
  keys: string[] | null; // null: every metric key of the runs
  x: XAxis;
  logY: boolean;
  smooth: number; // 0 (off) .. 0.99
  zoom: [number, number] | null;
}

export const DEFAULT_CHART: ChartSettings = { keys: null, x: "step", logY: false, smooth: 0, zoom: null };

export type Route =
  | { page: "experiments"; q: string; view: ViewType }
  | {
      page: "runs";
      experimentIds: string[];
      filter: string;
      sort: string | null;
      asc: boolean;
      cols: string[] | null;
      sel: string[];
      group: string | null;
      nest: boolean;
      view: ViewType;
      tab: "table" | "charts";
      chart: ChartSettings;
    }
  | { page: "run"; runId: string; artifact: string | null }
  | {
      page: "compare";
      runIds: string[];
      chart: ChartSettings;
      scatterX: string | null;
      scatterY: string | null;
      axes: string[] | null;
    };

const VIEWS: ViewType[] = ["ACTIVE_ONLY", "DELETED_ONLY", "ALL"];
const X_AXES: XAxis[] = ["step", "time", "relative"];

function list(p: URLSearchParams, name: string): string[] {
  return (p.get(name) ?? "").split(",").filter(Boolean);
}

function view(p: URLSearchParams): ViewType {
  const v = p.get("view") as ViewType;
  return VIEWS.includes(v) ? v : "ACTIVE_ONLY";
}

function num(p: URLSearchParams, name: string): number | null {
  const raw = p.get(name);
  if (raw === null || raw.trim() === "") return null;
  const n = Number(raw);
  return Number.isFinite(n) ? n : null;
}

function parseChart(p: URLSearchParams): ChartSettings {
  const x = p.get("x") as XAxis;
  const smooth = num(p, "smooth") ?? 0;
  const zoom = list(p, "zoom").map(Number);
  return {
    keys: p.has("k") ? p.getAll("k").filter(Boolean) : null,
    x: X_AXES.includes(x) ? x : "step",
    logY: p.get("log") === "1",
    smooth: Math.min(0.99, Math.max(0, smooth)),
    zoom: zoom.length === 2 && zoom.every(Number.isFinite) && zoom[0] < zoom[1] ? [zoom[0], zoom[1]] : null,
  };
}

function putChart(p: URLSearchParams, c: ChartSettings): void {
  if (c.keys !== null) {
    if (c.keys.length === 0) p.append("k", "");
    for (const k of c.keys) p.append("k", k);
  }
  if (c.x !== "step") p.set("x", c.x);
  if (c.logY) p.set("log", "1");
  if (c.smooth > 0) p.set("smooth", String(c.smooth));
  if (c.zoom) p.set("zoom", c.zoom.join(","));
}

export function parseRoute(hash: string): Route {
  const raw = hash.replace(/^#/, "");
  const q = raw.indexOf("?");
  const path = (q < 0 ? raw : raw.slice(0, q)).replace(/^\/+|\/+$/g, "");
  const p = new URLSearchParams(q < 0 ? "" : raw.slice(q + 1));
  const [head, ...rest] = path.split("/");
  if (head === "runs" || (head === "experiments" && rest.length > 0)) {
    const ids = head === "runs" ? list(p, "e") : [decodeURIComponent(rest[0])];
    return {
      page: "runs",
      experimentIds: ids,
      filter: p.get("f") ?? "",
      sort: p.get("s"),
      asc: p.get("o") === "asc",
      cols: p.has("c") ? p.getAll("c").filter(Boolean) : null,
      sel: list(p, "sel"),
      group: p.get("g") || null,
      nest: p.get("nest") === "1",
      view: view(p),
      tab: p.get("tab") === "charts" ? "charts" : "table",
      chart: parseChart(p),
    };
  }
  if (head === "run" && rest.length > 0) {
    return { page: "run", runId: decodeURIComponent(rest[0]), artifact: p.get("a") };
  }
  if (head === "compare") {
    return {
      page: "compare",
      runIds: list(p, "r"),
      chart: parseChart(p),
      scatterX: p.get("sx"),
      scatterY: p.get("sy"),
      axes: p.has("pc") ? p.getAll("pc").filter(Boolean) : null,
    };
  }
  return { page: "experiments", q: p.get("q") ?? "", view: view(p) };
}

export function formatRoute(route: Route): string {
  const p = new URLSearchParams();
  let path: string;
  switch (route.page) {
    case "experiments":
      path = "/experiments";
      if (route.q) p.set("q", route.q);
      if (route.view !== "ACTIVE_ONLY") p.set("view", route.view);
      break;
    case "runs":
      path = "/runs";
      p.set("e", route.experimentIds.join(","));
      if (route.filter) p.set("f", route.filter);
      if (route.sort) p.set("s", route.sort);
      if (route.sort && route.asc) p.set("o", "asc");
      if (route.cols) {
        if (route.cols.length === 0) p.append("c", "");
        for (const c of route.cols) p.append("c", c);
      }
      if (route.sel.length) p.set("sel", route.sel.join(","));
      if (route.group) p.set("g", route.group);
      if (route.nest) p.set("nest", "1");
      if (route.view !== "ACTIVE_ONLY") p.set("view", route.view);
      if (route.tab !== "table") p.set("tab", route.tab);
      putChart(p, route.chart);
      break;
    case "run":
      path = `/run/${encodeURIComponent(route.runId)}`;
      if (route.artifact) p.set("a", route.artifact);
      break;
    case "compare":
      path = "/compare";
      p.set("r", route.runIds.join(","));
      putChart(p, route.chart);
      if (route.scatterX) p.set("sx", route.scatterX);
      if (route.scatterY) p.set("sy", route.scatterY);
      if (route.axes) {
        if (route.axes.length === 0) p.append("pc", "");
        for (const a of route.axes) p.append("pc", a);
      }
      break;
  }
  const qs = p.toString();
  return `#${path}${qs ? `?${qs}` : ""}`;
}

export function runsRoute(experimentIds: string[], patch: Partial<Extract<Route, { page: "runs" }>> = {}): Route {
  return {
    page: "runs",
    experimentIds,
    filter: "",
    sort: null,
    asc: false,
    cols: null,
    sel: [],
    group: null,
    nest: false,
    view: "ACTIVE_ONLY",
    tab: "table",
    chart: DEFAULT_CHART,
    ...patch,
  };
}

export function compareRoute(runIds: string[]): Extract<Route, { page: "compare" }> {
  return { page: "compare", runIds, chart: DEFAULT_CHART, scatterX: null, scatterY: null, axes: null };
}
