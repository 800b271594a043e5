/**
 * Batches of activations read from the training shards in order, one shard in memory at a time,
 * carrying a partial batch over shard boundaries. `skip(rows)` starts mid-stream, which is how a
 * resumed SAE run continues exactly where its checkpoint left off.
 *
 * @module
 */
import { parquetInfo } from "../io/mod.ts";
import { readActivationShard } from "./shards.ts";

/** What the SAE trainer reads batches from: cached shards (here) or the model (model_stream.ts). */
export interface ActivationSource {
  readonly dIn: number;
  readonly batchSize: number;
  /** Rows in one pass. */
  totalRows(): Promise<number>;
  /** Full batches in one pass. */
  batches(): Promise<number>;
  /** Starts the stream `rows` rows in (before the first `next()`). */
  skip(rows: number): Promise<void>;
  /** The next batch (batchSize x dIn, row-major), or null after the last full batch. */
  next(): Promise<Float32Array | null>;
}

export class ActivationStream implements ActivationSource {
  readonly shards: string[];
  readonly dIn: number;
  readonly batchSize: number;
  #rowsPerShard: number[] = [];
  #shard = -1;
  #acts: Float32Array = new Float32Array(0);
  #row = 0;
  #skip = 0;

  constructor(shards: string[], opts: { dIn: number; batchSize: number }) {
    if (shards.length === 0) throw new Error("No activation shards to train on");
    this.shards = shards;
    this.dIn = opts.dIn;
    this.batchSize = opts.batchSize;
  }

  /** Rows in all shards (from the footers; reads no data). */
  async totalRows(): Promise<number> {
    if (this.#rowsPerShard.length === 0) {
      for (const s of this.shards) this.#rowsPerShard.push((await parquetInfo(s)).numRows);
    }
    return this.#rowsPerShard.reduce((a, b) => a + b, 0);
  }

  /** Full batches in one pass. */
  async batches(): Promise<number> {
    return Math.floor((await this.totalRows()) / this.batchSize);
  }

  /** Starts the stream `rows` rows in (before the first `next()`). */
  async skip(rows: number): Promise<void> {
    await this.totalRows();
    let shard = 0;
    while (shard < this.shards.length && rows >= this.#rowsPerShard[shard]) {
      rows -= this.#rowsPerShard[shard++];
    }
    this.#shard = shard - 1;
    this.#skip = rows;
  }

  async #load(): Promise<boolean> {
    this.#shard++;
    if (this.#shard >= this.shards.length) return false;
    const rows = await readActivationShard(this.shards[this.#shard], {
      dIn: this.dIn,
      columns: ["act"],
    });
    this.#acts = rows.acts;
    this.#row = this.#skip;
    this.#skip = 0;
    return true;
  }

  /** The next batch (batchSize x dIn, row-major), or null after the last full batch. */
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
