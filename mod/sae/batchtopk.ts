/**
 * BatchTopK SAEs (Bussmann, Leask & Nanda 2024): TopK's sparsity fixed over the batch rather than
 * per row, so a hard input may use more features than an easy one.
 *
 *   training:   r = ReLU(x̄ W_enc + b_enc);  f = r ⊙ 1[r among the k·B largest entries of the batch]
 *   inference:  f = r ⊙ 1[pre > θ]          (a JumpReLU with one threshold θ for every feature)
 *   θ ← (1 − η) θ + η · min{f > 0}          after each training step (the smallest kept
 *                                           activation, a running average; η = thresholdRate,
 *                                           0.01 by default; the first step sets θ outright)
 *
 * The loss is the MSE (plus the AuxK loss when enabled, mod/sae/auxk.ts); the selection carries
 * no gradient, so ∂/∂pre = ∂/∂f on kept entries, 0 elsewhere (maskedReluGrads in grads.ts).
 * encode() is the inference form, so held-out statistics (L0, density) are those of the SAE a
 * user would load; its L0 tracks k once θ has settled.
 *
 * The batch is the gradient pass's rows: with micro-batches (sweep.microBatch) the top k·M are
 * taken in each micro-batch of M rows. Ties at the cut keep all tied entries (continuous inputs
 * have none).
 *
 * Saved (SAELens layout): architecture "batchtopk", k, and a `threshold` tensor of d_sae entries,
 * all θ, the form SAELens converts a BatchTopK SAE to for inference (a JumpReLU's threshold).
 *
 * Shape key: B batch rows, D input width, F features.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Sae } from "./sae.ts";
import { maskedReluGrads, type SaeGradsOptions, type SaeGradsResult } from "./grads.ts";

/** r kept where it is among the k·B largest entries of the whole batch (r ≥ 0). */
export function batchTopK(reluBF: tf.Tensor2D, k: number): tf.Tensor2D {
  return tf.tidy(() => {
    const [b, f] = reluBF.shape;
    const keep = Math.min(k * b, b * f);
    const { values, indices } = tf.topk(tf.reshape(reluBF, [-1]), keep, true);
    indices.dispose();
    const kth = tf.slice(values, [keep - 1], [1]);
    return tf.mul(reluBF, tf.cast(tf.greaterEqual(reluBF, kth), "float32")) as tf.Tensor2D;
  });
}

/** Inference: ReLU(pre) where pre exceeds the learnt threshold. */
export function batchTopKEncode(sae: Sae, preBF: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const theta = sae.extra.threshold;
    return tf.mul(tf.relu(preBF), tf.cast(tf.greater(preBF, theta), "float32")) as tf.Tensor2D;
  });
}

/** Gradients of the MSE (+ AuxK) under the batch selection; also returns minActive. */
export function batchTopKGrads(
  sae: Sae,
  xBD: tf.Tensor2D,
  opts: SaeGradsOptions = {},
): SaeGradsResult {
  return maskedReluGrads(sae, xBD, opts, (reluBF) => batchTopK(reluBF, sae.cfg.k!));
}

/** The running-average update of θ from a step's smallest kept activation (module header). */
export function updateThreshold(sae: Sae, minActive: number): void {
  if (!Number.isFinite(minActive)) return; // nothing fired this step
  const eta = sae.cfg.thresholdRate ?? 0.01;
  const theta = sae.extra.threshold.dataSync()[0];
  const next = theta === 0 ? minActive : (1 - eta) * theta + eta * minActive;
  tf.tidy(() => sae.extra.threshold.assign(tf.tensor1d([next])));
}
