/**
 * Examples that show what an SAE feature reads, from held-out activation rows, in one pass:
 *
 *   top       the topK highest-activating sequences, each by its max row (ties: the earlier
 *             row first): at most one example per sequence
 *   quantile  up to perQuantile rows from each of quantileBins bins of the feature's nonzero
 *             activations, bin b = [b/Q, (b+1)/Q) × max (the last bin includes max): a seeded
 *             uniform sample of each bin, at most one per sequence and none from a top
 *             example's sequence (what autointerp scoring needs)
 *   random    up to `random` rows whose whole context window is silent for the feature (every
 *             context activation 0), at most one per sequence and none from a top or quantile
 *             example's sequence: a seeded uniform sample. When too few such windows are found
 *             (a dense feature), rows silent at the centre only fill the rest, so that the report
 *             still shows `random` contexts; stats.silentWindows counts the wholly silent ones,
 *             and autointerp takes only those as detection negatives
 *
 * with each example's context (the rows of the same sequence from pos − contextBefore to
 * pos + contextAfter, clipped to the sequence) and the feature's activation on every context
 * token, computed by the SAE's own encode (so TopK SAEs, where a token's activation depends on
 * the other features, are exact).
 *
 * Why whole sequences apart: a feature that fires on runs of consecutive tokens would otherwise
 * fill its top list with one window shifted by a token, and autointerp, which splits these
 * examples between an explainer and its scorers, would score the explainer on contexts it has
 * already seen. So no two examples of a feature (top, quantile or random) share a sequence, and
 * their contexts never overlap. Random examples must be silent over the whole window, not only at
 * the centre: at high density most windows around a silent token hold a firing one, and autointerp
 * uses these contexts as detection's negatives.
 *
 * Memory is O(F · (topK + quantileBins · (4·perQuantile + 2·topK) + 4·random)) beside the rows
 * themselves, never N × F: micro-batches are encoded with tfjs and scanned on the host, or, given
 * the native step, encoded natively as sparse rows of which only the nonzeros are visited
 * (mod/features/example_pass.ts; same result).
 *
 * How the quantile sample stays exact in one pass, although max (and so the bins) is only known
 * at the end: every (feature, row) gets a seeded hash key, and each bin keeps the rows whose key
 * is below the bin's threshold τ_b, dropping the largest key (and lowering τ_b to it) when full.
 * τ is kept non-decreasing in b, and a rising max only moves rows to lower bins, so at the end
 * bin b holds exactly {rows in bin b : key < τ_b}; its perQuantile smallest keys outside the top
 * rows are then a uniform sample of the bin (fewer when the bin is small, or, rarely, when the
 * max rose late after τ_b fell); walking them in key order and skipping used sequences keeps one
 * per sequence. Random rows: Li's reservoir "Algorithm L" keeps a uniform sample of
 * RANDOM_OVERSAMPLE × random rows of each feature's stream of zero rows (one seeded generator per
 * feature); after the contexts are encoded, the candidates whose window is silent and whose
 * sequence is free are taken in a seeded order. A uniform sample of the zero rows restricted to
 * the silent windows is a uniform sample of those. All depend on the rows and the seed only, not
 * on microBatch.
 *
 * The held-out shard (mod/activations/shards.ts) lists each sequence's positions in order, so a context
 * is the contiguous rows with the same seq and consecutive pos; a gap ends the context.
 *
 * Shape key: N held-out rows, B micro-batch rows, D input width (d_in), F features, S selected
 * features (all F unless `features` lists some).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import * as arrow from "apache-arrow";
import type { ActivationRows } from "../activations/mod.ts";
import { deriveSeed, Rng } from "../run/mod.ts";
import { encode, type NativeSaeStep, type Sae, type SparseRows } from "../sae/mod.ts";
import { ExamplePass, SparseContextFill } from "./example_pass.ts";
import { quantileBin, sampleKey } from "./samplers.ts";

export { quantileBin, sampleKey };

export type ExampleKind = "top" | "quantile" | "random";

/**
 * Zero rows kept per random example asked for: candidates whose window is not silent, or whose
 * sequence is taken, are dropped after the pass, so a few more than `random` are drawn.
 */
export const RANDOM_OVERSAMPLE = 4;

/**
 * On the native path, the pass's sparse rows are kept for the contexts while they take at most
 * this many bytes (8 per nonzero), so that the context rows (at F in the thousands, nearly every
 * row) are not encoded a second time; above it they are encoded again.
 */
export const KEEP_SPARSE_BYTES = 2 ** 30;

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
  /**
   * The native encode (mod/sae/native_step.ts), if it can run: micro-batches then arrive as
   * sparse rows and only their nonzeros are visited (mod/features/example_pass.ts); the result is
   * the same. Without it, tfjs encodes dense micro-batches and every entry is read.
   */
  nativeStep?: NativeSaeStep;
  /** See KEEP_SPARSE_BYTES (the default); 0: always encode the context rows again. */
  keepSparseBytes?: number;
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

/** Per selected feature, as mod/sae/heldout_eval.ts FeatureStats (mean is NaN, max 0 if silent). */
export interface ExampleFeatureStats {
  feature: Int32Array;
  tokens: number;
  count: Float64Array;
  density: Float64Array;
  meanActivation: Float64Array;
  maxActivation: Float32Array;
  /** Random examples silent over their whole window, at most options.random. */
  silentWindows: Int32Array;
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

/** Encodes `b` rows of `x` (row-major) natively: f [b, F] as compressed sparse rows. */
function encodeSparse(sae: Sae, x: Float32Array, b: number, step: NativeSaeStep): SparseRows {
  const xBD = tf.tensor2d(x, [b, sae.cfg.dIn]);
  try {
    return step.encode(sae, xBD);
  } finally {
    xBD.dispose();
  }
}

/** A micro-batch of the pass as sparse rows: rows start .. start + b. */
type KeptRows = { f: SparseRows; b: number; start: number };

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
  const subset = opts.features !== undefined;

  const pass = new ExamplePass(features, sae.cfg.dSae, rows.seq, {
    topK: opts.topK,
    quantileBins: Q,
    // Room for the rows skipped because their sequence is taken (by a top or an earlier pick).
    binCapacity: 4 * P + 2 * opts.topK,
    zeroRows: RANDOM_OVERSAMPLE * opts.random,
    seed: opts.seed,
  });
  const { count, sum, peak, top, quantiles, zeroRows } = pass;
  if (opts.maxActivation) {
    if (opts.maxActivation.length !== S) {
      throw new Error(
        `Example option maxActivation has ${opts.maxActivation.length} values for ${S} features`,
      );
    }
    // It only fixes the bins early: a larger activation still raises the max.
    for (let s = 0; s < S; s++) quantiles.max[s] = Math.max(0, opts.maxActivation[s]);
  }

  const columnsS = subset && !opts.nativeStep ? tf.tensor1d(features, "int32") : null;
  try {
    // ---- The pass: encode a micro-batch, take its firings, then scan its zero streams.
    let kept: KeptRows[] | null = opts.nativeStep ? [] : null, keptBytes = 0;
    for (let start = 0; start < n; start += opts.microBatch) {
      const b = Math.min(opts.microBatch, n - start);
      const x = rows.acts.subarray(start * dIn, (start + b) * dIn);
      if (opts.nativeStep) {
        const f = encodeSparse(sae, x, b, opts.nativeStep);
        pass.scanSparse(f, b, start);
        keptBytes += 8 * f.col.length + 4 * (b + 1);
        if (kept && keptBytes <= (opts.keepSparseBytes ?? KEEP_SPARSE_BYTES)) {
          kept.push({ f, b, start });
        } else kept = null;
      } else pass.scanDense(await encodeRows(sae, x, b, columnsS), b, start);
      opts.onProgress?.(start + b, n);
    }

    // ---- The examples, feature by feature: top, quantile bins (top bin first), random
    // candidates (chosen once their contexts are known). usedSeqs[s]: sequences already shown.
    const chosen: Chosen[] = [];
    const usedSeqs: Set<number>[] = [];
    const seqOf = (row: number) => rows.seq[row];
    for (let s = 0; s < S; s++) {
      const best = top.sorted(s);
      best.forEach((t, rank) => chosen.push({ s, kind: "top", rank, q: NaN, ...t }));
      const used = new Set(best.map((t) => rows.seq[t.row]));
      for (let b = Q - 1; b >= 0; b--) {
        quantiles.sample(s, b, P, used, seqOf)
          .forEach((t, rank) => chosen.push({ s, kind: "quantile", rank, q: b / Q, ...t }));
      }
      usedSeqs.push(used);
      zeroRows.sorted(s)
        .forEach((row, rank) => chosen.push({ s, kind: "random", rank, q: NaN, row, a: 0 }));
    }

    const candidates = await buildContexts(sae, rows, chosen, features, {
      columnsS,
      kept,
      opts,
    });
    const { examples, found } = pickSilent(candidates, chosen, usedSeqs, features, opts);
    const density = Float64Array.from(count, (c) => c / n);
    const meanActivation = Float64Array.from(count, (c, s) => c > 0 ? sum[s] / c : NaN);
    const feature = Int32Array.from(features);
    return {
      examples,
      stats: {
        feature,
        tokens: n,
        count,
        density,
        meanActivation,
        maxActivation: peak,
        silentWindows: found,
      },
    };
  } finally {
    columnsS?.dispose();
  }
}

/**
 * Keeps every top and quantile example and, per feature, up to `random` of its random candidates:
 * in a seeded order, those whose context activations are all 0 and whose sequence is unused (one
 * per sequence), then, if short, the others with an unused sequence. Kept random examples stay in
 * row order and are ranked in it; `found` counts the wholly silent ones.
 */
function pickSilent(
  ex: FeatureExamples,
  chosen: Chosen[],
  usedSeqs: Set<number>[],
  features: number[],
  opts: ExampleOptions,
): { examples: FeatureExamples; found: Int32Array } {
  const E = chosen.length, keep = new Uint8Array(E), found = new Int32Array(features.length);
  const bySlot: number[][] = features.map(() => []);
  for (let e = 0; e < E; e++) {
    if (chosen[e].kind === "random") bySlot[chosen[e].s].push(e);
    else keep[e] = 1;
  }
  bySlot.forEach((cands, s) => {
    const rng = new Rng(deriveSeed(opts.seed, `random-pick:${features[s]}`));
    const order = rng.shuffle(cands.slice()) as number[];
    const silent = (e: number) =>
      ex.contextActs.subarray(ex.contextOffsets[e], ex.contextOffsets[e + 1]).every((a) => a === 0);
    let taken = 0;
    for (const wholly of [true, false]) {
      for (const e of order) {
        if (taken >= opts.random) break;
        if (keep[e] || usedSeqs[s].has(ex.seq[e]) || (wholly && !silent(e))) continue;
        usedSeqs[s].add(ex.seq[e]);
        keep[e] = 1, taken++;
        if (wholly) found[s]++;
      }
    }
  });
  const rank = Int32Array.from(ex.rank), nextRandom = new Int32Array(features.length);
  for (let e = 0; e < E; e++) {
    if (keep[e] && chosen[e].kind === "random") rank[e] = nextRandom[chosen[e].s]++;
  }
  return { examples: subsetExamples({ ...ex, rank }, keep), found };
}

/** The examples whose `keep` flag is set, in their order. */
function subsetExamples(ex: FeatureExamples, keep: Uint8Array): FeatureExamples {
  const idx: number[] = [];
  keep.forEach((k, e) => k && idx.push(e));
  const offsets = new Int32Array(idx.length + 1);
  idx.forEach((e, i) => {
    offsets[i + 1] = offsets[i] + ex.contextOffsets[e + 1] - ex.contextOffsets[e];
  });
  const contextTokens = new Int32Array(offsets[idx.length]);
  const contextActs = new Float32Array(offsets[idx.length]);
  idx.forEach((e, i) => {
    const [a, b] = [ex.contextOffsets[e], ex.contextOffsets[e + 1]];
    contextTokens.set(ex.contextTokens.subarray(a, b), offsets[i]);
    contextActs.set(ex.contextActs.subarray(a, b), offsets[i]);
  });
  const take = <T extends Int32Array | Float32Array>(v: T) =>
    v.constructor === Int32Array
      ? Int32Array.from(idx, (e) => v[e]) as T
      : Float32Array.from(idx, (e) => v[e]) as T;
  return {
    feature: take(ex.feature),
    kind: idx.map((e) => ex.kind[e]),
    rank: take(ex.rank),
    quantile: take(ex.quantile),
    row: take(ex.row),
    seq: take(ex.seq),
    pos: take(ex.pos),
    activation: take(ex.activation),
    centreIndex: take(ex.centreIndex),
    contextOffsets: offsets,
    contextTokens,
    contextActs,
  };
}

/**
 * Contexts of the chosen examples, with activations from one encode of the rows they cover, or,
 * native, from the pass's sparse rows where they were `kept`.
 */
async function buildContexts(
  sae: Sae,
  rows: ActivationRows,
  ex: Chosen[],
  features: number[],
  how: { columnsS: tf.Tensor1D | null; kept: KeptRows[] | null; opts: ExampleOptions },
): Promise<FeatureExamples> {
  const { columnsS, kept, opts } = how;
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

  const gather = (c0: number, c1: number) => {
    const x = new Float32Array((c1 - c0) * dIn);
    for (let i = c0; i < c1; i++) {
      x.set(rows.acts.subarray(neededRows[i] * dIn, (neededRows[i] + 1) * dIn), (i - c0) * dIn);
    }
    return x;
  };
  if (opts.nativeStep) {
    // Every context entry's (row, feature), then the rows' nonzeros are looked up: rows of the
    // held-out set in the kept pass, else indices into neededRows, encoded again.
    const entryRow = new Int32Array(total), entryCol = new Int32Array(total);
    for (let e = 0; e < E; e++) {
      for (let k = offsets[e]; k < offsets[e + 1]; k++) {
        const row = lo[e] + k - offsets[e];
        entryRow[k] = kept ? row : rowIndex[row], entryCol[k] = features[ex[e].s];
      }
    }
    const span = kept ? n : neededRows.length;
    const fill = new SparseContextFill(span, sae.cfg.dSae, entryRow, entryCol);
    if (kept) {
      for (const { f, b, start } of kept) fill.chunk(f, b, start);
    } else {
      for (let c0 = 0; c0 < span; c0 += opts.microBatch) {
        const c1 = Math.min(c0 + opts.microBatch, span);
        fill.chunk(encodeSparse(sae, gather(c0, c1), c1 - c0, opts.nativeStep), c1 - c0, c0);
      }
    }
    contextActs.set(fill.out);
  } else {
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
      const data = await encodeRows(sae, gather(c0, c1), c1 - c0, columnsS);
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
