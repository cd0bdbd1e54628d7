// Axes for the parallel-coordinates and scatter plots: numeric when every present value is a number,
// categorical otherwise. `pos` maps a value to 0..1 (null when missing).

export type Value = string | number | undefined | null;

export interface Axis {
  kind: "numeric" | "categorical";
  pos: (v: Value) => number | null;
  ticks: { at: number; label: string }[];
}

function asNumber(v: Value): number | null {
  if (v === undefined || v === null || v === "") return null;
  const n = typeof v === "number" ? v : Number(v);
  return Number.isFinite(n) ? n : null;
}

export function makeAxis(values: Value[], format: (n: number) => string = String, tickCount = 5): Axis {
  const present = values.filter((v) => v !== undefined && v !== null && v !== "");
  const nums = present.map(asNumber);
  if (present.length && nums.every((n) => n !== null)) {
    const lo = Math.min(...(nums as number[]));
    const hi = Math.max(...(nums as number[]));
    const span = hi - lo;
    const pos = (v: Value) => {
      const n = asNumber(v);
      return n === null ? null : span ? (n - lo) / span : 0.5;
    };
    const ticks = span
      ? Array.from({ length: tickCount }, (_, i) => ({ at: i / (tickCount - 1), label: format(lo + (span * i) / (tickCount - 1)) }))
      : [{ at: 0.5, label: format(lo) }];
    return { kind: "numeric", pos, ticks };
  }
  const cats = [...new Set(present.map(String))].sort();
  const index = new Map(cats.map((c, i) => [c, i]));
  const at = (i: number) => (cats.length > 1 ? i / (cats.length - 1) : 0.5);
  return {
    kind: "categorical",
    pos: (v) => (v === undefined || v === null || v === "" ? null : at(index.get(String(v)) ?? 0)),
    ticks: cats.map((c, i) => ({ at: at(i), label: c })),
  };
}
