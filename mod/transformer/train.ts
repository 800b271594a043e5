/**
 * Training the one-layer transformer: next-token loss (the fused, chunked cross-entropy of
 * transformer_ops.ts, or the plain reference), per-token losses and evaluation without gradients,
 * one training step (gradients of every parameter, global-norm clipping, Adam with weight decay on
 * the matrices; the clip and update on the native kernel of native_adam.ts where it runs), and the
 * learning-rate schedule (linear warm-up, cosine decay).
 *
 * Shape key: B batch, T positions, D d_model, V vocabulary, N = B * (T - 1) rows that have a
 * next-token target.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { Adam, type AdamOptions } from "./adam.ts";
import { nativeAdamW } from "./native_adam.ts";
import {
  blockForward,
  checkTokens,
  finalLn,
  matrixParamNames,
  PARAM_NAMES,
  type Transformer,
  type TransformerHooks,
} from "./model.ts";
import {
  chunkedTokenLosses,
  type FusedCeOptions,
  fusedCrossEntropy,
  plainCrossEntropy,
} from "./ops.ts";

/** An Adam(W) over every parameter, with weight decay on the matrices only. */
export function makeOptimizer(model: Transformer, opts: Omit<AdamOptions, "decay">): Adam {
  return new Adam(model.params, { ...opts, decay: matrixParamNames(model) });
}

export interface LossOptions {
  hooks?: TransformerHooks;
  /** "fused" (default): chunked custom-gradient cross-entropy; "plain": the reference. */
  ce?: "fused" | "plain";
  fused?: FusedCeOptions;
}

/** Final-LN residual at positions that have a target [B*(T-1), D], and the targets [B*(T-1)]. */
function lossInputs(model: Transformer, tokensBT: tf.Tensor2D, hooks?: TransformerHooks) {
  checkTokens(model, tokensBT, 2);
  const [b, t] = tokensBT.shape, d = model.config.dModel;
  const { residBTD } = blockForward(model, tokensBT, hooks);
  const xND = tf.reshape(finalLn(model, tf.slice(residBTD, [0, 0, 0], [b, t - 1, d])), [
    b * (t - 1),
    d,
  ]) as tf.Tensor2D;
  const targetsN = tf.reshape(tf.slice(tokensBT, [0, 1], [b, t - 1]), [b * (t - 1)]) as tf.Tensor1D;
  return { xND, targetsN };
}

/** Mean next-token cross-entropy over every position that has a target (differentiable). */
export function lossFn(
  model: Transformer,
  tokensBT: tf.Tensor2D,
  opts: LossOptions = {},
): tf.Scalar {
  return tf.tidy(() => {
    const { xND, targetsN } = lossInputs(model, tokensBT, opts.hooks);
    const wU = model.params["unembed.W_U"] as tf.Tensor2D;
    const bU = model.params["unembed.b_U"] as tf.Tensor1D;
    return opts.ce === "plain"
      ? plainCrossEntropy(xND, wU, bU, targetsN)
      : fusedCrossEntropy(xND, wU, bU, targetsN, opts.fused);
  });
}

/** Per-token next-token losses [B, T-1], without gradients. */
export function tokenLosses(
  model: Transformer,
  tokensBT: tf.Tensor2D,
  opts: { hooks?: TransformerHooks; fused?: FusedCeOptions } = {},
): tf.Tensor2D {
  return tf.tidy(() => {
    const { xND, targetsN } = lossInputs(model, tokensBT, opts.hooks);
    const p = model.params;
    const lossN = chunkedTokenLosses(
      xND,
      p["unembed.W_U"] as tf.Tensor2D,
      p["unembed.b_U"] as tf.Tensor1D,
      targetsN,
      opts.fused,
    );
    return tf.reshape(lossN, [tokensBT.shape[0], tokensBT.shape[1] - 1]);
  });
}

/** Mean next-token loss, without gradients. */
export async function evalLoss(
  model: Transformer,
  tokensBT: tf.Tensor2D,
  opts: { hooks?: TransformerHooks; fused?: FusedCeOptions } = {},
): Promise<number> {
  const mean = tf.tidy(() => tf.mean(tokenLosses(model, tokensBT, opts)));
  const value = (await mean.data())[0];
  mean.dispose();
  return value;
}

/** Loss on a whole split: the mean over its tokens and the standard error across sequences. */
export interface SplitLoss {
  /** Mean next-token loss over every predicted token of every sequence (nats). */
  mean: number;
  /** Standard error of that mean, from the spread of the per-sequence means (every sequence
   * predicts the same number of tokens, so the token mean is the mean of the sequence means). */
  se: number;
  sequences: number;
  tokens: number;
}

/**
 * The next-token loss over every sequence of a split (row-major `tokens`, `T` ids per sequence),
 * `batchSize` sequences at a time, without gradients.
 */
export async function splitLoss(
  model: Transformer,
  tokens: Uint16Array,
  opts: { contextLength: number; batchSize: number },
): Promise<SplitLoss> {
  const T = opts.contextLength;
  const n = Math.floor(tokens.length / T);
  if (n === 0) return { mean: NaN, se: NaN, sequences: 0, tokens: 0 };
  const perSeq = new Float64Array(n);
  for (let i = 0; i < n; i += opts.batchSize) {
    const b = Math.min(opts.batchSize, n - i);
    const ids = Int32Array.from(tokens.subarray(i * T, (i + b) * T));
    const means = tf.tidy(() => tf.mean(tokenLosses(model, tf.tensor2d(ids, [b, T], "int32")), 1));
    perSeq.set(await means.data(), i);
    means.dispose();
  }
  let sum = 0;
  for (const v of perSeq) sum += v;
  const mean = sum / n;
  let ss = 0;
  for (const v of perSeq) ss += (v - mean) ** 2;
  const se = n > 1 ? Math.sqrt(ss / (n - 1) / n) : NaN;
  return { mean, se, sequences: n, tokens: n * (T - 1) };
}

export interface TrainStepOptions {
  lr: number;
  /** Global gradient-norm clip (default 1; 0 or Infinity turns it off). */
  clipNorm?: number;
  ce?: "fused" | "plain";
  fused?: FusedCeOptions;
  /**
   * The clip + Adam update: "native" (native_adam.ts; an error where it cannot run), "tfjs", or
   * "auto" (default: native where it can run).
   */
  update?: "auto" | "native" | "tfjs";
}

/** The native update when `update` allows it and it can run, else null. */
function nativeUpdate(update: TrainStepOptions["update"] = "auto") {
  if (update === "tfjs") return null;
  const r = nativeAdamW();
  if (!r.adamw && update === "native") throw new Error(`Native AdamW unavailable: ${r.reason}`);
  return r.adamw;
}

/** One step: gradients of every parameter, global-norm clipping, Adam. Returns loss and norm. */
export async function trainStepStats(
  model: Transformer,
  optimizer: Adam,
  tokensBT: tf.Tensor2D,
  opts: TrainStepOptions,
): Promise<{ loss: number; gradNorm: number }> {
  const names = PARAM_NAMES.filter((n) => n in optimizer.params);
  const vars = names.map((n) => model.params[n]);
  const { value, grads } = tf.variableGrads(
    () => lossFn(model, tokensBT, { ce: opts.ce, fused: opts.fused }),
    vars,
  );
  const clip = opts.clipNorm ?? 1;
  const native = nativeUpdate(opts.update);
  if (native) {
    let gradNorm: number;
    try {
      const byParam = Object.fromEntries(names.map((n, i) => [n, grads[vars[i].name]]));
      gradNorm = native.step(optimizer, byParam, { lr: opts.lr, clipNorm: clip });
    } finally {
      tf.dispose(grads);
    }
    const loss = (await value.data())[0];
    value.dispose();
    return { loss, gradNorm };
  }
  const normT = tf.tidy(() => {
    const list = vars.map((v) => grads[v.name]);
    const norm = tf.sqrt(tf.addN(list.map((g) => tf.sum(tf.square(g)))));
    // The scale stays a tensor so that this step never waits on the device mid-way.
    const scale = clip > 0 && Number.isFinite(clip)
      ? tf.minimum(1, tf.div(clip, tf.add(norm, 1e-6)))
      : tf.scalar(1);
    const scaled: Record<string, tf.Tensor> = {};
    names.forEach((n, i) => (scaled[n] = tf.mul(list[i], scale)));
    optimizer.step(scaled, opts.lr);
    return norm;
  });
  tf.dispose(grads);
  const [lossData, normData] = await Promise.all([value.data(), normT.data()]);
  tf.dispose([value, normT]);
  return { loss: lossData[0], gradNorm: normData[0] };
}

/** One training step; returns the loss (before the update). */
export async function trainStep(
  model: Transformer,
  optimizer: Adam,
  tokensBT: tf.Tensor2D,
  opts: TrainStepOptions,
): Promise<number> {
  return (await trainStepStats(model, optimizer, tokensBT, opts)).loss;
}

export interface LrScheduleOptions {
  lr: number;
  warmupSteps: number;
  totalSteps: number;
  /** Floor of the cosine, as a fraction of lr (default 0.1). */
  minLrRatio?: number;
}

/** Linear warm-up over `warmupSteps` (step 0 gets lr / warmupSteps), then cosine to the floor. */
export function lrSchedule(step: number, o: LrScheduleOptions): number {
  const minLr = o.lr * (o.minLrRatio ?? 0.1);
  if (step < o.warmupSteps) return (o.lr * (step + 1)) / o.warmupSteps;
  if (step >= o.totalSteps) return minLr;
  const progress = (step - o.warmupSteps) / Math.max(1, o.totalSteps - o.warmupSteps);
  return minLr + 0.5 * (1 + Math.cos(Math.PI * progress)) * (o.lr - minLr);
}
