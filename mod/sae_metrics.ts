/**
 * Evaluation of a trained SAE on held-out activations: reconstruction (mse, fraction of variance
 * explained, l1, l0, normalised as in mod/sae.ts) and per-feature statistics (firing count,
 * density = count / tokens, mean activation when firing, max activation).
 *
 * Fraction of variance explained = 1 − Σ‖x − x̂‖² / Σ‖x − mean(x)‖², sums over all rows, the mean
 * taken over the same rows.
 *
 * Shape key: N held-out rows, B micro-batch rows, D input width, F features.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
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

/** Σ_b ‖x_b − mean(x)‖² over the rows of xBD. */
export function totalVariance(xBD: tf.Tensor2D): number {
  const t = tf.tidy(() => tf.sum(tf.square(tf.sub(xBD, tf.mean(xBD, 0, true)))));
  const v = t.dataSync()[0];
  t.dispose();
  return v;
}

/** Reconstruction metrics and per-feature statistics over `xND`, `microBatch` rows at a time. */
export function evaluateSae(sae: Sae, xND: tf.Tensor2D, microBatch = 2048): SaeEvalResult {
  checkInput(sae, xND, "Evaluation input");
  const n = xND.shape[0], F = sae.cfg.dSae;
  let sse = 0, l1 = 0, l0 = 0;
  const count = new Float64Array(F), sumAct = new Float64Array(F);
  const maxAct = new Float32Array(F);
  for (let start = 0; start < n; start += microBatch) {
    const size = Math.min(microBatch, n - start);
    const parts = tf.tidy(() => {
      const xBD = tf.slice(xND, [start, 0], [size, -1]);
      const fBF = encode(sae, xBD);
      const sseT = tf.sum(tf.square(tf.sub(decode(sae, fBF), xBD)));
      const activeBF = tf.cast(tf.greater(fBF, 0), "float32");
      return [sseT, tf.sum(activeBF, 0), tf.sum(fBF, 0), tf.max(fBF, 0)];
    });
    const [sseV, countF, sumF, maxF] = parts.map((t) => t.dataSync());
    tf.dispose(parts);
    sse += sseV[0];
    for (let f = 0; f < F; f++) {
      count[f] += countF[f];
      sumAct[f] += sumF[f];
      l1 += sumF[f];
      l0 += countF[f];
      if (maxF[f] > maxAct[f]) maxAct[f] = maxF[f];
    }
  }
  const density = count.map((c) => c / n);
  const meanActivation = count.map((c, f) => (c > 0 ? sumAct[f] / c : NaN));
  return {
    eval: {
      tokens: n,
      mse: sse / n,
      fve: fractionVarianceExplained(sse, totalVariance(xND)),
      l1: l1 / n,
      l0: l0 / n,
    },
    stats: { tokens: n, count, density, meanActivation, maxActivation: maxAct },
  };
}
