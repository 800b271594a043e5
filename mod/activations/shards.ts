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
  writeParquetParts,
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
  const d = rows.dIn, n = rows.seq.length;
  function* parts(): Generator<arrow.Table> {
    for (let start = 0; start < n || start === 0; start += PART_ROWS) {
      const end = Math.min(n, start + PART_ROWS);
      yield new arrow.Table({
        seq: arrow.makeVector(rows.seq.subarray(start, end)),
        pos: arrow.makeVector(rows.pos.subarray(start, end)),
        token: arrow.makeVector(rows.token.subarray(start, end)),
        act: fixedSizeListVector(rows.acts.subarray(start * d, end * d), d),
      });
      if (end >= n) return;
    }
  }
  await writeParquetParts(path, parts(), {
    rowGroupSize: ROW_GROUP,
    metadata: { ...metadata, d_in: String(d), hook_name: HOOK_NAME, dtype: "float32" },
  });
}

/** Rows per Parquet row group of a shard. */
const ROW_GROUP = 8192;
/**
 * Rows handed to parquet-wasm at a time when writing (a multiple of ROW_GROUP) and row groups
 * read at a time: 64K rows of width 512 are 128 MB, far inside its 4 GiB heap.
 */
const PART_ROWS = 8 * ROW_GROUP;

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
  const want = opts.rowGroups ?? info.rowGroupRows.map((_, i) => i);
  const rowsOf = (g: number) => info.rowGroupRows[g] ?? 0;
  const total = want.reduce((a, g) => a + rowsOf(g), 0);
  const has = (name: string) => columns.includes(name as "seq");
  const out = {
    acts: new Float32Array(has("act") ? total * dIn : 0),
    seq: new Int32Array(has("seq") ? total : 0),
    pos: new Int32Array(has("pos") ? total : 0),
    token: new Int32Array(has("token") ? total : 0),
  };
  // A few row groups at a time: a whole large shard would not fit parquet-wasm's heap.
  const perRead = Math.max(1, Math.floor(PART_ROWS / ROW_GROUP));
  let row = 0;
  for (let i = 0; i < want.length || (i === 0 && want.length === 0); i += perRead) {
    const groups = want.slice(i, i + perRead);
    const table = await readParquet(path, { columns, rowGroups: groups });
    requireColumns(table, columns, `Activation shard "${path}"`);
    const n = table.numRows;
    for (const name of ["seq", "pos", "token"] as const) {
      if (has(name)) out[name].set(table.getChild(name)!.toArray() as Int32Array, row);
    }
    if (has("act")) {
      out.acts.set(fixedSizeListValues(table.getChild("act")!, dIn, Float32Array), row * dIn);
    }
    row += n;
    if (want.length === 0) break;
  }
  const acts = out.acts;
  for (let i = 0; i < acts.length; i++) {
    if (!Number.isFinite(acts[i])) {
      throw new Error(
        `Activation shard "${path}" holds a non-finite value (${acts[i]}) at row ${
          Math.floor(i / dIn)
        }`,
      );
    }
  }
  return { acts, seq: out.seq, pos: out.pos, token: out.token, dIn };
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
