/**
 * Sampling from the transformer: greedy (temperature 0) or temperature / top-k sampling with a
 * seeded generator, so that the same seed gives the same continuation. Hooks apply at every step
 * (the steer stage samples with a feature direction added to the MLP post-activation).
 *
 * There is no key-value cache: each new token reruns the window (at most n_ctx tokens), which is
 * cheap next to the unembedding for one layer, and only the last position is unembedded.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { Rng } from "../run/mod.ts";
import { lastResidual, type Transformer, type TransformerHooks } from "./model.ts";

export interface SampleOptions {
  maxNewTokens: number;
  /** 0 = greedy (default 1). */
  temperature?: number;
  /** Sample among the k most likely tokens only. */
  topK?: number;
  /** Seed of the sampling generator (default 0). */
  seed?: number;
  hooks?: TransformerHooks;
}

/** Picks one token id from logits: argmax at temperature 0, else a draw from softmax(l / temp). */
export function pickToken(
  logitsV: Float32Array,
  opts: { temperature: number; topK?: number; rng: Rng },
): number {
  const v = logitsV.length;
  if (opts.temperature === 0) {
    let best = 0;
    for (let i = 1; i < v; i++) if (logitsV[i] > logitsV[best]) best = i;
    return best;
  }
  let threshold = -Infinity;
  if (opts.topK !== undefined && opts.topK < v) {
    threshold = Float32Array.from(logitsV).sort()[v - opts.topK];
  }
  let max = -Infinity;
  for (let i = 0; i < v; i++) if (logitsV[i] >= threshold && logitsV[i] > max) max = logitsV[i];
  const weights = new Float64Array(v);
  let total = 0;
  for (let i = 0; i < v; i++) {
    if (logitsV[i] >= threshold) {
      total += weights[i] = Math.exp((logitsV[i] - max) / opts.temperature);
    }
  }
  let u = opts.rng.next() * total;
  for (let i = 0; i < v; i++) {
    u -= weights[i];
    if (u < 0 && weights[i] > 0) return i;
  }
  // Rounding left a sliver of mass: fall back to the last eligible token.
  for (let i = v - 1; i >= 0; i--) if (weights[i] > 0) return i;
  return 0;
}

/** Generates `maxNewTokens` ids after `promptIds`; returns the new ids only. */
export async function sample(
  model: Transformer,
  promptIds: number[],
  opts: SampleOptions,
): Promise<number[]> {
  const { dVocab, nCtx } = model.config;
  if (promptIds.length === 0) throw new Error("Sampling needs a prompt of at least one token");
  for (const id of promptIds) {
    if (!Number.isInteger(id) || id < 0 || id >= dVocab) {
      throw new Error(`Prompt token id ${id} is outside [0, ${dVocab})`);
    }
  }
  const temperature = opts.temperature ?? 1;
  if (!(temperature >= 0)) throw new Error(`Sampling temperature ${temperature} is negative`);
  if (opts.topK !== undefined && !(Number.isInteger(opts.topK) && opts.topK >= 1)) {
    throw new Error(`Sampling topK ${opts.topK} is not a positive integer`);
  }
  const rng = new Rng(opts.seed ?? 0);
  const ids = [...promptIds], out: number[] = [];
  for (let step = 0; step < opts.maxNewTokens; step++) {
    const window = ids.slice(-nCtx);
    const logits = tf.tidy(() => {
      const tokens = tf.tensor2d(window, [1, window.length], "int32");
      const xD = lastResidual(model, tokens, opts.hooks);
      return tf.add(
        tf.matMul(xD, model.params["unembed.W_U"] as tf.Tensor2D),
        model.params["unembed.b_U"],
      );
    });
    const logitsV = (await logits.data()) as Float32Array;
    logits.dispose();
    const id = pickToken(logitsV, { temperature, topK: opts.topK, rng });
    ids.push(id);
    out.push(id);
  }
  return out;
}
