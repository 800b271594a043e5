/**
 * The activation cache: MLP post-activations of the transformer, one row per token, in Parquet
 * shards under data/<run>/activations/.
 *
 *   train-00000.parquet ...  training shards; each holds the tokens of a random subset of
 *                            training sequences, rows shuffled, so SAE batches are not correlated
 *   heldout.parquet          held-out tokens (validation sequences, in order) for statistics
 *
 * Columns: seq (int32: row of tokens.parquet), pos (int32), token (int32), act
 * (fixed_size_list<float32>[d_mlp]). Footer metadata: d_in, hook_name, model, dtype.
 *
 * @module
 */
import { HOOK_NAME } from "../run/mod.ts";
import * as arrow from "apache-arrow";
import { join } from "node:path";
import {
  fixedSizeListValues,
  fixedSizeListVector,
  parquetInfo,
  readParquet,
  requireColumns,
  writeParquet,
} from "../io/mod.ts";

export interface ActivationRows {
  /** rows x dIn, row-major. */
  acts: Float32Array;
  seq: Int32Array;
  pos: Int32Array;
  token: Int32Array;
  dIn: number;
}

export async function writeActivationShard(
  path: string,
  rows: ActivationRows,
  metadata: Record<string, string>,
): Promise<void> {
  const table = new arrow.Table({
    seq: arrow.makeVector(rows.seq),
    pos: arrow.makeVector(rows.pos),
    token: arrow.makeVector(rows.token),
    act: fixedSizeListVector(rows.acts, rows.dIn),
  });
  await writeParquet(path, table, {
    rowGroupSize: 8192,
    metadata: { ...metadata, d_in: String(rows.dIn), hook_name: HOOK_NAME, dtype: "float32" },
  });
}

/** Reads a shard (or some row groups of it), checking its width against `dIn` when given. */
export async function readActivationShard(
  path: string,
  opts: { dIn?: number; rowGroups?: number[]; columns?: ("seq" | "pos" | "token" | "act")[] } = {},
): Promise<ActivationRows> {
  const info = await parquetInfo(path);
  const dIn = Number(info.metadata.d_in);
  if (!Number.isInteger(dIn) || dIn <= 0) {
    throw new Error(`Activation shard "${path}" has no d_in in its metadata`);
  }
  if (opts.dIn !== undefined && dIn !== opts.dIn) {
    throw new Error(`Activation shard "${path}" has width ${dIn}, expected ${opts.dIn}`);
  }
  const columns = opts.columns ?? ["seq", "pos", "token", "act"];
  const table = await readParquet(path, { columns, rowGroups: opts.rowGroups });
  requireColumns(table, columns, `Activation shard "${path}"`);
  const ints = (name: string) =>
    columns.includes(name as "seq")
      ? Int32Array.from(table.getChild(name)!.toArray() as Int32Array)
      : new Int32Array(0);
  const acts = columns.includes("act")
    ? fixedSizeListValues(table.getChild("act")!, dIn, Float32Array)
    : new Float32Array(0);
  for (let i = 0; i < acts.length; i++) {
    if (!Number.isFinite(acts[i])) {
      throw new Error(
        `Activation shard "${path}" holds a non-finite value (${acts[i]}) at row ${
          Math.floor(i / dIn)
        }`,
      );
    }
  }
  return { acts, seq: ints("seq"), pos: ints("pos"), token: ints("token"), dIn };
}

/** The training shards of a run's activation folder, in order. */
export async function listTrainShards(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && /^train-\d{5}\.parquet$/.test(e.name)) names.push(e.name);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`Cannot read activations "${dir}": folder does not exist`);
    }
    throw e;
  }
  return names.sort().map((n) => join(dir, n));
}
