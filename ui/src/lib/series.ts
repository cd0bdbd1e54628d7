// Helpers over chart series (parallel x/y arrays sorted by x): hover look-up and aggregation of a group of
// runs into mean ± std.

export interface XY {
  x: ArrayLike<number>;
  y: ArrayLike<number>;
}

/** Index of the point whose x is nearest to `x` (xs sorted ascending), or -1 for an empty series. */
export function nearestIndex(xs: ArrayLike<number>, x: number): number {
  const n = xs.length;
  if (n === 0) return -1;
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  if (lo > 0 && Math.abs(xs[lo - 1] - x) <= Math.abs(xs[lo] - x)) return lo - 1;
  return lo;
}

export interface Aggregate {
  x: number[];
  mean: number[];
  std: number[];
  min: number[];
  max: number[];
  n: number[];
}

/**
 * Mean ± (sample) std over several runs' curves. The x range is cut into `bins` equal bins; each run
 * contributes its average inside a bin, and bins no run reaches are left out. Runs rarely share exact x
 * values once downsampled, so binning is what makes curves of different seeds comparable.
 */
export function aggregateSeries(series: XY[], bins: number): Aggregate {
  const out: Aggregate = { x: [], mean: [], std: [], min: [], max: [], n: [] };
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of series) {
    if (s.x.length) {
      lo = Math.min(lo, s.x[0]);
      hi = Math.max(hi, s.x[s.x.length - 1]);
    }
  }
  if (!Number.isFinite(lo)) return out;
  const width = hi > lo ? (hi - lo) / bins : 1;
  const perBin: number[][] = Array.from({ length: bins }, () => []);
  const xSum = new Array<number>(bins).fill(0);
  const xCount = new Array<number>(bins).fill(0);
  for (const s of series) {
    const sum = new Map<number, [number, number]>();
    for (let i = 0; i < s.x.length; i++) {
      const y = s.y[i];
      if (!Number.isFinite(y)) continue;
      const b = Math.min(bins - 1, Math.floor((s.x[i] - lo) / width));
      const acc = sum.get(b) ?? [0, 0];
      acc[0] += y;
      acc[1] += 1;
      sum.set(b, acc);
      xSum[b] += s.x[i];
      xCount[b] += 1;
    }
    for (const [b, [total, count]] of sum) perBin[b].push(total / count);
  }
  for (let b = 0; b < bins; b++) {
    const vals = perBin[b];
    if (!vals.length) continue;
    const mean = vals.reduce((a, v) => a + v, 0) / vals.length;
    const variance = vals.length > 1 ? vals.reduce((a, v) => a + (v - mean) ** 2, 0) / (vals.length - 1) : 0;
    out.x.push(xSum[b] / xCount[b]);
    out.mean.push(mean);
    out.std.push(Math.sqrt(variance));
    out.min.push(Math.min(...vals));
    out.max.push(Math.max(...vals));
    out.n.push(vals.length);
  }
  return out;
}
