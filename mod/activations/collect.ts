/**
 * Computing MLP activations from token sequences, and the plan that splits the training
 * sequences into shuffled shards. The activations stage writes these shards to disk; the model
 * stream (model_stream.ts) recomputes them on the fly from the same plan, so both give the SAEs
 * the same rows in the same order.
 *
 *   const plan = shardPlan({ trainTokens, shardTokens, contextLength: T, seed }, nTrainSeqs);
 *   const rows = await shardRows(model, split, plan, k, batchSequences);   // shard k, shuffled
 *
 * Shard k holds the tokens of sequences order[k·S .. (k+1)·S) (a seeded permutation of the
 * training sequences, so shards are alike), its rows shuffled by a seed of its own.
 *
 * Shape key: T context length, D activation width (d_mlp).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { deriveSeed, Rng } from "../run/mod.ts";
import type { TokenSplit } from "../tokenize/mod.ts";
import { mlpActivations, type Transformer } from "../transformer/mod.ts";
import type { ActivationRows } from "./shards.ts";

export interface ShardPlan {
  /** Training sequence indices in shard order. */
  order: Int32Array;
  seqsPerShard: number;
  nShards: number;
  /** The run seed the shard shuffles derive from. */
  seed: number;
  contextLength: number;
}

export interface ShardPlanParams {
  trainTokens: number;
  shardTokens: number;
  contextLength: number;
  seed: number;
}

/** The shard plan for `nTrain` training sequences (shards may ask for more than exist). */
export function shardPlan(p: ShardPlanParams, nTrain: number): ShardPlan {
  const T = p.contextLength;
  const seqsPerShard = Math.max(1, Math.round(p.shardTokens / T));
  const nShards = Math.ceil(Math.ceil(p.trainTokens / T) / seqsPerShard);
  const order = new Rng(deriveSeed(p.seed, "activations:order")).permutation(nTrain);
  return { order, seqsPerShard, nShards, seed: p.seed, contextLength: T };
}

/** Shard k's sequence indices (empty past the end of the training split). */
export function shardSequences(plan: ShardPlan, k: number): Int32Array {
  const n = plan.order.length;
  return plan.order.subarray(
    Math.min(k * plan.seqsPerShard, n),
    Math.min((k + 1) * plan.seqsPerShard, n),
  );
}

/** Runs the model over the given sequences and returns one row per token, in sequence order. */
export async function collectActivations(
  model: Transformer,
  split: TokenSplit,
  seqIdx: ArrayLike<number>,
  batchSequences: number,
): Promise<ActivationRows> {
  const T = split.contextLength, dIn = model.config.dMlp;
  const n = seqIdx.length * T;
  const rows: ActivationRows = {
    acts: new Float32Array(n * dIn),
    seq: new Int32Array(n),
    pos: new Int32Array(n),
    token: new Int32Array(n),
    dIn,
  };
  for (let b = 0; b < seqIdx.length; b += batchSequences) {
    const count = Math.min(batchSequences, seqIdx.length - b);
    const ids = new Int32Array(count * T);
    for (let i = 0; i < count; i++) {
      const s = seqIdx[b + i];
      ids.set(split.tokens.subarray(s * T, s * T + T), i * T);
      for (let t = 0; t < T; t++) {
        const r = (b + i) * T + t;
        rows.seq[r] = split.seq[s];
        rows.pos[r] = t;
        rows.token[r] = ids[i * T + t];
      }
    }
    const post = tf.tidy(() => mlpActivations(model, tf.tensor2d(ids, [count, T], "int32")));
    rows.acts.set((await post.data()) as Float32Array, b * T * dIn);
    post.dispose();
  }
  return rows;
}

/** Reorders rows by `order` (a permutation), so a shard's rows are not in sequence order. */
export function permuteRows(r: ActivationRows, order: Int32Array): ActivationRows {
  const d = r.dIn,
    out: ActivationRows = {
      acts: new Float32Array(r.acts.length),
      seq: new Int32Array(order.length),
      pos: new Int32Array(order.length),
      token: new Int32Array(order.length),
      dIn: d,
    };
  order.forEach((src, dst) => {
    out.acts.set(r.acts.subarray(src * d, src * d + d), dst * d);
    out.seq[dst] = r.seq[src];
    out.pos[dst] = r.pos[src];
    out.token[dst] = r.token[src];
  });
  return out;
}

/** Shard k's rows, shuffled: what the activations stage writes as train-k. */
export async function shardRows(
  model: Transformer,
  split: TokenSplit,
  plan: ShardPlan,
  k: number,
  batchSequences: number,
): Promise<ActivationRows> {
  const idx = shardSequences(plan, k);
  if (idx.length === 0) {
    throw new Error(`Not enough training sequences for shard ${k}: lower activations.trainTokens`);
  }
  const rows = await collectActivations(model, split, idx, batchSequences);
  const shuffle = new Rng(deriveSeed(plan.seed, `activations:shard:${k}`)).permutation(
    rows.seq.length,
  );
  return permuteRows(rows, shuffle);
}
