// Exponential moving average with TensorBoard's debiasing, so the first points are not pulled towards 0.
// Non-finite values pass through unchanged and do not disturb the average.
export function smoothEma(ys: ArrayLike<number>, weight: number): number[] {
  const out = new Array<number>(ys.length);
  if (weight <= 0) {
    for (let i = 0; i < ys.length; i++) out[i] = ys[i];
    return out;
  }
  let last = 0;
  let n = 0;
  for (let i = 0; i < ys.length; i++) {
    const y = ys[i];
    if (!Number.isFinite(y)) {
      out[i] = y;
      continue;
    }
    last = last * weight + (1 - weight) * y;
    n++;
    out[i] = last / (1 - Math.pow(weight, n));
  }
  return out;
}
