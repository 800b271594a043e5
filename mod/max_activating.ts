/**
 * Examples that show what an SAE feature reads, from held-out activation rows, in one pass:
 *
 *   top       the topK highest-activating rows (ties: the earlier row first)
 *   quantile  up to perQuantile rows from each of quantileBins bins of the feature's nonzero
 *             activations, bin b = [b/Q, (b+1)/Q) × max (the last bin includes max), top rows
 *             excluded: a seeded uniform sample of each bin (what autointerp scoring needs)
 *   random    up to `random` rows where the feature is 0, a seeded uniform sample
 *
 * with each example's context (the rows of the same sequence from pos − contextBefore to
 * pos + contextAfter, clipped to the sequence) and the feature's activation on every context
 * token, computed by the SAE's own encode (so TopK SAEs, where a token's activation depends on
 * the other features, are exact).
 *
 * Memory is O(F · (topK + quantileBins · (2·perQuantile + topK) + random)) beside the rows
 * themselves, never N × F: micro-batches are encoded with tfjs and scanned on the host.
 *
 * How the quantile sample stays exact in one pass, although max (and so the bins) is only known
 * at the end: every (feature, row) gets a seeded hash key, and each bin keeps the rows whose key
 * is below the bin's threshold τ_b, dropping the largest key (and lowering τ_b to it) when full.
 * τ is kept non-decreasing in b, and a rising max only moves rows to lower bins, so at the end
 * bin b holds exactly {rows in bin b : key < τ_b}; its perQuantile smallest keys outside the top
 * rows are then a uniform sample of the bin (fewer when the bin is small, or, rarely, when the
 * max rose late after τ_b fell). Random rows use Li's reservoir "Algorithm L" over each feature's
 * stream of zero rows, with one seeded generator per feature. Both depend on the rows and the
 * seed only, not on microBatch.
 *
 * The held-out shard (mod/activations.ts) lists each sequence's positions in order, so a context
 * is the contiguous rows with the same seq and consecutive pos; a gap ends the context.
 *
 * Shape key: N held-out rows, B micro-batch rows, D input width (d_in), F features, S selected
 * features (all F unless `features` lists some).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import * as arrow from "apache-arrow";
import type { ActivationRows } from "./activations.ts";
import { encode, type Sae } from "./sae.ts";
import {
  quantileBin,
  QuantileBins,
  sampleKey,
  TopRows,
  ZeroRows,
} from "./max_activating_samplers.ts";

export { quantileBin, sampleKey };

export type ExampleKind = "top" | "quantile" | "random";

export interface ExampleOptions {
  topK: number;
  quantileBins: number;
  perQuantile: number;
  random: number;
  contextBefore: number;
  contextAfter: number;
  microBatch: number;
  seed: number;
  /** Features to read (default all), in the order the output lists them. */
  features?: number[];
  /**
   * Each listed feature's max activation over these same rows (e.g. evaluateSae's
   * maxActivation), if known: the quantile bins are then fixed from the start, and every bin with
   * perQuantile non-top rows yields perQuantile examples. Without it the bins follow the running
   * max, which can leave a bin short when the max rises late in the pass.
   */
  maxActivation?: ArrayLike<number>;
  /** Called after each micro-batch of the main pass with rows done and total rows. */
  onProgress?: (done: number, total: number) => void;
}

/** One entry per example; the context lists are flat values with offsets (Arrow's layout). */
export interface FeatureExamples {
  feature: Int32Array;
  kind: ExampleKind[];
  /** Top: 0 = highest; quantile: rank within its bin (highest first); random: by row. */
  rank: Int32Array;
  /** Quantile: the bin's lower edge as a fraction of max; NaN for top and random. */
  quantile: Float32Array;
  /** Index of the centre row in the held-out rows. */
  row: Int32Array;
  seq: Int32Array;
  pos: Int32Array;
  activation: Float32Array;
  centreIndex: Int32Array;
  /** Example e's context is contextTokens/contextActs[contextOffsets[e] .. contextOffsets[e+1]). */
  contextOffsets: Int32Array;
  contextTokens: Int32Array;
  contextActs: Float32Array;
}

/** Per selected feature, as mod/sae_metrics.ts FeatureStats (mean is NaN, max 0 if silent). */
export interface ExampleFeatureStats {
  feature: Int32Array;
  tokens: number;
  count: Float64Array;
  density: Float64Array;
  meanActivation: Float64Array;
  maxActivation: Float32Array;
}

function checkOptions(o: ExampleOptions, dSae: number): number[] {
  for (const key of ["topK", "quantileBins", "perQuantile", "random"] as const) {
    if (!Number.isInteger(o[key]) || o[key] < 0) {
      throw new Error(`Example option ${key} "${o[key]}" must be a non-negative integer`);
    }
  }
  for (const key of ["contextBefore", "contextAfter"] as const) {
    if (!Number.isInteger(o[key]) || o[key] < 0) {
      throw new Error(`Example option ${key} "${o[key]}" must be a non-negative integer`);
    }
  }
  if (!Number.isInteger(o.microBatch) || o.microBatch < 1) {
    throw new Error(`Example option microBatch "${o.microBatch}" must be a positive integer`);
  }
  if (o.perQuantile > 0 && o.quantileBins < 1) {
    throw new Error(`Example option quantileBins "${o.quantileBins}" must be at least 1`);
  }
  if (!Number.isFinite(o.seed)) throw new Error(`Example option seed "${o.seed}" is not finite`);
  const features = o.features ?? Array.from({ length: dSae }, (_, i) => i);
  const seen = new Set<number>();
  for (const f of features) {
    if (!Number.isInteger(f) || f < 0 || f >= dSae) {
      throw new Error(`Feature ${f} is outside [0, ${dSae})`);
    }
    if (seen.has(f)) throw new Error(`Feature ${f} is listed twice`);
    seen.add(f);
  }
  return features;
}

function checkRows(rows: ActivationRows, dIn: number): number {
  const n = rows.seq.length;
  if (rows.dIn !== dIn) {
    throw new Error(`Activation rows width ${rows.dIn} does not match SAE d_in ${dIn}`);
  }
  if (rows.acts.length !== n * dIn || rows.pos.length !== n || rows.token.length !== n) {
    throw new Error(
      `Activation rows disagree: ${n} seq, ${rows.pos.length} pos, ${rows.token.length} token, ` +
        `${rows.acts.length} values (expected ${n} x ${dIn})`,
    );
  }
  return n;
}

/** Encodes `b` rows of `x` (row-major) and returns f [b, F], or [b, S] for listed columns. */
async function encodeRows(
  sae: Sae,
  x: Float32Array,
  b: number,
  columnsS: tf.Tensor1D | null,
): Promise<Float32Array> {
  const fBS = tf.tidy(() => {
    const fBF = encode(sae, tf.tensor2d(x, [b, sae.cfg.dIn]));
    return columnsS ? tf.gather(fBF, columnsS, 1) : fBF;
  });
  const data = (await fBS.data()) as Float32Array;
  fBS.dispose();
  return data;
}

type Chosen = { s: number; kind: ExampleKind; rank: number; q: number; row: number; a: number };

/**
 * Top, quantile and random examples with contexts for every selected feature, and per-feature
 * firing statistics, in one pass over `rows` plus one encode of the context rows.
 */
export async function collectFeatureExamples(
  sae: Sae,
  rows: ActivationRows,
  opts: ExampleOptions,
): Promise<{ examples: FeatureExamples; stats: ExampleFeatureStats }> {
  const features = checkOptions(opts, sae.cfg.dSae);
  const n = checkRows(rows, sae.cfg.dIn), dIn = sae.cfg.dIn, S = features.length;
  const P = opts.perQuantile, Q = P > 0 ? opts.quantileBins : 0;
  const subset = opts.features !== undefined, width = subset ? S : sae.cfg.dSae;

  const count = new Float64Array(S), sum = new Float64Array(S), peak = new Float32Array(S);
  const top = new TopRows(S, opts.topK);
  const quantiles = new QuantileBins(S, Q, 2 * P + opts.topK);
  const zeroRows = new ZeroRows(features, opts.random, opts.seed);
  if (opts.maxActivation) {
    if (opts.maxActivation.length !== S) {
      throw new Error(
        `Example option maxActivation has ${opts.maxActivation.length} values for ${S} features`,
      );
    }
    // It only fixes the bins early: a larger activation still raises the max.
    for (let s = 0; s < S; s++) quantiles.max[s] = Math.max(0, opts.maxActivation[s]);
  }

  const columnsS = subset ? tf.tensor1d(features, "int32") : null;
  try {
    // ---- The pass: encode a micro-batch, take its firings, then scan its zero streams.
    const nnz = new Int32Array(S);
    for (let start = 0; start < n; start += opts.microBatch) {
      const b = Math.min(opts.microBatch, n - start);
      const x = rows.acts.subarray(start * dIn, (start + b) * dIn);
      const data = await encodeRows(sae, x, b, columnsS);
      nnz.fill(0);
      for (let r = 0; r < b; r++) {
        const row = start + r, off = r * width;
        for (let s = 0; s < width; s++) {
          const a = data[off + s];
          if (!(a > 0)) continue;
          nnz[s]++, count[s]++, sum[s] += a;
          if (a > peak[s]) peak[s] = a;
          if (opts.topK > 0) top.push(s, row, a);
          if (Q > 0) quantiles.observe(s, row, sampleKey(opts.seed, features[s], row), a);
        }
      }
      if (opts.random > 0) {
        for (let s = 0; s < S; s++) zeroRows.scan(s, data, width, b, start, b - nnz[s]);
      }
      opts.onProgress?.(start + b, n);
    }

    // ---- The examples, feature by feature: top, quantile bins (top bin first), random.
    const chosen: Chosen[] = [];
    for (let s = 0; s < S; s++) {
      const best = top.sorted(s);
      best.forEach((t, rank) => chosen.push({ s, kind: "top", rank, q: NaN, ...t }));
      const topRows = new Set(best.map((t) => t.row));
      for (let b = Q - 1; b >= 0; b--) {
        quantiles.sample(s, b, P, topRows)
          .forEach((t, rank) => chosen.push({ s, kind: "quantile", rank, q: b / Q, ...t }));
      }
      zeroRows.sorted(s)
        .forEach((row, rank) => chosen.push({ s, kind: "random", rank, q: NaN, row, a: 0 }));
    }

    const examples = await buildContexts(sae, rows, chosen, features, columnsS, opts);
    const density = Float64Array.from(count, (c) => c / n);
    const meanActivation = Float64Array.from(count, (c, s) => c > 0 ? sum[s] / c : NaN);
    const feature = Int32Array.from(features);
    return {
      examples,
      stats: { feature, tokens: n, count, density, meanActivation, maxActivation: peak },
    };
  } finally {
    columnsS?.dispose();
  }
}

/** Contexts of the chosen examples, with activations from one encode of the rows they cover. */
async function buildContexts(
  sae: Sae,
  rows: ActivationRows,
  ex: Chosen[],
  features: number[],
  columnsS: tf.Tensor1D | null,
  opts: ExampleOptions,
): Promise<FeatureExamples> {
  const { seq, pos, token } = rows, n = seq.length, dIn = sae.cfg.dIn, E = ex.length;
  const lo = new Int32Array(E), offsets = new Int32Array(E + 1);
  const centreIndex = new Int32Array(E);
  for (let e = 0; e < E; e++) {
    const r = ex[e].row;
    let a = r, z = r;
    while (
      a > r - opts.contextBefore && a > 0 && seq[a - 1] === seq[r] && pos[a - 1] === pos[a] - 1
    ) {
      a--;
    }
    while (
      z < r + opts.contextAfter && z < n - 1 && seq[z + 1] === seq[r] && pos[z + 1] === pos[z] + 1
    ) z++;
    lo[e] = a, centreIndex[e] = r - a, offsets[e + 1] = offsets[e] + (z - a + 1);
  }
  const total = offsets[E];
  const contextTokens = new Int32Array(total), contextActs = new Float32Array(total);
  const needed = new Uint8Array(n);
  for (let e = 0; e < E; e++) {
    const len = offsets[e + 1] - offsets[e];
    contextTokens.set(token.subarray(lo[e], lo[e] + len), offsets[e]);
    needed.fill(1, lo[e], lo[e] + len);
  }
  const neededRows: number[] = [];
  const rowIndex = new Int32Array(n).fill(-1);
  for (let r = 0; r < n; r++) if (needed[r]) rowIndex[r] = neededRows.push(r) - 1;

  // Examples by context start (a counting sort), so each chunk of rows visits only its examples.
  const byLo = new Int32Array(E), bucket = new Int32Array(n + 1);
  for (let e = 0; e < E; e++) bucket[lo[e] + 1]++;
  for (let r = 0; r < n; r++) bucket[r + 1] += bucket[r];
  for (let e = 0; e < E; e++) byLo[bucket[lo[e]]++] = e;

  const maxLen = opts.contextBefore + opts.contextAfter + 1;
  const width = columnsS ? features.length : sae.cfg.dSae;
  let first = 0;
  for (let c0 = 0; c0 < neededRows.length; c0 += opts.microBatch) {
    const c1 = Math.min(c0 + opts.microBatch, neededRows.length);
    const x = new Float32Array((c1 - c0) * dIn);
    for (let i = c0; i < c1; i++) {
      x.set(rows.acts.subarray(neededRows[i] * dIn, (neededRows[i] + 1) * dIn), (i - c0) * dIn);
    }
    const data = await encodeRows(sae, x, c1 - c0, columnsS);
    const minRow = neededRows[c0], maxRow = neededRows[c1 - 1];
    while (first < E && lo[byLo[first]] + maxLen - 1 < minRow) first++;
    for (let q = first; q < E && lo[byLo[q]] <= maxRow; q++) {
      const e = byLo[q], col = columnsS ? ex[e].s : features[ex[e].s];
      for (let k = offsets[e]; k < offsets[e + 1]; k++) {
        const row = lo[e] + k - offsets[e];
        if (row >= minRow && row <= maxRow) {
          contextActs[k] = data[(rowIndex[row] - c0) * width + col];
        }
      }
    }
  }

  return {
    feature: Int32Array.from(ex, (x) => features[x.s]),
    kind: ex.map((x) => x.kind),
    rank: Int32Array.from(ex, (x) => x.rank),
    quantile: Float32Array.from(ex, (x) => x.q),
    row: Int32Array.from(ex, (x) => x.row),
    seq: Int32Array.from(ex, (x) => seq[x.row]),
    pos: Int32Array.from(ex, (x) => pos[x.row]),
    activation: Float32Array.from(ex, (x) => x.a),
    centreIndex,
    contextOffsets: offsets,
    contextTokens,
    contextActs,
  };
}

/** A list<T> column over flat `values` split by `offsets` (length rows + 1), no copy. */
function listVector(values: Int32Array | Float32Array, offsets: Int32Array): arrow.Vector {
  const childType = values instanceof Int32Array ? new arrow.Int32() : new arrow.Float32();
  // The casts pick makeData's overloads; the union of element types defeats TypeScript's choice.
  const child = arrow.makeData({
    type: childType as arrow.Float32,
    length: values.length,
    data: values as Float32Array,
  });
  const type = new arrow.List(new arrow.Field("item", childType, false));
  return arrow.makeVector(arrow.makeData({
    type: type as arrow.List<arrow.Float32>,
    length: offsets.length - 1,
    nullCount: 0,
    valueOffsets: offsets,
    child,
  }));
}

/**
 * The examples as an Arrow table with the columns feature, kind, rank, quantile, seq, pos,
 * activation, context_tokens (list<int32>), context_acts (list<float32>), centre_index.
 */
export function examplesTable(ex: FeatureExamples): arrow.Table {
  return new arrow.Table({
    feature: arrow.makeVector(ex.feature),
    kind: arrow.vectorFromArray(ex.kind, new arrow.Utf8()),
    rank: arrow.makeVector(ex.rank),
    quantile: arrow.makeVector(ex.quantile),
    seq: arrow.makeVector(ex.seq),
    pos: arrow.makeVector(ex.pos),
    activation: arrow.makeVector(ex.activation),
    context_tokens: listVector(ex.contextTokens, ex.contextOffsets),
    context_acts: listVector(ex.contextActs, ex.contextOffsets),
    centre_index: arrow.makeVector(ex.centreIndex),
  });
}
