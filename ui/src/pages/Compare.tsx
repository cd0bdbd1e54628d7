import { useMemo, useState } from "preact/hooks";
import { ChartsPanel, metricKeysOf } from "../components/ChartsPanel";
import { ErrorBox, Loading, useDismiss } from "../components/common";
import { ParallelCoords, Scatter, type PlotRow } from "../components/ParallelCoords";
import { metricSummaries } from "../lib/api";
import { columnId, latestMetric, paramValue } from "../lib/columns";
import { formatNumber } from "../lib/format";
import { navigate, useAsync, useSize } from "../lib/hooks";
import type { Route } from "../lib/route";
import { fetchRunsByIds } from "../lib/runsById";
import { colorFor } from "../lib/theme";
import type { Run } from "../lib/types";

type CompareRoute = Extract<Route, { page: "compare" }>;

/** Keys whose values are not the same in every run (a missing value counts as different). */
export function differingKeys(runs: Run[], keys: string[], value: (run: Run, key: string) => unknown): Set<string> {
  const out = new Set<string>();
  for (const k of keys) {
    const first = value(runs[0], k);
    if (runs.some((r) => value(r, k) !== first)) out.add(k);
  }
  return out;
}

function AxisPicker({ all, chosen, onChange }: { all: { id: string; label: string }[]; chosen: string[]; onChange: (ids: string[]) => void }) {
  const [open, setOpen] = useState(false);
  const ref = useDismiss(open, () => setOpen(false));
  return (
    <div style="position:relative" ref={ref}>
      <button onClick={() => setOpen(!open)}>Axes ({chosen.length})</button>
      {open && (
        <div class="popover picker" style="right:0;top:30px">
          {all.map((c) => (
            <label key={c.id}>
              <input
                type="checkbox"
                checked={chosen.includes(c.id)}
                onChange={() => onChange(chosen.includes(c.id) ? chosen.filter((x) => x !== c.id) : [...chosen, c.id])}
              />
              <span class="mono">{c.label}</span>
            </label>
          ))}
        </div>
      )}
    </div>
  );
}

export function ComparePage({ route }: { route: CompareRoute }) {
  const runsQ = useAsync(() => fetchRunsByIds(null, route.runIds), [route.runIds.join(",")]);
  const runs = useMemo(() => runsQ.data ?? [], [runsQ.data]);
  const metricKeys = useMemo(() => metricKeysOf(runs), [runs]);
  const paramKeys = useMemo(() => [...new Set(runs.flatMap((r) => (r.data.params ?? []).map((p) => p.key)))].sort(), [runs]);
  const summaries = useAsync(
    () => (runs.length ? metricSummaries(route.runIds, metricKeys) : Promise.resolve([])),
    [runs, metricKeys.join("\u0000")],
  );
  const [onlyDiff, setOnlyDiff] = useState(false);
  const [sizeRef, size] = useSize<HTMLDivElement>();
  const go = (patch: Partial<CompareRoute>) => navigate({ ...route, ...patch }, true);

  if (runsQ.error) return <div class="page"><ErrorBox error={runsQ.error} /></div>;
  if (!runsQ.data) return <div class="page"><Loading /></div>;

  const diffParams = differingKeys(runs, paramKeys, (r, k) => paramValue(r, k));
  const shownParams = onlyDiff ? paramKeys.filter((k) => diffParams.has(k)) : paramKeys;
  const summaryOf = (runId: string, key: string) => summaries.data?.find((s) => s.run_id === runId && s.key === key);
  const columns = [
    ...paramKeys.map((k) => ({ id: columnId("param", k), label: k })),
    ...metricKeys.map((k) => ({ id: columnId("metric", k), label: k })),
  ];
  const rows: PlotRow[] = runs.map((r, i) => ({
    id: r.info.run_id,
    label: r.info.run_name || r.info.run_id,
    color: colorFor(i),
    values: Object.fromEntries([
      ...paramKeys.map((k) => [columnId("param", k), paramValue(r, k)]),
      ...metricKeys.map((k) => [columnId("metric", k), latestMetric(r, k)]),
    ]),
  }));
  const defaultAxes = [
    ...paramKeys.filter((k) => diffParams.has(k)).slice(0, 6).map((k) => columnId("param", k)),
    ...metricKeys.slice(0, 3).map((k) => columnId("metric", k)),
  ];
  const axes = (route.axes ?? defaultAxes).filter((id) => columns.some((c) => c.id === id));
  const sx = route.scatterX ?? defaultAxes[0] ?? columns[0]?.id;
  const sy = route.scatterY ?? columnId("metric", metricKeys[0] ?? "") ?? columns[1]?.id;
  const colOf = (id: string | undefined) => columns.find((c) => c.id === id);
  const plotWidth = Math.max(400, size.width - 30);

  return (
    <div class="page" id="compare-page" style="display:flex;flex-direction:column;gap:12px" ref={sizeRef}>
      <div class="toolbar">
        <a href="#/experiments">Experiments</a>
        <span class="muted">/</span>
        <h1>Compare {runs.length} runs</h1>
        {runs.map((r, i) => (
          <span key={r.info.run_id} class="badge" style={{ borderLeft: `4px solid ${colorFor(i)}` }}>
            <a href={`#/run/${r.info.run_id}`}>{r.info.run_name}</a>{" "}
            <a
              href="#"
              title="Remove from comparison"
              onClick={(e) => {
                e.preventDefault();
                go({ runIds: route.runIds.filter((id) => id !== r.info.run_id) });
              }}
            >
              ×
            </a>
          </span>
        ))}
      </div>
      <section class="card" id="compare-params">
        <div class="toolbar" style="margin-bottom:8px">
          <h2 style="margin:0">Parameters</h2>
          <span class="hint">{diffParams.size} of {paramKeys.length} differ (highlighted)</span>
          <span class="grow" />
          <label>
            <input id="only-diff" type="checkbox" checked={onlyDiff} onChange={(e) => setOnlyDiff(e.currentTarget.checked)} /> only differences
          </label>
        </div>
        <div style="overflow:auto;max-height:50vh">
          <table class="simple">
            <thead>
              <tr>
                <th>Param</th>
                {runs.map((r) => (
                  <th key={r.info.run_id}>{r.info.run_name}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {shownParams.map((k) => (
                <tr key={k} class={diffParams.has(k) ? "diff" : ""} data-param={k}>
                  <td class="mono">{k}</td>
                  {runs.map((r) => (
                    <td key={r.info.run_id} class="mono cell-wrap">
                      {paramValue(r, k) ?? <span class="muted">—</span>}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
      <section class="card" id="compare-metrics">
        <h2>Metrics (latest · min · max)</h2>
        <ErrorBox error={summaries.error} />
        <div style="overflow:auto;max-height:50vh">
          <table class="simple">
            <thead>
              <tr>
                <th>Metric</th>
                {runs.map((r) => (
                  <th key={r.info.run_id}>{r.info.run_name}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {metricKeys.map((k) => {
                const values = runs.map((r) => latestMetric(r, k));
                return (
                  <tr key={k}>
                    <td class="mono">{k}</td>
                    {runs.map((r, i) => {
                      const s = summaryOf(r.info.run_id, k);
                      return (
                        <td key={r.info.run_id} class="num">
                          {formatNumber(values[i])}
                          {s && (
                            <span class="hint">
                              {" "}
                              ({formatNumber(s.min)} · {formatNumber(s.max)})
                            </span>
                          )}
                        </td>
                      );
                    })}
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      </section>
      <div class="grid2">
        <section class="card" id="compare-parallel">
          <div class="toolbar" style="margin-bottom:8px">
            <h2 style="margin:0">Parallel coordinates</h2>
            <span class="grow" />
            <AxisPicker all={columns} chosen={axes} onChange={(a) => go({ axes: a })} />
          </div>
          <ParallelCoords rows={rows} columns={axes.map((id) => colOf(id)!)} width={size.width > 1000 ? plotWidth / 2 - 20 : plotWidth} />
        </section>
        <section class="card" id="compare-scatter">
          <div class="toolbar" style="margin-bottom:8px">
            <h2 style="margin:0">Scatter</h2>
            <span class="grow" />
            <label>
              x{" "}
              <select id="scatter-x" value={sx} onChange={(e) => go({ scatterX: e.currentTarget.value })}>
                {columns.map((c) => (
                  <option key={c.id} value={c.id}>
                    {c.id.startsWith("param:") ? "param " : "metric "}
                    {c.label}
                  </option>
                ))}
              </select>
            </label>
            <label>
              y{" "}
              <select id="scatter-y" value={sy} onChange={(e) => go({ scatterY: e.currentTarget.value })}>
                {columns.map((c) => (
                  <option key={c.id} value={c.id}>
                    {c.id.startsWith("param:") ? "param " : "metric "}
                    {c.label}
                  </option>
                ))}
              </select>
            </label>
          </div>
          {colOf(sx) && colOf(sy) ? (
            <Scatter rows={rows} xCol={colOf(sx)!} yCol={colOf(sy)!} width={size.width > 1000 ? plotWidth / 2 - 20 : plotWidth} />
          ) : (
            <p class="muted">Nothing to plot.</p>
          )}
        </section>
      </div>
      <section class="card" id="compare-charts">
        <h2>Charts</h2>
        <ChartsPanel runs={runs} settings={route.chart} onSettings={(chart) => go({ chart })} />
      </section>
    </div>
  );
}
