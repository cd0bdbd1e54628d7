import { useEffect, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import { formatDuration, formatNumber, formatTime } from "../lib/format";
import { nearestIndex } from "../lib/series";
import type { XAxis } from "../lib/types";

export interface ChartLine {
  id: string;
  label: string;
  color: string;
  x: number[];
  y: number[];
  /** Faint lines (raw data under a smoothed curve) are drawn but not listed in the tooltip. */
  faint?: boolean;
}

export interface ChartBand {
  color: string;
  x: number[];
  lo: number[];
  hi: number[];
}

interface Props {
  lines: ChartLine[];
  bands?: ChartBand[];
  xAxis: XAxis;
  logY: boolean;
  zoom: [number, number] | null;
  onZoom: (range: [number, number] | null) => void;
  height?: number;
  width: number;
}

interface Hover {
  left: number;
  top: number;
  x: number;
  items: { label: string; color: string; y: number }[];
}

const TOOLTIP_ROWS = 15;
const HOVER_PX = 40;

export function formatX(x: number, axis: XAxis): string {
  if (axis === "time") return formatTime(x);
  if (axis === "relative") return formatDuration(x);
  return formatNumber(x);
}

function withAlpha(color: string, alpha: number): string {
  const a = Math.round(alpha * 255)
    .toString(16)
    .padStart(2, "0");
  return color.length === 7 ? color + a : color;
}

/** Values at or below zero cannot be drawn on a log axis. */
function forLog(line: ChartLine): ChartLine {
  const x: number[] = [];
  const y: number[] = [];
  line.y.forEach((v, i) => {
    if (v > 0) {
      x.push(line.x[i]);
      y.push(v);
    }
  });
  return { ...line, x, y };
}

/**
 * A line chart of many series with their own x values (uPlot "mode 2"), drawn on a canvas. Drag to zoom
 * (the parent re-fetches that range at full resolution), double-click to reset. The tooltip lists every
 * series' value nearest the cursor.
 */
export function LineChart(props: Props) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const [hover, setHover] = useState<Hover | null>(null);
  const height = props.height ?? 240;
  const onZoom = useRef(props.onZoom);
  onZoom.current = props.onZoom;

  useEffect(() => {
    const lines = props.logY ? props.lines.map(forLog) : props.lines;
    const style = getComputedStyle(document.documentElement);
    const fg = style.getPropertyValue("--fg-2").trim() || "#666";
    const grid = style.getPropertyValue("--border").trim() || "#ddd";
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const bands = props.bands ?? [];
    const opts: uPlot.Options = {
      mode: 2,
      width: Math.max(200, props.width),
      height,
      ms: 1,
      legend: { show: false },
      cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false }, focus: { prox: -1 } },
      select: { show: true, left: 0, top: 0, width: 0, height: 0 },
      scales: {
        x: {
          time: props.xAxis === "time",
          auto: !props.zoom,
          range: props.zoom ? () => props.zoom as [number, number] : undefined,
        },
        y: { distr: props.logY ? 3 : 1 },
      },
      axes: [
        {
          ...axis,
          values: props.xAxis === "relative" ? (_u, vals) => vals.map((v) => formatDuration(v)) : undefined,
        },
        { ...axis, size: 60, values: (_u, vals) => vals.map((v) => formatNumber(v)) },
      ],
      series: [
        {},
        ...lines.map((l) => ({
          label: l.label,
          stroke: l.faint ? withAlpha(l.color, 0.28) : l.color,
          width: l.faint ? 1 : 1.5,
          paths: uPlot.paths.linear!(),
          points: { show: false },
          facets: [
            { scale: "x", auto: true },
            { scale: "y", auto: true },
          ],
        })),
      ] as uPlot.Series[],
      hooks: {
        drawAxes: [
          (u) => {
            const ctx = u.ctx;
            for (const b of bands) {
              if (!b.x.length) continue;
              ctx.save();
              ctx.fillStyle = withAlpha(b.color, 0.18);
              ctx.beginPath();
              b.x.forEach((x, i) => ctx.lineTo(u.valToPos(x, "x", true), u.valToPos(b.hi[i], "y", true)));
              for (let i = b.x.length - 1; i >= 0; i--) ctx.lineTo(u.valToPos(b.x[i], "x", true), u.valToPos(b.lo[i], "y", true));
              ctx.closePath();
              ctx.fill();
              ctx.restore();
            }
          },
        ],
        setSelect: [
          (u) => {
            if (u.select.width < 5) return;
            const lo = u.posToVal(u.select.left, "x");
            const hi = u.posToVal(u.select.left + u.select.width, "x");
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            onZoom.current([lo, hi]);
          },
        ],
        setCursor: [
          (u) => {
            const left = u.cursor.left ?? -1;
            if (left < 0) {
              setHover(null);
              return;
            }
            const x = u.posToVal(left, "x");
            const tol = Math.abs(u.posToVal(left + HOVER_PX, "x") - x);
            const items: Hover["items"] = [];
            for (const l of lines) {
              if (l.faint) continue;
              const i = nearestIndex(l.x, x);
              if (i >= 0 && Math.abs(l.x[i] - x) <= tol) items.push({ label: l.label, color: l.color, y: l.y[i] });
            }
            items.sort((a, b) => b.y - a.y);
            setHover({ left, top: u.cursor.top ?? 0, x, items });
          },
        ],
      },
    };
    const data = [null, ...lines.map((l) => [l.x, l.y])] as unknown as uPlot.AlignedData;
    plot.current?.destroy();
    plot.current = new uPlot(opts, data, host.current!);
    const el = host.current!;
    const reset = () => onZoom.current(null);
    el.addEventListener("dblclick", reset);
    return () => {
      el.removeEventListener("dblclick", reset);
      plot.current?.destroy();
      plot.current = null;
    };
  }, [props.lines, props.bands, props.xAxis, props.logY, props.zoom, height]);

  useEffect(() => {
    plot.current?.setSize({ width: Math.max(200, props.width), height });
  }, [props.width, height]);

  return (
    <div style="position:relative" onMouseLeave={() => setHover(null)}>
      <div ref={host} />
      {hover && hover.items.length > 0 && (
        <div
          class="chart-tip"
          style={{
            left: Math.min(hover.left + 70, Math.max(0, props.width - 260)),
            top: Math.max(0, hover.top - 10),
          }}
        >
          <div class="muted">{formatX(hover.x, props.xAxis)}</div>
          <table>
            <tbody>
              {hover.items.slice(0, TOOLTIP_ROWS).map((it, i) => (
                <tr key={i}>
                  <td>
                    <span class="sw" style={{ background: it.color }} />
                    {it.label}
                  </td>
                  <td class="num">{formatNumber(it.y)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {hover.items.length > TOOLTIP_ROWS && <div class="muted">+{hover.items.length - TOOLTIP_ROWS} more</div>}
        </div>
      )}
    </div>
  );
}
