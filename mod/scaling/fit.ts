/**
 * Straight-line fits for the scaling stage: ordinary least squares y = intercept + slope · x with a
 * Student-t interval on the slope, a t interval on a mean, and a verdict on the slope's sign.
 *
 * Maths. With n points, x̄ and ȳ their means, Sxx = Σ(x − x̄)², Sxy = Σ(x − x̄)(y − ȳ):
 *   slope = Sxy / Sxx, intercept = ȳ − slope · x̄,
 *   s² = Σ residual² / (n − 2)                       (residual variance, df = n − 2),
 *   SE(slope) = s / √Sxx, SE(intercept) = s · √(1/n + x̄² / Sxx),
 *   CI = slope ± t_{(1+level)/2, n−2} · SE(slope),
 *   band of the mean line at x0: fit(x0) ± t · s · √(1/n + (x0 − x̄)² / Sxx).
 * The interval is exact for independent Gaussian residuals of equal variance at any n ≥ 3; the
 * pairs bootstrap this replaces had no such guarantee and, over 6 points, undercovered.
 *
 * Why not a test against the paper's slope of −1 on log10(L0 / size): that ratio falls as 1/size
 * whenever L0 does not trend, so slope −1 and a high R² come from the denominator. The scaling
 * stage tests L0 itself (null: slope 0) and the dead / ultra-low fraction instead, with `trend`.
 *
 * The Student-t distribution function uses the closed forms for whole degrees of freedom
 * (Abramowitz & Stegun 26.7.3 and 26.7.4), and its quantile bisects them.
 *
 * @module
 */

export interface LineFit {
  slope: number;
  intercept: number;
  /** Standard errors of the slope and the intercept. */
  se: number;
  interceptSe: number;
  /** s, the residual standard deviation (n − 2 in the denominator); NaN when df < 1. */
  residualSd: number;
  /** Degrees of freedom of the interval: n − 2. */
  df: number;
  n: number;
  /** Confidence level, the t quantile it uses, and the interval on the slope (NaN when df < 1). */
  level: number;
  tCrit: number;
  ciLow: number;
  ciHigh: number;
  /** Coefficient of determination (1 when every y is equal: the flat line is exact). */
  r2: number;
  /** x̄ and Sxx, so that the band can be drawn from a stored fit. */
  xMean: number;
  sxx: number;
}

/** Least-squares line through (x, y) with a Student-t interval (n − 2 df) on the slope. */
export function olsFit(x: number[], y: number[], opts: { level?: number } = {}): LineFit {
  if (x.length !== y.length) {
    throw new Error(`Line fit needs as many y as x: got ${x.length} x and ${y.length} y`);
  }
  for (const [name, v] of [["x", x], ["y", y]] as const) {
    const bad = v.findIndex((e) => !Number.isFinite(e));
    if (bad >= 0) throw new Error(`Line fit needs finite ${name}: ${name}[${bad}] is ${v[bad]}`);
  }
  const n = x.length;
  if (n < 2) throw new Error(`Line fit needs at least 2 points, got ${n}`);
  const level = opts.level ?? 0.95;
  if (!(level > 0 && level < 1)) throw new Error(`Confidence level ${level} is not in (0, 1)`);
  const xMean = mean(x), yMean = mean(y);
  let sxx = 0, sxy = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i] - xMean, dy = y[i] - yMean;
    sxx += dx * dx;
    sxy += dx * dy;
    syy += dy * dy;
  }
  // Relative test, so that equal x read back from floats (tiny nonzero spread) count as equal.
  if (sxx <= 1e-12 * Math.max(1, xMean * xMean)) {
    throw new Error(`Line fit needs two distinct x values, every x is ${x[0]}`);
  }
  const slope = sxy / sxx;
  const intercept = yMean - slope * xMean;
  let sse = 0;
  for (let i = 0; i < n; i++) sse += (y[i] - intercept - slope * x[i]) ** 2;
  // Rounding can leave a tiny positive SSE on an exact line; below this it is zero.
  if (sse <= 1e-24 * Math.max(1, syy)) sse = 0;
  const df = n - 2;
  const residualSd = df >= 1 ? Math.sqrt(sse / df) : NaN;
  const se = residualSd / Math.sqrt(sxx);
  const tCrit = df >= 1 ? studentTQuantile((1 + level) / 2, df) : NaN;
  return {
    slope,
    intercept,
    se,
    interceptSe: residualSd * Math.sqrt(1 / n + xMean * xMean / sxx),
    residualSd,
    df,
    n,
    level,
    tCrit,
    ciLow: slope - tCrit * se,
    ciHigh: slope + tCrit * se,
    r2: syy > 0 ? 1 - sse / syy : 1,
    xMean,
    sxx,
  };
}

/** The fitted line at x0 and its confidence band (the interval on the mean of y at x0). */
export function lineBand(
  fit: Pick<LineFit, "slope" | "intercept" | "residualSd" | "n" | "tCrit" | "xMean" | "sxx">,
  x0: number,
): { y: number; low: number; high: number } {
  const y = fit.intercept + fit.slope * x0;
  const half = fit.tCrit * fit.residualSd *
    Math.sqrt(1 / fit.n + (x0 - fit.xMean) ** 2 / fit.sxx);
  return { y, low: y - half, high: y + half };
}

export interface MeanInterval {
  n: number;
  mean: number;
  /** Mean ± t_{(1+level)/2, n−1} · sd / √n when n ≥ 2; the one value when n = 1. */
  low: number;
  high: number;
  min: number;
  max: number;
  /** "t" for a Student-t interval, "single" when one value leaves nothing to estimate. */
  kind: "t" | "single";
}

/** Mean of the values with a Student-t interval (n − 1 df), or the value itself when n = 1. */
export function meanInterval(values: number[], opts: { level?: number } = {}): MeanInterval {
  const n = values.length;
  if (n === 0) throw new Error("Mean interval needs at least one value, got none");
  const bad = values.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) {
    throw new Error(`Mean interval needs finite values: value[${bad}] is ${values[bad]}`);
  }
  const m = mean(values);
  const min = Math.min(...values), max = Math.max(...values);
  if (n === 1) return { n, mean: m, low: m, high: m, min, max, kind: "single" };
  const level = opts.level ?? 0.95;
  const sd = Math.sqrt(values.reduce((a, v) => a + (v - m) ** 2, 0) / (n - 1));
  const half = studentTQuantile((1 + level) / 2, n - 1) * sd / Math.sqrt(n);
  return { n, mean: m, low: m - half, high: m + half, min, max, kind: "t" };
}

/** The sign of the slope that the interval supports; "inconclusive" with no interval (df < 1). */
export type Trend = "grows" | "no detectable trend" | "falls" | "inconclusive";

/** "grows" or "falls" when the interval excludes 0 (a two-sided t test at 1 − level). */
export function trend(fit: Pick<LineFit, "ciLow" | "ciHigh" | "df">): Trend {
  if (!(fit.df >= 1) || !Number.isFinite(fit.ciLow) || !Number.isFinite(fit.ciHigh)) {
    return "inconclusive";
  }
  if (fit.ciLow > 0) return "grows";
  if (fit.ciHigh < 0) return "falls";
  return "no detectable trend";
}

/**
 * A one-line verdict worded for what was measured, e.g.
 * "no detectable trend in L0 with size: slope 0.03, 95% CI [-0.05, 0.11] (...)" or
 * "L0 grows with size: slope 0.21, 95% CI [0.12, 0.3] (...)". `units` describes the slope.
 */
export function trendVerdict(
  fit: LineFit,
  opts: { subject: string; units?: string; detail?: string },
): string {
  const t = trend(fit);
  const pct = Math.round(fit.level * 100);
  const units = opts.units ? ` ${opts.units}` : "";
  const stat = t === "inconclusive"
    ? `slope ${fmt(fit.slope)}${units}, no interval with ${fit.n} points (df ${fit.df})`
    : `slope ${fmt(fit.slope)}${units}, ${pct}% CI [${fmt(fit.ciLow)}, ${fmt(fit.ciHigh)}], ` +
      `df ${fit.df}`;
  const detail = opts.detail ? `; ${opts.detail}` : "";
  switch (t) {
    case "grows":
    case "falls":
      return `${opts.subject} ${t} with size: ${stat}${detail}`;
    case "no detectable trend":
      return `no detectable trend in ${opts.subject} with size: ${stat}${detail}`;
    default:
      return `inconclusive for ${opts.subject}: ${stat}${detail}`;
  }
}

/**
 * P(T ≤ t) for Student's t with a whole number of degrees of freedom, from the closed forms
 * A(t | ν) = P(|T| < t) in θ = atan(t / √ν) (Abramowitz & Stegun 26.7.3 for odd ν, 26.7.4 for even).
 */
export function studentTCdf(t: number, df: number): number {
  if (!Number.isInteger(df) || df < 1) {
    throw new Error(`Student-t degrees of freedom ${df} is not a positive integer`);
  }
  if (Number.isNaN(t)) return NaN;
  if (t === Infinity) return 1;
  if (t === -Infinity) return 0;
  const theta = Math.atan(Math.abs(t) / Math.sqrt(df));
  const c2 = Math.cos(theta) ** 2, s = Math.sin(theta);
  let a: number;
  if (df % 2 === 1) {
    // (2/π)(θ + sinθ cosθ (1 + 2/3 cos²θ + 2·4/(3·5) cos⁴θ + … up to cos^(ν−3)θ)).
    let sum = 0;
    if (df > 1) {
      let term = 1;
      sum = 1;
      for (let k = 2; k <= df - 3; k += 2) {
        term *= (k / (k + 1)) * c2;
        sum += term;
      }
    }
    a = (2 / Math.PI) * (theta + s * Math.cos(theta) * sum);
  } else {
    // sinθ (1 + 1/2 cos²θ + 1·3/(2·4) cos⁴θ + … up to cos^(ν−2)θ).
    let term = 1, sum = 1;
    for (let k = 1; k <= df - 3; k += 2) {
      term *= (k / (k + 1)) * c2;
      sum += term;
    }
    a = s * sum;
  }
  a = Math.min(1, Math.max(0, a));
  return t >= 0 ? 0.5 + a / 2 : 0.5 - a / 2;
}

/** The p-quantile of Student's t (whole df), by bisection of `studentTCdf` to full precision. */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new Error(`Quantile probability ${p} is not in (0, 1)`);
  if (p === 0.5) return 0;
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  let lo = 0, hi = 1;
  while (studentTCdf(hi, df) < p) {
    lo = hi;
    hi *= 2;
    if (hi > 1e300) return Infinity;
  }
  for (let i = 0; i < 200 && hi - lo > 1e-15 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

function mean(v: number[]): number {
  let s = 0;
  for (const e of v) s += e;
  return s / v.length;
}

/** Three significant decimals for verdicts; NaN and infinities spelt out. */
export function fmt(v: number): string {
  return Number.isFinite(v) ? (Math.round(v * 1000) / 1000).toString() : String(v);
}
