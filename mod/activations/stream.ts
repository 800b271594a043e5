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

/**
 * What both sources share: the training rows come in shards of known sizes, one shard in memory
 * at a time; batches carry over shard boundaries, and skip() starts mid-shard. A subclass says how
 * many rows each shard has and produces one shard's rows.
 */
export abstract class ShardedSource implements ActivationSource {
  readonly dIn: number;
  readonly batchSize: number;
  #shard = -1;
  #acts: Float32Array = new Float32Array(0);
  #row = 0;
  #skip = 0;

  constructor(opts: { dIn: number; batchSize: number }) {
    this.dIn = opts.dIn;
    this.batchSize = opts.batchSize;
  }

  /** Rows in each shard, in order (reads no rows). */
  protected abstract shardSizes(): Promise<number[]>;
  /** Shard k's rows (its size x dIn, row-major). */
  protected abstract shardActs(k: number): Promise<Float32Array>;

  async totalRows(): Promise<number> {
    return (await this.shardSizes()).reduce((a, b) => a + b, 0);
  }

  async batches(): Promise<number> {
    return Math.floor((await this.totalRows()) / this.batchSize);
  }

  async skip(rows: number): Promise<void> {
    const sizes = await this.shardSizes();
    let shard = 0;
    while (shard < sizes.length && rows >= sizes[shard]) rows -= sizes[shard++];
    this.#shard = shard - 1;
    this.#skip = rows;
    this.#acts = new Float32Array(0);
  }

  async #load(): Promise<boolean> {
    this.#shard++;
    const sizes = await this.shardSizes();
    if (this.#shard >= sizes.length) return false;
    // An empty shard is passed over (next() moves on to the one after it).
    this.#acts = sizes[this.#shard] === 0 ? new Float32Array(0) : await this.shardActs(this.#shard);
    this.#row = this.#skip;
    this.#skip = 0;
    return true;
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

/** Batches from the cached Parquet shards. */
export class ActivationStream extends ShardedSource {
  readonly shards: string[];
  #rowsPerShard: number[] = [];

  constructor(shards: string[], opts: { dIn: number; batchSize: number }) {
    if (shards.length === 0) throw new Error("No activation shards to train on");
    super(opts);
    this.shards = shards;
  }

  /** From the footers; reads no data. */
  protected async shardSizes(): Promise<number[]> {
    if (this.#rowsPerShard.length === 0) {
      for (const s of this.shards) this.#rowsPerShard.push((await parquetInfo(s)).numRows);
    }
    return this.#rowsPerShard;
  }

  protected async shardActs(k: number): Promise<Float32Array> {
    return (await readActivationShard(this.shards[k], { dIn: this.dIn, columns: ["act"] })).acts;
  }
}
