/**
 * Parquet in and out, through parquet-wasm (the Rust arrow/parquet crates compiled to wasm) and
 * apache-arrow tables. Files are plain Parquet that DuckDB, pandas and polars read.
 *
 * - writes are zstd-compressed, in row groups, and atomic (temp file + rename);
 * - reads go through `ParquetFile` over a lazily read Blob, so that selected columns, row groups,
 *   offset and limit of a large file are read without loading all of it (parquet-wasm's
 *   `readParquet` ignores `columns`);
 * - a missing or corrupt file is an error that names the file.
 *
 * @module
 */
import * as arrow from "apache-arrow";
import * as pq from "parquet-wasm";
import { openAsBlob } from "node:fs";
import { writeFileAtomic } from "./fs.ts";

export interface WriteOptions {
  /** Rows per row group (default 65,536). */
  rowGroupSize?: number;
  /** Key-value metadata stored in the Parquet footer (readable with parquetInfo). */
  metadata?: Record<string, string>;
}

export interface ReadOptions {
  columns?: string[];
  rowGroups?: number[];
  offset?: number;
  limit?: number;
}

export interface ParquetInfo {
  numRows: number;
  numRowGroups: number;
  rowGroupRows: number[];
  columns: string[];
  metadata: Record<string, string>;
}

/** Encodes an Arrow table as Parquet bytes (zstd). */
export function encodeParquet(
  table: arrow.Table,
  opts: WriteOptions = {},
): Uint8Array<ArrayBuffer> {
  let builder = new pq.WriterPropertiesBuilder()
    .setCompression(pq.Compression.ZSTD)
    .setMaxRowGroupSize(opts.rowGroupSize ?? 65536);
  if (opts.metadata && Object.keys(opts.metadata).length > 0) {
    builder = builder.setKeyValueMetadata(new Map(Object.entries(opts.metadata)));
  }
  const wasmTable = pq.Table.fromIPCStream(arrow.tableToIPC(table, "stream"));
  return pq.writeParquet(wasmTable, builder.build()) as Uint8Array<ArrayBuffer>;
}

/** Writes an Arrow table to `path` as Parquet, atomically. */
export async function writeParquet(
  path: string,
  table: arrow.Table,
  opts: WriteOptions = {},
): Promise<void> {
  await writeFileAtomic(path, encodeParquet(table, opts));
}

/** Decodes Parquet bytes already in memory (e.g. a downloaded shard). */
export function decodeParquet(bytes: Uint8Array, label = "Parquet data"): arrow.Table {
  try {
    return arrow.tableFromIPC(pq.readParquet(bytes).intoIPCStream());
  } catch (e) {
    throw new Error(`Cannot read ${label}: not a valid Parquet file (${errText(e)})`);
  }
}

async function openFile(path: string): Promise<pq.ParquetFile> {
  let blob: Blob;
  try {
    blob = await openAsBlob(path);
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT" || e instanceof Deno.errors.NotFound) {
      throw new Error(`Cannot read "${path}": file does not exist`);
    }
    throw new Error(`Cannot read "${path}": ${errText(e)}`);
  }
  try {
    return await pq.ParquetFile.fromFile(blob);
  } catch (e) {
    throw new Error(`Cannot read "${path}": not a valid Parquet file (${errText(e)})`);
  }
}

/** Row counts, row groups, column names and footer metadata, without reading any data. */
export async function parquetInfo(path: string): Promise<ParquetInfo> {
  const file = await openFile(path);
  try {
    const meta = file.metadata();
    const fileMeta = meta.fileMetadata();
    const rowGroupRows = meta.rowGroups().map((rg) => rg.numRows());
    const kv = fileMeta.keyValueMetadata() as Map<string, string>;
    const metadata: Record<string, string> = {};
    for (const [k, v] of kv) if (k !== "ARROW:schema") metadata[k] = v;
    const schema = arrow.tableFromIPC(
      (await file.read({ limit: 0 })).intoIPCStream(),
    ).schema;
    return {
      numRows: fileMeta.numRows(),
      numRowGroups: meta.numRowGroups(),
      rowGroupRows,
      columns: schema.fields.map((f) => f.name),
      metadata,
    };
  } finally {
    file.free();
  }
}

/** Reads a Parquet file (or the selected columns / row groups / rows of it) as an Arrow table. */
export async function readParquet(path: string, opts: ReadOptions = {}): Promise<arrow.Table> {
  const file = await openFile(path);
  try {
    if (opts.columns) {
      const have = arrow.tableFromIPC((await file.read({ limit: 0 })).intoIPCStream()).schema
        .fields.map((f) => f.name);
      const missing = opts.columns.filter((c) => !have.includes(c));
      if (missing.length > 0) {
        throw new Error(
          `Cannot read "${path}": no column ${missing.map((m) => `"${m}"`).join(", ")} (it has ${
            have.join(", ")
          })`,
        );
      }
    }
    if (opts.rowGroups) {
      const n = file.metadata().numRowGroups();
      const bad = opts.rowGroups.find((g) => !Number.isInteger(g) || g < 0 || g >= n);
      if (bad !== undefined) {
        throw new Error(`Cannot read "${path}": row group ${bad} does not exist (it has ${n})`);
      }
    }
    let wasmTable;
    try {
      wasmTable = await file.read({
        columns: opts.columns,
        rowGroups: opts.rowGroups,
        offset: opts.offset,
        limit: opts.limit,
        batchSize: 65536,
      });
    } catch (e) {
      throw new Error(`Cannot read "${path}": ${errText(e)}`);
    }
    return arrow.tableFromIPC(wasmTable.intoIPCStream());
  } finally {
    file.free();
  }
}

/** Checks that a table has the columns a stage needs, with an error naming the file. */
export function requireColumns(table: arrow.Table, columns: string[], label: string): void {
  const have = table.schema.fields.map((f) => f.name);
  const missing = columns.filter((c) => !have.includes(c));
  if (missing.length > 0) {
    throw new Error(`${label} lacks column ${missing.map((m) => `"${m}"`).join(", ")}`);
  }
}

type FlatArray = Uint16Array | Int32Array | Float32Array;

/** A fixed_size_list<T>[width] column over `values` (row-major, rows x width), no copy. */
export function fixedSizeListVector(values: FlatArray, width: number): arrow.Vector {
  const childType = values instanceof Uint16Array
    ? new arrow.Uint16()
    : values instanceof Int32Array
    ? new arrow.Int32()
    : new arrow.Float32();
  const rows = values.length / width;
  if (!Number.isInteger(rows)) {
    throw new Error(`fixedSizeListVector: ${values.length} values do not fill rows of ${width}`);
  }
  const type = new arrow.FixedSizeList(width, new arrow.Field("item", childType, false));
  // The casts pick makeData's overloads; the union of element types defeats TypeScript's choice.
  const child = arrow.makeData({
    type: childType as arrow.Float32,
    length: values.length,
    data: values as Float32Array,
  });
  const list = arrow.makeData({
    type: type as arrow.FixedSizeList<arrow.Float32>,
    length: rows,
    child,
    nullCount: 0,
  });
  return arrow.makeVector(list);
}

/** The values of a fixed_size_list column as one flat row-major array (copied out of chunks). */
export function fixedSizeListValues<T extends FlatArray>(
  col: arrow.Vector,
  width: number,
  ArrayType: { new (n: number): T },
): T {
  const out = new ArrayType(col.length * width);
  let pos = 0;
  for (const data of col.data) {
    const child = data.children[0];
    if (data.offset === 0 && child.offset === 0) {
      out.set((child.values as T).subarray(0, data.length * width), pos);
    } else {
      // A sliced chunk: go row by row rather than trust offset arithmetic.
      const vec = arrow.makeVector(data);
      for (let r = 0; r < data.length; r++) out.set(vec.get(r)!.toArray(), pos + r * width);
    }
    pos += data.length * width;
  }
  return out;
}

function errText(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split("\n")[0].slice(0, 300);
}
