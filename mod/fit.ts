/**
 * Power-law fits for the scaling stage: ordinary least squares in log-log space,
 * log10 y = intercept + slope · log10 x, with R² (in log space) and a seeded bootstrap percentile
 * interval on the slope. The seed paper claims the fraction of nonzero (alive) features falls as
 * 1 / size, i.e. slope −1; `agreesWithPaper` turns a fit into a one-line verdict on that claim.
 *
 * @module
 */
import { Rng } from "./rng.ts";

export interface PowerLawFitOptions {
  /** Bootstrap resamples (default 1000; 0 skips the interval). */
  bootstrap?: number;
  /** Seed of the resampling (default 0). */
  seed?: number;
  /** Confidence level of the percentile interval (default 0.95). */
  ci?: number;
}

export interface SlopeInterval {
  level: number;
  /** NaN when no resample was usable. */
  low: number;
  high: number;
  /** Resamples drawn, used, and skipped because every drawn x was the same (no slope exists). */
  resamples: number;
  used: number;
  skipped: number;
}

export interface PowerLawFit {
  slope: number;
  intercept: number;
  /** Coefficient of determination of the log-log line. */
  r2: number;
  n: number;
  ci: SlopeInterval;
}

/** Least-squares power law y = 10^intercept · x^slope with a bootstrap interval on the slope. */
export function fitPowerLaw(x: number[], y: number[], opts: PowerLawFitOptions = {}): PowerLawFit {
  if (x.length !== y.length) {
    throw new Error(`Power-law fit needs as many y as x: got ${x.length} x and ${y.length} y`);
  }
  const lx = logs(x, "x"), ly = logs(y, "y");
  const n = lx.length;
  if (n < 2) throw new Error(`Power-law fit needs at least 2 points, got ${n}`);
  const all = Array.from({ length: n }, (_, i) => i);
  const line = leastSquares(lx, ly, all);
  if (!line) throw new Error(`Power-law fit needs two distinct x values, every x is ${x[0]}`);

  const level = opts.ci ?? 0.95;
  if (!(level > 0 && level < 1)) throw new Error(`Confidence level ${level} is not in (0, 1)`);
  const resamples = opts.bootstrap ?? 1000;
  if (!Number.isInteger(resamples) || resamples < 0) {
    throw new Error(`Bootstrap resamples ${resamples} is not a non-negative integer`);
  }
  const rng = new Rng(opts.seed ?? 0);
  const slopes: number[] = [];
  const pick = new Array<number>(n);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < n; i++) pick[i] = rng.int(n);
    const fit = leastSquares(lx, ly, pick);
    if (fit) slopes.push(fit.slope);
  }
  slopes.sort((a, b) => a - b);
  const tail = (1 - level) / 2;
  return {
    slope: line.slope,
    intercept: line.intercept,
    r2: line.r2,
    n,
    ci: {
      level,
      low: quantile(slopes, tail),
      high: quantile(slopes, 1 - tail),
      resamples,
      used: slopes.length,
      skipped: resamples - slopes.length,
    },
  };
}

/** The fitted y at x: 10^intercept · x^slope. */
export function powerLawAt(fit: Pick<PowerLawFit, "slope" | "intercept">, x: number): number {
  return 10 ** (fit.intercept + fit.slope * Math.log10(x));
}

/**
 * A one-line verdict on whether the slope matches the paper's (−1 unless `expected` says
 * otherwise). It starts with one of four words:
 * - "consistent": the bootstrap interval covers the expected slope;
 * - "close": the interval excludes it but |slope − expected| ≤ tolerance (default 0.1, i.e. the
 *   size exponent is within 10% of −1: a narrow interval over few sizes should not turn a slope of
 *   −0.95 into a refutation);
 * - "differs": neither;
 * - "inconclusive": fewer than 3 points or no usable resample, so no interval can be trusted
 *   (with 2 points the line is exact and the bootstrap says nothing).
 */
export function agreesWithPaper(
  fit: PowerLawFit,
  opts: { expected?: number; tolerance?: number } = {},
): string {
  const expected = opts.expected ?? -1, tolerance = opts.tolerance ?? 0.1;
  const gap = Math.abs(fit.slope - expected);
  const pct = Math.round(fit.ci.level * 100);
  const slope = `slope ${fmt(fit.slope)} (${pct}% CI ${fmt(fit.ci.low)} to ${fmt(fit.ci.high)}, ` +
    `R² ${fit.r2.toFixed(3)}, n = ${fit.n})`;
  if (fit.n < 3 || fit.ci.used === 0) {
    return `inconclusive: ${slope}; too few points to test the paper's slope of ${fmt(expected)}` +
      `, the gap is ${fmt(gap)}`;
  }
  if (fit.ci.low <= expected && expected <= fit.ci.high) {
    return `consistent with the paper: ${slope} covers ${fmt(expected)}`;
  }
  if (gap <= tolerance) {
    return `close to the paper: ${slope} excludes ${fmt(expected)} but lies within ` +
      `${fmt(tolerance)} of it (gap ${fmt(gap)})`;
  }
  return `differs from the paper: ${slope} excludes ${fmt(expected)} by ${fmt(gap)}`;
}

function logs(values: number[], name: string): number[] {
  return values.map((v, i) => {
    if (!Number.isFinite(v) || v <= 0) {
      throw new Error(`Power-law fit needs positive finite ${name}: ${name}[${i}] is ${v}`);
    }
    return Math.log10(v);
  });
}

/** OLS of ly on lx over the given indices (repeats allowed); null when every x is the same. */
function leastSquares(
  lx: number[],
  ly: number[],
  idx: number[],
): { slope: number; intercept: number; r2: number } | null {
  const m = idx.length;
  let mx = 0, my = 0;
  for (const i of idx) {
    mx += lx[i];
    my += ly[i];
  }
  mx /= m;
  my /= m;
  let sxx = 0, sxy = 0, syy = 0;
  for (const i of idx) {
    const dx = lx[i] - mx, dy = ly[i] - my;
    sxx += dx * dx;
    sxy += dx * dy;
    syy += dy * dy;
  }
  // Relative test, so that equal x read back from floats (tiny nonzero spread) count as equal.
  if (sxx <= 1e-12 * Math.max(1, mx * mx)) return null;
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  let sse = 0;
  for (const i of idx) sse += (ly[i] - intercept - slope * lx[i]) ** 2;
  // All y equal: the flat line is exact, and R² = 1 rather than 0/0.
  const r2 = syy > 0 ? 1 - sse / syy : 1;
  return { slope, intercept, r2 };
}

/** Linear-interpolation quantile (type 7) of sorted values; NaN when empty. */
function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

function fmt(v: number): string {
  return Number.isFinite(v) ? (Math.round(v * 1000) / 1000).toString() : String(v);
}
