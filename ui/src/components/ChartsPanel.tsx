import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { bucketedMetrics } from "../lib/api";
import { useSize } from "../lib/hooks";
import type { ChartSettings } from "../lib/route";
import { aggregateSeries } from "../lib/series";
import { smoothEma } from "../lib/smoothing";
import { colorFor } from "../lib/theme";
import type { BucketedSeries, Run, XAxis } from "../lib/types";
import { ErrorBox, useDismiss } from "./common";
import { LineChart, type ChartBand, type ChartLine } from "./LineChart";

interface Props {
  runs: Run[];
  settings: ChartSettings;
  onSettings: (s: ChartSettings) => void;
  /** When given, runs are aggregated per group: mean line and a ±1 std band. */
  groupOf?: (run: Run) => string | null;
  note?: string;
}

const AGG_BINS = 300;

/** Metric keys logged by any of the runs (their latest values name every key they have). */
export function metricKeysOf(runs: Run[]): string[] {
  const keys = new Set<string>();
  for (const r of runs) for (const m of r.data.metrics ?? []) keys.add(m.key);
  return [...keys].sort();
}

function useVisible<E extends Element>(): [(el: E | null) => void, boolean] {
  const [visible, setVisible] = useState(false);
  const obs = useRef<IntersectionObserver | null>(null);
  const ref = (el: E | null) => {
    obs.current?.disconnect();
    if (!el) return;
    obs.current = new IntersectionObserver(([e]) => e.isIntersecting && setVisible(true), { rootMargin: "200px" });
    obs.current.observe(el);
  };
  return [ref, visible];
}

export function buildLines(
  series: BucketedSeries[],
  runs: Run[],
  smoothing: number,
  groupOf?: (run: Run) => string | null,
): { lines: ChartLine[]; bands: ChartBand[] } {
  const index = new Map(runs.map((r, i) => [r.info.run_id, i]));
  const lines: ChartLine[] = [];
  const bands: ChartBand[] = [];
  if (groupOf) {
    const byGroup = new Map<string, BucketedSeries[]>();
    for (const s of series) {
      const run = runs[index.get(s.run_id) ?? -1];
      if (!run) continue;
      const g = groupOf(run) ?? "(none)";
      byGroup.set(g, [...(byGroup.get(g) ?? []), s]);
    }
    [...byGroup.entries()].forEach(([g, members], i) => {
      const agg = aggregateSeries(members, AGG_BINS);
      const color = colorFor(i);
      const mean = smoothEma(agg.mean, smoothing);
      lines.push({ id: `g:${g}`, label: `${g} (n=${members.length})`, color, x: agg.x, y: mean });
      bands.push({
        color,
        x: agg.x,
        lo: mean.map((m, j) => m - agg.std[j]),
        hi: mean.map((m, j) => m + agg.std[j]),
      });
    });
    return { lines, bands };
  }
  for (const s of series) {
    const i = index.get(s.run_id);
    if (i === undefined) continue;
    const run = runs[i];
    const color = colorFor(i);
    const label = run.info.run_name || run.info.run_id.slice(0, 8);
    if (smoothing > 0) {
      lines.push({ id: `${s.run_id}:raw`, label, color, x: s.x, y: s.y, faint: true });
      lines.push({ id: s.run_id, label, color, x: s.x, y: smoothEma(s.y, smoothing) });
    } else lines.push({ id: s.run_id, label, color, x: s.x, y: s.y });
  }
  return { lines, bands };
}

function ChartCard(props: {
  metricKey: string;
  runs: Run[];
  settings: ChartSettings;
  onZoom: (z: [number, number] | null) => void;
  groupOf?: (run: Run) => string | null;
  width: number;
}) {
  const { metricKey, runs, settings } = props;
  const [ref, visible] = useVisible<HTMLDivElement>();
  const [series, setSeries] = useState<BucketedSeries[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const runKey = runs.map((r) => `${r.info.run_id}:${r.info.status}:${r.data.metrics?.find((m) => m.key === metricKey)?.step ?? ""}`).join(",");
  useEffect(() => {
    if (!visible || !runs.length) return;
    const ctl = new AbortController();
    bucketedMetrics({
      runIds: runs.map((r) => r.info.run_id),
      keys: [metricKey],
      xAxis: settings.x,
      xMin: settings.zoom?.[0],
      xMax: settings.zoom?.[1],
      buckets: Math.max(200, Math.min(2000, Math.round(props.width))),
      signal: ctl.signal,
    }).then(
      (s) => {
        setSeries(s);
        setError(null);
      },
      (e) => e.name !== "AbortError" && setError(e),
    );
    return () => ctl.abort();
  }, [visible, runKey, metricKey, settings.x, settings.zoom?.[0], settings.zoom?.[1]]);
  const { lines, bands } = useMemo(
    () => (series ? buildLines(series, runs, settings.smooth, props.groupOf) : { lines: [], bands: [] }),
    [series, settings.smooth, props.groupOf],
  );
  const sampled = series?.some((s) => s.sampled);
  const points = series?.reduce((a, s) => a + s.points_in_range, 0) ?? 0;
  return (
    <div class="chart-card" ref={ref} data-metric={metricKey}>
      <h3>
        <span class="mono">{metricKey}</span>
        <span class="hint" title={sampled ? "Downsampled on the server keeping each bucket's min and max" : "Every point is drawn"}>
          {series ? `${points.toLocaleString()} pts${sampled ? " · min/max sampled" : ""}` : ""}
        </span>
      </h3>
      <ErrorBox error={error} />
      {series ? (
        <LineChart
          lines={lines}
          bands={bands}
          xAxis={settings.x}
          logY={settings.logY}
          zoom={settings.zoom}
          onZoom={props.onZoom}
          width={props.width - 18}
        />
      ) : (
        <div class="muted" style="height:240px">
          {visible ? "Loading…" : ""}
        </div>
      )}
    </div>
  );
}

function KeyPicker({ all, chosen, onChange }: { all: string[]; chosen: string[] | null; onChange: (k: string[] | null) => void }) {
  const [open, setOpen] = useState(false);
  const [q, setQ] = useState("");
  const ref = useDismiss(open, () => setOpen(false));
  const set = new Set(chosen ?? all);
  const shown = all.filter((k) => k.toLowerCase().includes(q.toLowerCase()));
  return (
    <div style="position:relative" ref={ref}>
      <button id="metric-picker" onClick={() => setOpen(!open)}>
        Metrics ({chosen ? chosen.length : "all"} of {all.length})
      </button>
      {open && (
        <div class="popover picker" style="left:0;top:30px">
          <input type="search" placeholder="Search metrics" value={q} onInput={(e) => setQ(e.currentTarget.value)} style="width:100%" autoFocus />
          <div class="toolbar" style="margin:6px 0">
            <button onClick={() => onChange(null)}>All</button>
            <button onClick={() => onChange(shown)}>Only matching</button>
            <button onClick={() => onChange([])}>None</button>
          </div>
          {shown.slice(0, 500).map((k) => (
            <label key={k}>
              <input
                type="checkbox"
                checked={set.has(k)}
                onChange={() => onChange(set.has(k) ? [...set].filter((x) => x !== k) : [...set, k])}
              />
              <span class="mono">{k}</span>
            </label>
          ))}
        </div>
      )}
    </div>
  );
}

export function ChartsPanel(props: Props) {
  const { settings, onSettings, runs } = props;
  const all = useMemo(() => metricKeysOf(runs), [runs]);
  const keys = settings.keys ? settings.keys.filter((k) => all.includes(k)) : all;
  const [sizeRef, size] = useSize<HTMLDivElement>();
  const columns = Math.max(1, Math.floor(size.width / 440));
  const width = size.width ? (size.width - (columns - 1) * 12) / columns : 420;
  const set = (patch: Partial<ChartSettings>) => onSettings({ ...settings, ...patch });
  return (
    <div id="charts-panel">
      <div class="toolbar" style="margin-bottom:10px">
        <KeyPicker all={all} chosen={settings.keys} onChange={(k) => set({ keys: k })} />
        <label>
          x:{" "}
          <select id="x-axis" value={settings.x} onChange={(e) => set({ x: e.currentTarget.value as XAxis, zoom: null })}>
            <option value="step">Step</option>
            <option value="time">Wall time</option>
            <option value="relative">Relative time</option>
          </select>
        </label>
        <label>
          <input id="log-y" type="checkbox" checked={settings.logY} onChange={(e) => set({ logY: e.currentTarget.checked })} /> log y
        </label>
        <label title="Exponential moving average (debiased)">
          smoothing{" "}
          <input
            id="smoothing"
            type="range"
            min={0}
            max={0.99}
            step={0.01}
            value={settings.smooth}
            onChange={(e) => set({ smooth: Number(e.currentTarget.value) })}
          />{" "}
          <span class="mono">{settings.smooth.toFixed(2)}</span>
        </label>
        <button id="reset-zoom" disabled={!settings.zoom} onClick={() => set({ zoom: null })}>
          Reset zoom
        </button>
        <span class="hint">Drag to zoom (refetched at full resolution) · double-click to reset</span>
        {props.note && <span class="hint">{props.note}</span>}
      </div>
      <div class="charts" ref={sizeRef}>
        {runs.length === 0 && <p class="muted">No runs to chart.</p>}
        {runs.length > 0 && keys.length === 0 && <p class="muted">These runs have no metrics.</p>}
        {keys.map((k) => (
          <ChartCard
            key={k}
            metricKey={k}
            runs={runs}
            settings={settings}
            width={width}
            groupOf={props.groupOf}
            onZoom={(zoom) => set({ zoom })}
          />
        ))}
      </div>
    </div>
  );
}
