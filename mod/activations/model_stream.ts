/**
 * The SAE's training batches computed on the fly from the transformer (activations.store =
 * "stream"), instead of read from cached shards: shard by shard from the same plan the
 * activations stage writes (collect.ts), so the rows and their order are exactly the cached
 * ones, and nothing but one shard (activations.shardTokens rows) is ever in memory. Each shard's
 * tokens come from S random training sequences, shuffled: a shuffle buffer of S·T rows mixing S
 * documents, as SAELens's activation store mixes its buffer.
 *
 * Why: 10M activation rows of width 512 are 20 GB of float32 on disk, written once and read once
 * in a one-pass SAE run; the one-layer model recomputes them at hundreds of thousands of tokens
 * per second on 2 cores (activations stage stats), a few percent of the SAE step's time.
 *
 *   const s = new ModelActivationStream(model, split, plan, { batchSize, batchSequences });
 *   await s.skip(done * batchSize);  // resume: recomputes only the shard it lands in
 *   for (let b = await s.next(); b; b = await s.next()) trainer.step(b);
 *
 * @module
 */
import type { TokenSplit } from "../tokenize/mod.ts";
import { disposeTransformer, type Transformer } from "../transformer/mod.ts";
import { type ShardPlan, shardRows, shardSequences } from "./collect.ts";
import { ShardedSource } from "./stream.ts";

export interface ModelStreamOptions {
  batchSize: number;
  batchSequences: number;
}

export class ModelActivationStream extends ShardedSource {
  /** Seconds spent computing activations (for the throughput line). */
  seconds = 0;
  #model: Transformer;
  #split: TokenSplit;
  #plan: ShardPlan;
  #batchSequences: number;
  #sizes: number[];

  constructor(model: Transformer, split: TokenSplit, plan: ShardPlan, opts: ModelStreamOptions) {
    super({ dIn: model.config.dMlp, batchSize: opts.batchSize });
    this.#model = model;
    this.#split = split;
    this.#plan = plan;
    this.#batchSequences = opts.batchSequences;
    this.#sizes = Array.from(
      { length: plan.nShards },
      (_, k) => shardSequences(plan, k).length * plan.contextLength,
    );
  }

  protected shardSizes(): Promise<number[]> {
    return Promise.resolve(this.#sizes);
  }

  protected async shardActs(k: number): Promise<Float32Array> {
    const t0 = performance.now();
    const rows = await shardRows(this.#model, this.#split, this.#plan, k, this.#batchSequences);
    this.seconds += (performance.now() - t0) / 1000;
    return rows.acts;
  }

  /** Frees the transformer (the stream owns it). */
  dispose(): void {
    disposeTransformer(this.#model);
  }
}
