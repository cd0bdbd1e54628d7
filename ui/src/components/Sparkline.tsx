/** A tiny SVG line of a series (already downsampled by the server). */
export function Sparkline({ x, y, width = 120, height = 24 }: { x: number[]; y: number[]; width?: number; height?: number }) {
  const pts = x.map((xv, i) => [xv, y[i]] as const).filter(([, v]) => Number.isFinite(v));
  if (pts.length < 2) return <svg class="spark" width={width} height={height} />;
  const [x0, x1] = [pts[0][0], pts[pts.length - 1][0]];
  const ys = pts.map(([, v]) => v);
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const sx = (v: number) => (x1 > x0 ? ((v - x0) / (x1 - x0)) * (width - 2) + 1 : width / 2);
  const sy = (v: number) => (y1 > y0 ? height - 2 - ((v - y0) / (y1 - y0)) * (height - 4) : height / 2);
  const d = pts.map(([a, b]) => `${sx(a).toFixed(1)},${sy(b).toFixed(1)}`).join(" ");
  return (
    <svg class="spark" width={width} height={height} aria-hidden="true">
      <polyline points={d} fill="none" stroke="var(--accent)" stroke-width="1.3" />
    </svg>
  );
}
