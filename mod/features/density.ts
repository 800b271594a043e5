/**
 * Feature density: the fraction of tokens on which an SAE feature is nonzero, from per-feature
 * firing counts over `nTokens` tokens. Histograms over log10(density) for the seed paper's density
 * plots, and a summary (dead, alive, expected L0) for its scaling plot.
 *
 * Definitions (the seed paper's, made explicit):
 * - dead: count == 0, i.e. never fired in `nTokens` tokens;
 * - ultra-low: 0 < density < `ultraLow` (default 1e-6);
 * - resolution: 1 / nTokens, the smallest nonzero density the token count can show. When the
 *   resolution is at or above the ultra-low threshold, no feature can be measured as ultra-low and
 *   "dead" also holds features that fire too rarely to be seen; the `note` says so.
 *
 * The histogram partitions the features: dead + ultraLow + underflow + Σ counts + overflow equals
 * the number of features. Bins hold densities at or above the threshold, so that the paper's
 * "dead / ultra-low" bar and the log bins never count a feature twice.
 *
 * @module
 */

export interface DensityHistogramOptions {
  /** Number of log10 bins between minLog10 and maxLog10; overrides binsPerDecade. */
  bins?: number;
  /** Bins per decade when `bins` is not given (default 4, i.e. 0.25-decade bins). */
  binsPerDecade?: number;
  /** Left edge. Default: log10 of the larger of the ultra-low threshold and the resolution,
   * snapped down to the bin grid (so -6 for the default threshold and ≥ 1e6 tokens). */
  minLog10?: number;
  /** Right edge (default 0, density 1). */
  maxLog10?: number;
  /** Ultra-low threshold on density (default 1e-6); 0 turns the ultra-low class off. */
  ultraLow?: number;
}

export interface DensityHistogram {
  features: number;
  nTokens: number;
  /** 1 / nTokens. */
  resolution: number;
  ultraLowThreshold: number;
  /** bins + 1 edges over log10(density); bin i is [edges[i], edges[i+1]), the last bin closed. */
  edges: number[];
  /** Features per bin, and the same divided by the number of features. */
  counts: number[];
  fractions: number[];
  dead: number;
  ultraLow: number;
  /** dead + ultraLow: the paper's "dead / ultra-low" bar, and its fraction of all features. */
  deadOrUltraLow: number;
  deadOrUltraLowFraction: number;
  /** At or above the threshold but left of minLog10 / right of maxLog10 (0 with the defaults). */
  underflow: number;
  overflow: number;
  /** True when 1 / nTokens ≥ the threshold: ultra-low features cannot be told from dead ones. */
  ultraLowUnmeasurable: boolean;
  /** One line to print next to every figure made from this histogram. */
  note: string;
}

export interface DensitySummary {
  features: number;
  nTokens: number;
  resolution: number;
  dead: number;
  deadFraction: number;
  ultraLow: number;
  ultraLowThreshold: number;
  /** count > 0. */
  alive: number;
  aliveFraction: number;
  /** Median density over all features (dead ones count as 0) and over alive features only. */
  medianDensity: number;
  medianAliveDensity: number;
  /** Σ density: the expected number of active features per token (the L0 the counts imply). */
  expectedL0: number;
  note: string;
}

/** Checks counts and the token count; returns the densities count / nTokens. */
export function featureDensities(firingCounts: ArrayLike<number>, nTokens: number): Float64Array {
  if (!Number.isInteger(nTokens) || nTokens <= 0) {
    throw new Error(`Token count ${nTokens} is not a positive integer`);
  }
  if (firingCounts.length === 0) throw new Error("Firing counts are empty: no features to read");
  const out = new Float64Array(firingCounts.length);
  for (let i = 0; i < firingCounts.length; i++) {
    const c = firingCounts[i];
    if (!Number.isFinite(c) || c < 0 || c > nTokens) {
      throw new Error(`Firing count ${c} of feature ${i} is not in [0, ${nTokens}] (the tokens)`);
    }
    out[i] = c / nTokens;
  }
  return out;
}

/** Histogram of log10(density) with dead and ultra-low features counted apart. */
export function densityHistogram(
  firingCounts: ArrayLike<number>,
  nTokens: number,
  opts: DensityHistogramOptions = {},
): DensityHistogram {
  const density = featureDensities(firingCounts, nTokens);
  const threshold = opts.ultraLow ?? 1e-6;
  if (!(threshold >= 0 && threshold <= 1)) {
    throw new Error(`Ultra-low threshold ${threshold} is not a density in [0, 1]`);
  }
  const resolution = 1 / nTokens;
  const perDecade = opts.binsPerDecade ?? 4;
  if (!(perDecade > 0)) throw new Error(`Bins per decade ${perDecade} is not positive`);
  const maxLog10 = opts.maxLog10 ?? 0;
  // Snap the default left edge down to the grid that ends at maxLog10, so edges are round numbers.
  const floorLog10 = Math.log10(Math.max(threshold, resolution));
  const minLog10 = opts.minLog10 ??
    maxLog10 - Math.ceil((maxLog10 - floorLog10) * perDecade - 1e-9) / perDecade;
  if (!(minLog10 < maxLog10)) {
    throw new Error(`Histogram range [${minLog10}, ${maxLog10}] in log10 density is empty`);
  }
  const nBins = opts.bins ?? Math.round((maxLog10 - minLog10) * perDecade);
  if (!Number.isInteger(nBins) || nBins < 1) {
    throw new Error(`Bin count ${nBins} is not a positive integer`);
  }
  const width = (maxLog10 - minLog10) / nBins;
  const edges = Array.from({ length: nBins + 1 }, (_, i) => round12(minLog10 + i * width));
  const counts = new Array<number>(nBins).fill(0);
  let dead = 0, ultraLow = 0, underflow = 0, overflow = 0;
  for (const d of density) {
    if (d === 0) dead++;
    else if (d < threshold) ultraLow++;
    else {
      // The small slack puts densities that sit on an edge (1e-3 → -3) in the bin they start.
      const pos = (Math.log10(d) - minLog10) / width + 1e-9;
      if (pos < 0) underflow++;
      else if (pos >= nBins + 2e-9) overflow++;
      else counts[Math.min(nBins - 1, Math.floor(pos))]++;
    }
  }
  const n = density.length;
  const unmeasurable = resolution >= threshold && threshold > 0;
  return {
    features: n,
    nTokens,
    resolution,
    ultraLowThreshold: threshold,
    edges,
    counts,
    fractions: counts.map((c) => c / n),
    dead,
    ultraLow,
    deadOrUltraLow: dead + ultraLow,
    deadOrUltraLowFraction: (dead + ultraLow) / n,
    underflow,
    overflow,
    ultraLowUnmeasurable: unmeasurable,
    note: resolutionNote(nTokens, threshold),
  };
}

/** Dead / alive counts, medians and the expected L0 implied by the firing counts. */
export function densitySummary(
  firingCounts: ArrayLike<number>,
  nTokens: number,
  opts: { ultraLow?: number } = {},
): DensitySummary {
  const density = featureDensities(firingCounts, nTokens);
  const threshold = opts.ultraLow ?? 1e-6;
  let dead = 0, ultraLow = 0, expectedL0 = 0;
  for (const d of density) {
    if (d === 0) dead++;
    else if (d < threshold) ultraLow++;
    expectedL0 += d;
  }
  const n = density.length;
  const sorted = Float64Array.from(density).sort();
  return {
    features: n,
    nTokens,
    resolution: 1 / nTokens,
    dead,
    deadFraction: dead / n,
    ultraLow,
    ultraLowThreshold: threshold,
    alive: n - dead,
    aliveFraction: (n - dead) / n,
    medianDensity: median(sorted),
    medianAliveDensity: median(sorted.subarray(dead)),
    expectedL0,
    note: resolutionNote(nTokens, threshold),
  };
}

/** Log10 histogram of positive values (the paper's "density > 0" plot); zeros are counted apart. */
export function log10Histogram(
  values: ArrayLike<number>,
  opts: { binsPerDecade?: number; minLog10?: number; maxLog10?: number } = {},
): { edges: number[]; counts: number[]; zeros: number } {
  const logs: number[] = [];
  let zeros = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v) || v < 0) throw new Error(`Value ${v} at index ${i} is not >= 0`);
    if (v === 0) zeros++;
    else logs.push(Math.log10(v));
  }
  const perDecade = opts.binsPerDecade ?? 4;
  let minLog = Infinity, maxLog = -Infinity;
  for (const l of logs) {
    if (l < minLog) minLog = l;
    if (l > maxLog) maxLog = l;
  }
  const lo = opts.minLog10 ?? (logs.length ? Math.floor(minLog * perDecade) / perDecade : -1);
  let hi = opts.maxLog10 ?? (logs.length ? Math.ceil(maxLog * perDecade) / perDecade : 0);
  if (hi <= lo) hi = lo + 1 / perDecade;
  const nBins = Math.round((hi - lo) * perDecade);
  const width = (hi - lo) / nBins;
  const edges = Array.from({ length: nBins + 1 }, (_, i) => round12(lo + i * width));
  const counts = new Array<number>(nBins).fill(0);
  for (const l of logs) {
    const pos = (l - lo) / width + 1e-9;
    if (pos >= 0 && pos < nBins + 2e-9) counts[Math.min(nBins - 1, Math.floor(pos))]++;
  }
  return { edges, counts, zeros };
}

/** The resolution line every density figure carries; warns when ultra-low cannot be measured. */
export function resolutionNote(nTokens: number, threshold: number): string {
  const res = 1 / nTokens;
  const base = `${nTokens.toLocaleString("en-US")} tokens, resolution 1/N = ${
    res.toExponential(1)
  }`;
  if (threshold > 0 && res >= threshold) {
    return `${base}: at or above the ultra-low threshold ${threshold.toExponential(0)}, so ` +
      `ultra-low features cannot be measured and "dead" includes features below resolution`;
  }
  return `${base}; dead = never fired, ultra-low = density < ${threshold.toExponential(0)}`;
}

function median(sorted: Float64Array): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  return n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

/** Removes float noise from computed edges (-5.999999999 → -6). */
function round12(x: number): number {
  return Math.round(x * 1e12) / 1e12;
}
