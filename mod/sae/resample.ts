/**
 * Dead-feature resampling, as Anthropic describe it ("Towards Monosemanticity", appendix on
 * neuron resampling):
 *   1. the caller finds the dead features (no firing over the preceding window);
 *   2. the SAE's per-input loss, the squared reconstruction error ‖x − x̂‖² summed over d_in, is
 *      computed on a random set of inputs;
 *   3. inputs are sampled with probability ∝ loss² (the square of that loss, as the paper says,
 *      i.e. ∝ ‖x − x̂‖⁴; dictionary_learning samples ∝ ‖x − x̂‖, the norm itself), one per dead
 *      feature, without replacement (Efraimidis-Spirakis keys; with replacement only for the
 *      overflow if there are more dead features than inputs with nonzero loss), from a seeded Rng;
 *   4. dead feature i gets: decoder row W_dec[i, :] = x / ‖x‖ (the input itself at unit norm, as
 *      Anthropic describe it; this project used (x − b_dec) / ‖x − b_dec‖ before);
 *      encoder column W_enc[:, i] = that unit vector × 0.2 × the mean encoder-column norm of the
 *      alive features; b_enc[i] = 0;
 *   5. the Adam moments of every touched encoder column, decoder row and b_enc entry are zeroed,
 *      and the architecture's own per-feature tensors go back to their init (architectures.ts)
 *      (the trainer also restarts its lr warm-up after each resample step, see
 *      mod/sae/train_config.ts).
 *
 * Weights are edited on the host (a resample is rare; a round trip of the parameters is cheap next
 * to the thousands of steps between resamples) so the code is the same on every backend.
 *
 * Shape key: N resampling inputs, D input width, F features.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Adam } from "../transformer/mod.ts";
import { checkInput, decode, encode, type Sae } from "./sae.ts";
import { resetExtras } from "./architectures.ts";
import type { Rng } from "../run/mod.ts";

export interface ResampleEvent {
  step: number;
  nDead: number;
  nFeatures: number;
  /** Dead fraction that triggered the resample (by the caller's window). */
  deadFractionBefore: number;
  /** Fraction of features that fire on none of the resampling inputs right after the resample. */
  deadFractionAfter: number;
  /** Dead fraction one window after the resample (filled in later by the trainer). */
  deadFractionNextWindow?: number;
  /** Of the resampled features, how many fired in the window after the resample (revived). */
  revivedNextWindow?: number;
  nInputs: number;
  meanAliveEncoderNorm: number;
  /** Mean per-input loss ‖x − x̂‖² over all resampling inputs and over the picked ones. */
  meanInputLoss: number;
  meanPickedLoss: number;
  /** The resampled features and, in the same order, the indices of the inputs they copied. */
  features: number[];
  inputIndices: number[];
}

export interface ResampleOptions {
  step: number;
  deadFractionBefore: number;
  /** Rows per encode pass over the inputs (memory bound on wasm). */
  microBatch?: number;
  /** Encoder norm of a resampled feature, as a multiple of the mean alive encoder norm. */
  encoderScale?: number;
}

/** Per-row ‖x − x̂‖², computed in micro-batches. */
export function perInputLoss(sae: Sae, xND: tf.Tensor2D, microBatch = 2048): Float32Array {
  checkInput(sae, xND, "Resampling input");
  const n = xND.shape[0];
  const out = new Float32Array(n);
  for (let start = 0; start < n; start += microBatch) {
    const size = Math.min(microBatch, n - start);
    const lossB = tf.tidy(() => {
      const xBD = tf.slice(xND, [start, 0], [size, -1]);
      return tf.sum(tf.square(tf.sub(decode(sae, encode(sae, xBD)), xBD)), 1);
    });
    out.set(lossB.dataSync(), start);
    lossB.dispose();
  }
  return out;
}

/**
 * Picks `k` indices with probability ∝ weights, without replacement while inputs of nonzero weight
 * remain (Efraimidis-Spirakis: the k largest log(u)/w), then with replacement.
 */
export function weightedSample(weights: ArrayLike<number>, k: number, rng: Rng): number[] {
  const keyed: { i: number; key: number }[] = [];
  let total = 0;
  for (let i = 0; i < weights.length; i++) {
    const w = weights[i];
    const key = w > 0 && Number.isFinite(w) ? Math.log(rng.nextOpen()) / w : -Infinity;
    if (key > -Infinity) {
      keyed.push({ i, key });
      total += w;
    }
  }
  if (keyed.length === 0) { // every input reconstructed perfectly: fall back to uniform
    return Array.from({ length: k }, () => rng.int(weights.length));
  }
  keyed.sort((a, b) => b.key - a.key || a.i - b.i);
  const picked = keyed.slice(0, k).map((e) => e.i);
  while (picked.length < k) {
    let u = rng.next() * total, i = 0;
    while (i < weights.length - 1 && (u -= weights[i] > 0 ? weights[i] : 0) >= 0) i++;
    picked.push(i);
  }
  return picked;
}

/** Resamples the `dead` features of `sae` in place and resets their Adam moments. */
export function resampleDeadFeatures(
  sae: Sae,
  adam: Adam | null,
  dead: number[],
  inputsND: tf.Tensor2D,
  rng: Rng,
  opts: ResampleOptions,
): ResampleEvent {
  const { dIn, dSae } = sae.cfg;
  const microBatch = opts.microBatch ?? 2048, encoderScale = opts.encoderScale ?? 0.2;
  const losses = perInputLoss(sae, inputsND, microBatch);
  const meanInputLoss = losses.reduce((a, b) => a + b, 0) / Math.max(1, losses.length);
  const event: ResampleEvent = {
    step: opts.step,
    nDead: dead.length,
    nFeatures: dSae,
    deadFractionBefore: opts.deadFractionBefore,
    deadFractionAfter: opts.deadFractionBefore,
    nInputs: inputsND.shape[0],
    meanAliveEncoderNorm: NaN,
    meanInputLoss,
    meanPickedLoss: NaN,
    features: [...dead],
    inputIndices: [],
  };
  if (dead.length === 0) return event;
  for (const i of dead) {
    if (!Number.isInteger(i) || i < 0 || i >= dSae) {
      throw new Error(`Dead feature index ${i} is out of range for d_sae ${dSae}`);
    }
  }

  const picked = weightedSample(losses.map((l) => l * l), dead.length, rng);
  event.inputIndices = picked;
  event.meanPickedLoss = picked.reduce((a, i) => a + losses[i], 0) / picked.length;

  const x = inputsND.dataSync() as Float32Array;
  const wEnc = Float32Array.from(sae.wEncDF.dataSync() as Float32Array);
  const wDec = Float32Array.from(sae.wDecFD.dataSync() as Float32Array);
  const bEnc = Float32Array.from(sae.bEncF.dataSync() as Float32Array);

  const isDead = new Uint8Array(dSae);
  for (const i of dead) isDead[i] = 1;
  const colNorm = new Float64Array(dSae);
  for (let d = 0; d < dIn; d++) {
    for (let f = 0; f < dSae; f++) colNorm[f] += wEnc[d * dSae + f] ** 2;
  }
  let aliveSum = 0, alive = 0;
  for (let f = 0; f < dSae; f++) {
    if (!isDead[f]) {
      aliveSum += Math.sqrt(colNorm[f]);
      alive++;
    }
  }
  // With no alive feature there is no scale to copy; unit norm is the init's encoder norm.
  event.meanAliveEncoderNorm = alive > 0 ? aliveSum / alive : 1;
  const encNorm = encoderScale * event.meanAliveEncoderNorm;

  dead.forEach((f, j) => {
    const row = picked[j];
    const v = new Float64Array(dIn);
    let norm = 0;
    for (let d = 0; d < dIn; d++) {
      v[d] = x[row * dIn + d];
      norm += v[d] * v[d];
    }
    norm = Math.sqrt(norm);
    if (norm === 0) { // an all-zero input: no direction to copy, keep a unit axis
      v[f % dIn] = 1;
      norm = 1;
    }
    for (let d = 0; d < dIn; d++) {
      const u = v[d] / norm;
      wDec[f * dIn + d] = u;
      wEnc[d * dSae + f] = u * encNorm;
    }
    bEnc[f] = 0;
  });
  tf.tidy(() => {
    sae.wEncDF.assign(tf.tensor2d(wEnc, [dIn, dSae]));
    sae.wDecFD.assign(tf.tensor2d(wDec, [dSae, dIn]));
    sae.bEncF.assign(tf.tensor1d(bEnc));
  });
  if (adam) {
    adam.resetMoments("W_enc", dead, 1);
    adam.resetMoments("W_dec", dead, 0);
    adam.resetMoments("b_enc", dead, 0);
  }
  resetExtras(sae, adam, dead);

  event.deadFractionAfter = silentFraction(sae, inputsND, microBatch);
  return event;
}

/** Fraction of features that fire on none of the rows of xND. */
export function silentFraction(sae: Sae, xND: tf.Tensor2D, microBatch = 2048): number {
  const n = xND.shape[0];
  let firedF: tf.Tensor1D | null = null;
  for (let start = 0; start < n; start += microBatch) {
    const size = Math.min(microBatch, n - start);
    const next = tf.tidy(() => {
      const fBF = encode(sae, tf.slice(xND, [start, 0], [size, -1]));
      const anyF = tf.max(tf.cast(tf.greater(fBF, 0), "float32"), 0) as tf.Tensor1D;
      return firedF ? tf.maximum(firedF, anyF) as tf.Tensor1D : anyF;
    });
    firedF?.dispose();
    firedF = next;
  }
  if (!firedF) return 1;
  const fired = firedF.dataSync();
  firedF.dispose();
  let silent = 0;
  for (const v of fired) if (v === 0) silent++;
  return silent / sae.cfg.dSae;
}
