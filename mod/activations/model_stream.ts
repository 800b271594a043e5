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
import type { ActivationSource } from "./stream.ts";

export interface ModelStreamOptions {
  batchSize: number;
  batchSequences: number;
}

export class ModelActivationStream implements ActivationSource {
  readonly dIn: number;
  readonly batchSize: number;
  /** Seconds spent computing activations (for the throughput line). */
  seconds = 0;
  #model: Transformer;
  #split: TokenSplit;
  #plan: ShardPlan;
  #batchSequences: number;
  #shard = -1;
  #acts: Float32Array = new Float32Array(0);
  #row = 0;
  #skip = 0;

  constructor(model: Transformer, split: TokenSplit, plan: ShardPlan, opts: ModelStreamOptions) {
    this.#model = model;
    this.#split = split;
    this.#plan = plan;
    this.dIn = model.config.dMlp;
    this.batchSize = opts.batchSize;
    this.#batchSequences = opts.batchSequences;
  }

  #shardRows(k: number): number {
    return shardSequences(this.#plan, k).length * this.#plan.contextLength;
  }

  totalRows(): Promise<number> {
    let n = 0;
    for (let k = 0; k < this.#plan.nShards; k++) n += this.#shardRows(k);
    return Promise.resolve(n);
  }

  async batches(): Promise<number> {
    return Math.floor((await this.totalRows()) / this.batchSize);
  }

  skip(rows: number): Promise<void> {
    let k = 0;
    while (k < this.#plan.nShards && rows >= this.#shardRows(k)) rows -= this.#shardRows(k++);
    this.#shard = k - 1;
    this.#skip = rows;
    this.#acts = new Float32Array(0);
    return Promise.resolve();
  }

  async #load(): Promise<boolean> {
    this.#shard++;
    if (this.#shard >= this.#plan.nShards || this.#shardRows(this.#shard) === 0) return false;
    const t0 = performance.now();
    const rows = await shardRows(
      this.#model,
      this.#split,
      this.#plan,
      this.#shard,
      this.#batchSequences,
    );
    this.seconds += (performance.now() - t0) / 1000;
    this.#acts = rows.acts;
    this.#row = this.#skip;
    this.#skip = 0;
    return true;
  }

  /** Frees the transformer (the stream owns it). */
  dispose(): void {
    disposeTransformer(this.#model);
  }

  async next(): Promise<Float32Array | null> {
    const d = this.dIn, out = new Float32Array(this.batchSize * d);
    let filled = 0;
    while (filled < this.batchSize) {
      const left = this.#acts.length / d - this.#row;
      if (left <= 0 || this.#shard < 0) {
        if (!(await this.#load())) return null;
        continue;
      }
      const take = Math.min(left, this.batchSize - filled);
      out.set(this.#acts.subarray(this.#row * d, (this.#row + take) * d), filled * d);
      this.#row += take;
      filled += take;
    }
    return out;
  }
}
