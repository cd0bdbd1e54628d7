import { useState } from "preact/hooks";
import { makeAxis, type Value } from "../lib/axes";
import { formatNumber } from "../lib/format";

export interface PlotRow {
  id: string;
  label: string;
  color: string;
  values: Record<string, Value>;
}

const H = 300;
const PAD = { top: 30, bottom: 20, side: 60 };

/** Parallel coordinates: one vertical axis per column, one polyline per run; hover highlights a run. */
export function ParallelCoords({ rows, columns, width }: { rows: PlotRow[]; columns: { id: string; label: string }[]; width: number }) {
  const [hover, setHover] = useState<string | null>(null);
  if (columns.length < 2) return <p class="muted">Choose at least two axes.</p>;
  const axes = columns.map((c) => makeAxis(rows.map((r) => r.values[c.id]), formatNumber, 5));
  const step = (width - 2 * PAD.side) / (columns.length - 1);
  const x = (i: number) => PAD.side + i * step;
  const y = (p: number) => PAD.top + (1 - p) * (H - PAD.top - PAD.bottom);
  return (
    <svg width={width} height={H} id="parallel-coords" role="img" aria-label="Parallel coordinates">
      {rows.map((r) => {
        const pts = columns.map((c, i) => {
          const p = axes[i].pos(r.values[c.id]);
          return p === null ? null : `${x(i).toFixed(1)},${y(p).toFixed(1)}`;
        });
        const segments: string[][] = [[]];
        for (const p of pts) {
          if (p === null) segments.push([]);
          else segments[segments.length - 1].push(p);
        }
        const faded = hover !== null && hover !== r.id;
        return (
          <g key={r.id} onMouseEnter={() => setHover(r.id)} onMouseLeave={() => setHover(null)}>
            <title>{r.label}</title>
            {segments
              .filter((s) => s.length > 1)
              .map((s, i) => (
                <polyline
                  key={i}
                  points={s.join(" ")}
                  fill="none"
                  stroke={r.color}
                  stroke-width={hover === r.id ? 3 : 1.6}
                  opacity={faded ? 0.15 : 0.85}
                />
              ))}
          </g>
        );
      })}
      {columns.map((c, i) => (
        <g key={c.id}>
          <line x1={x(i)} x2={x(i)} y1={y(0)} y2={y(1)} stroke="var(--fg-2)" />
          <text x={x(i)} y={14} text-anchor="middle" fill="var(--fg)" font-size="11" font-weight="600">
            {c.label.length > 18 ? c.label.slice(0, 17) + "…" : c.label}
          </text>
          {axes[i].ticks.slice(0, 12).map((t, j) => (
            <text key={j} x={x(i) + 4} y={y(t.at) + 3} fill="var(--fg-2)" font-size="10">
              {t.label.length > 12 ? t.label.slice(0, 11) + "…" : t.label}
            </text>
          ))}
        </g>
      ))}
    </svg>
  );
}

/** Scatter of two columns, one dot per run (hover shows the run). */
export function Scatter({ rows, xCol, yCol, width }: { rows: PlotRow[]; xCol: { id: string; label: string }; yCol: { id: string; label: string }; width: number }) {
  const [hover, setHover] = useState<PlotRow | null>(null);
  const h = 300;
  const pad = { l: 70, r: 20, t: 10, b: 40 };
  const ax = makeAxis(rows.map((r) => r.values[xCol.id]), formatNumber, 5);
  const ay = makeAxis(rows.map((r) => r.values[yCol.id]), formatNumber, 5);
  const px = (p: number) => pad.l + p * (width - pad.l - pad.r);
  const py = (p: number) => pad.t + (1 - p) * (h - pad.t - pad.b);
  return (
    <svg width={width} height={h} id="scatter-plot" role="img" aria-label={`${yCol.label} against ${xCol.label}`}>
      <line x1={pad.l} x2={width - pad.r} y1={py(0)} y2={py(0)} stroke="var(--fg-2)" />
      <line x1={pad.l} x2={pad.l} y1={py(0)} y2={py(1)} stroke="var(--fg-2)" />
      {ax.ticks.slice(0, 12).map((t, i) => (
        <text key={`x${i}`} x={px(t.at)} y={h - pad.b + 14} text-anchor="middle" fill="var(--fg-2)" font-size="10">
          {t.label}
        </text>
      ))}
      {ay.ticks.slice(0, 12).map((t, i) => (
        <text key={`y${i}`} x={pad.l - 6} y={py(t.at) + 3} text-anchor="end" fill="var(--fg-2)" font-size="10">
          {t.label}
        </text>
      ))}
      <text x={(width + pad.l) / 2} y={h - 4} text-anchor="middle" fill="var(--fg)" font-size="11">
        {xCol.label}
      </text>
      <text x={12} y={h / 2} text-anchor="middle" fill="var(--fg)" font-size="11" transform={`rotate(-90 12 ${h / 2})`}>
        {yCol.label}
      </text>
      {rows.map((r) => {
        const a = ax.pos(r.values[xCol.id]);
        const b = ay.pos(r.values[yCol.id]);
        if (a === null || b === null) return null;
        return (
          <circle
            key={r.id}
            cx={px(a)}
            cy={py(b)}
            r={hover?.id === r.id ? 7 : 5}
            fill={r.color}
            opacity={0.85}
            onMouseEnter={() => setHover(r)}
            onMouseLeave={() => setHover(null)}
          >
            <title>{`${r.label}\n${xCol.label}: ${r.values[xCol.id]}\n${yCol.label}: ${r.values[yCol.id]}`}</title>
          </circle>
        );
      })}
      {hover && (
        <text x={width - pad.r} y={pad.t + 12} text-anchor="end" fill="var(--fg)" font-size="11">
          {hover.label}
        </text>
      )}
    </svg>
  );
}
