/**
 * Evaluation of a trained SAE on held-out activations: reconstruction (mse, fraction of variance
 * explained, l1, l0, normalised as in mod/sae/sae.ts) and per-feature statistics (firing count,
 * density = count / tokens, mean activation when firing, max activation).
 *
 * Fraction of variance explained = 1 − Σ‖x − x̂‖² / Σ‖x − mean(x)‖², sums over all rows, the mean
 * taken over the same rows.
 *
 * Two paths, same results within float rounding (tests/heldout_eval_test.ts): given the native
 * step (mod/sae/native_step.ts), each micro-batch is encoded natively as sparse rows, x̂ = b_dec +
 * Σ f_i W_dec[i] is summed over the nonzeros only and the per-feature statistics read from them;
 * otherwise tfjs encodes and decodes densely (two B×F×D products) and reduces [B, F] columns.
 *
 * Shape key: N held-out rows, B micro-batch rows, D input width, F features.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { NativeSaeStep } from "./native_step.ts";
import { checkInput, decode, encode, type Sae } from "./sae.ts";

export interface SaeEval {
  tokens: number;
  mse: number;
  fve: number;
  l1: number;
  l0: number;
}

export interface FeatureStats {
  tokens: number;
  count: Float64Array;
  density: Float64Array;
  /** Mean activation over the tokens where the feature fires (NaN if it never fires). */
  meanActivation: Float64Array;
  maxActivation: Float32Array;
}

export interface SaeEvalResult {
  eval: SaeEval;
  stats: FeatureStats;
}

/** Fraction of variance explained given Σ‖x − x̂‖² and Σ‖x − mean(x)‖². */
export function fractionVarianceExplained(sse: number, totalVariance: number): number {
  return totalVariance > 0 ? 1 - sse / totalVariance : NaN;
}

/** Σ_b ‖x_b − mean(x)‖² over the rows of a row-major [n, d] array (float64 sums). */
export function totalVarianceOf(x: Float32Array, d: number): number {
  const n = x.length / d, mean = new Float64Array(d);
  for (let i = 0; i < x.length; i++) mean[i % d] += x[i];
  for (let j = 0; j < d; j++) mean[j] /= n;
  let v = 0;
  for (let i = 0; i < x.length; i++) v += (x[i] - mean[i % d]) ** 2;
  return v;
}

/** The same sum on the device, for a batch that is a tensor (float32 sums; the trainer's logs). */
export function totalVarianceTensor(xBD: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => tf.sum(tf.square(tf.sub(xBD, tf.mean(xBD, 0, true)))) as tf.Scalar);
}

/**
 * Reconstruction metrics and per-feature statistics over the rows of `x` (a tensor, or a
 * row-major Float32Array of width d_in), `microBatch` rows at a time. Each micro-batch becomes its
 * own tensor: slicing one large tensor on wasm copies all of it every time. `opts.nativeStep`:
 * the sparse native path (see the module header).
 */
export function evaluateSae(
  sae: Sae,
  x: tf.Tensor2D | Float32Array,
  microBatch = 2048,
  opts: { nativeStep?: NativeSaeStep } = {},
): SaeEvalResult {
  if (!(x instanceof Float32Array)) checkInput(sae, x, "Evaluation input");
  const d = sae.cfg.dIn, F = sae.cfg.dSae;
  const rows = x instanceof Float32Array ? x : (x.dataSync() as Float32Array);
  const n = rows.length / d;
  if (!Number.isInteger(n)) {
    throw new Error(
      `Evaluation input of ${rows.length} values is not a whole number of rows of ${d}`,
    );
  }
  const sums = { sse: 0, l1: 0, l0: 0 };
  const count = new Float64Array(F), sumAct = new Float64Array(F);
  const maxAct = new Float32Array(F);
  const tally = { sums, count, sumAct, maxAct };
  for (let start = 0; start < n; start += microBatch) {
    const xB = rows.subarray(start * d, (start + Math.min(microBatch, n - start)) * d);
    if (opts.nativeStep) addSparseBatch(sae, xB, opts.nativeStep, tally);
    else addDenseBatch(sae, xB, tally);
  }
  const { sse, l1, l0 } = sums;
  const density = count.map((c) => c / n);
  const meanActivation = count.map((c, f) => (c > 0 ? sumAct[f] / c : NaN));
  return {
    eval: {
      tokens: n,
      mse: sse / n,
      fve: fractionVarianceExplained(sse, totalVarianceOf(rows, d)),
      l1: l1 / n,
      l0: l0 / n,
    },
    stats: { tokens: n, count, density, meanActivation, maxActivation: maxAct },
  };
}

/** Sums over the rows so far: reconstruction error, l1, l0, and per-feature count, sum, max. */
interface Tally {
  sums: { sse: number; l1: number; l0: number };
  count: Float64Array;
  sumAct: Float64Array;
  maxAct: Float32Array;
}

/** One micro-batch (row-major) on the native step: sparse f, error from its nonzeros. */
function addSparseBatch(sae: Sae, xB: Float32Array, step: NativeSaeStep, t: Tally): void {
  const xBD = tf.tensor2d(xB, [xB.length / sae.cfg.dIn, sae.cfg.dIn]);
  let r;
  try {
    r = step.encodeWithError(sae, xBD);
  } finally {
    xBD.dispose();
  }
  const { col, val } = r.f;
  t.sums.sse += r.sse, t.sums.l0 += col.length;
  for (let j = 0; j < col.length; j++) {
    const f = col[j], v = val[j];
    t.count[f]++, t.sumAct[f] += v, t.sums.l1 += v;
    if (v > t.maxAct[f]) t.maxAct[f] = v;
  }
}

/** One micro-batch (row-major) on tfjs: dense encode and decode, column reductions. */
function addDenseBatch(sae: Sae, xB: Float32Array, t: Tally): void {
  const d = sae.cfg.dIn, F = sae.cfg.dSae;
  const size = xB.length / d;
  const parts = tf.tidy(() => {
    const xBD = tf.tensor2d(xB, [size, d]);
    const fBF = encode(sae, xBD);
    const sseT = tf.sum(tf.square(tf.sub(decode(sae, fBF), xBD)));
    const activeBF = tf.cast(tf.greater(fBF, 0), "float32");
    // Column sums as a product with a row of ones, and the column max as a row max of the
    // transpose: the wasm backend reduces along axis 0 ~20x slower than the product.
    const onesB = tf.ones([1, size]);
    return [
      sseT,
      tf.reshape(tf.matMul(onesB, activeBF), [F]),
      tf.reshape(tf.matMul(onesB, fBF), [F]),
      tf.max(tf.transpose(fBF), 1),
    ];
  });
  const [sseV, countF, sumF, maxF] = parts.map((p) => p.dataSync());
  tf.dispose(parts);
  t.sums.sse += sseV[0];
  for (let f = 0; f < F; f++) {
    t.count[f] += countF[f];
    t.sumAct[f] += sumF[f];
    t.sums.l1 += sumF[f];
    t.sums.l0 += countF[f];
    if (maxF[f] > t.maxAct[f]) t.maxAct[f] = maxF[f];
  }
}
