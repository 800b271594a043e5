/**
 * Parquet in and out, through parquet-wasm (the Rust arrow/parquet crates compiled to wasm) and
 * apache-arrow tables. Files are plain Parquet that DuckDB, pandas and polars read.
 *
 * - writes are zstd-compressed, in row groups, and atomic (temp file + rename);
 * - reads go through `ParquetFile` over a lazily read Blob, so that selected columns, row groups,
 *   offset and limit of a large file are read without loading all of it (parquet-wasm's
 *   `readParquet` ignores `columns`);
 * - a missing or corrupt file is an error that names the file: parquet-wasm traps (a Rust panic
 *   surfaces as `RuntimeError: unreachable`) on some damaged files, and `guarded` turns every
 *   failure inside it into `Cannot read Parquet "<path>": corrupt or truncated (<detail>)`.
 *
 * @module
 */
import * as arrow from "apache-arrow";
import * as pq from "parquet-wasm";
import { openAsBlob } from "node:fs";
import { errorText } from "./errors.ts";
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

function writerProperties(opts: WriteOptions): pq.WriterProperties {
  let builder = new pq.WriterPropertiesBuilder()
    .setCompression(pq.Compression.ZSTD)
    .setMaxRowGroupSize(opts.rowGroupSize ?? 65536);
  if (opts.metadata && Object.keys(opts.metadata).length > 0) {
    builder = builder.setKeyValueMetadata(new Map(Object.entries(opts.metadata)));
  }
  return builder.build();
}

/** Encodes an Arrow table as Parquet bytes (zstd). */
export function encodeParquet(
  table: arrow.Table,
  opts: WriteOptions = {},
): Uint8Array<ArrayBuffer> {
  const wasmTable = pq.Table.fromIPCStream(arrow.tableToIPC(table, "stream"));
  return pq.writeParquet(wasmTable, writerProperties(opts)) as Uint8Array<ArrayBuffer>;
}

/**
 * Writes the tables `parts` yields (one schema) to `path` as one Parquet file, atomically, one
 * part in parquet-wasm's memory at a time: for tables too large for its 4 GiB heap (1M
 * activation rows of width 512 are 2 GB), which writeParquet cannot encode in one piece.
 */
export async function writeParquetParts(
  path: string,
  parts: Iterable<arrow.Table> | AsyncIterable<arrow.Table>,
  opts: WriteOptions = {},
): Promise<void> {
  const it =
    (Symbol.asyncIterator in parts
      ? (parts as AsyncIterable<arrow.Table>)[Symbol.asyncIterator]()
      : (parts as Iterable<arrow.Table>)[Symbol.iterator]()) as
        | AsyncIterator<arrow.Table>
        | Iterator<arrow.Table>;
  const batches = new ReadableStream<pq.RecordBatch>({
    async pull(ctrl) {
      const next = await it.next();
      if (next.done) return ctrl.close();
      const t = pq.Table.fromIPCStream(arrow.tableToIPC(next.value, "stream"));
      for (const rb of t.recordBatches()) ctrl.enqueue(rb);
    },
  });
  const bytes = await pq.transformParquetStream(batches, writerProperties(opts));
  await writeFileAtomic(path, bytes as ReadableStream<Uint8Array>);
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
    throw new Error(`Cannot read ${label}: corrupt or truncated Parquet (${errorText(e)})`);
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
    throw new Error(`Cannot read "${path}": ${errorText(e)}`);
  }
  return await guarded(path, () => pq.ParquetFile.fromFile(blob));
}

/** Errors this module raises itself (missing column, bad row group): passed on as they are. */
class ReadError extends Error {}

/**
 * Runs a parquet-wasm / Arrow read of `path`; any failure but our own ReadError (a wasm trap such
 * as `RuntimeError: unreachable`, a decode error, a TypeError from a damaged buffer) becomes one
 * line naming the file.
 */
async function guarded<T>(path: string, fn: () => Promise<T> | T): Promise<T> {
  listenForTraps();
  let reject!: (e: unknown) => void;
  const trapped = new Promise<never>((_, r) => (reject = r));
  inFlight.add(reject);
  try {
    return await Promise.race([Promise.resolve().then(fn), trapped]);
  } catch (e) {
    if (e instanceof ReadError) throw e;
    throw new Error(`Cannot read Parquet "${path}": corrupt or truncated (${errorText(e)})`);
  } finally {
    inFlight.delete(reject);
  }
}

/**
 * parquet-wasm decodes pages in a future that wasm-bindgen polls from a callback, so a trap
 * there (`RuntimeError: unreachable` on a damaged page) is an uncaught error of the whole
 * program, not a rejection of the read's promise. While guarded reads are in flight, such an
 * error is taken over here and fails those reads instead.
 */
const inFlight = new Set<(e: unknown) => void>();
let listening = false;

function listenForTraps(): void {
  if (listening) return;
  listening = true;
  globalThis.addEventListener("error", (ev: ErrorEvent) => {
    if (inFlight.size === 0 || !(ev.error instanceof WebAssembly.RuntimeError)) return;
    ev.preventDefault();
    for (const reject of inFlight) reject(ev.error);
  });
}

/** The footer's schema (reads no row data). */
async function schemaOf(path: string, file: pq.ParquetFile): Promise<arrow.Schema> {
  return await guarded(
    path,
    async () => arrow.tableFromIPC((await file.read({ limit: 0 })).intoIPCStream()).schema,
  );
}

/** Row counts, row groups, column names and footer metadata, without reading any data. */
export async function parquetInfo(path: string): Promise<ParquetInfo> {
  const file = await openFile(path);
  try {
    const { numRows, numRowGroups, rowGroupRows, kv } = await guarded(path, () => {
      const meta = file.metadata();
      const fileMeta = meta.fileMetadata();
      return {
        numRows: fileMeta.numRows(),
        numRowGroups: meta.numRowGroups(),
        rowGroupRows: meta.rowGroups().map((rg) => rg.numRows()),
        kv: fileMeta.keyValueMetadata() as Map<string, string>,
      };
    });
    const metadata: Record<string, string> = {};
    for (const [k, v] of kv) if (k !== "ARROW:schema") metadata[k] = v;
    const schema = await schemaOf(path, file);
    return {
      numRows,
      numRowGroups,
      rowGroupRows,
      columns: schema.fields.map((f) => f.name),
      metadata,
    };
  } finally {
    freeQuietly(file);
  }
}

/** Reads a Parquet file (or the selected columns / row groups / rows of it) as an Arrow table. */
export async function readParquet(path: string, opts: ReadOptions = {}): Promise<arrow.Table> {
  const file = await openFile(path);
  try {
    if (opts.columns) {
      const have = (await schemaOf(path, file)).fields.map((f) => f.name);
      const missing = opts.columns.filter((c) => !have.includes(c));
      if (missing.length > 0) {
        throw new ReadError(
          `Cannot read "${path}": no column ${missing.map((m) => `"${m}"`).join(", ")} (it has ${
            have.join(", ")
          })`,
        );
      }
    }
    if (opts.rowGroups) {
      const n = await guarded(path, () => file.metadata().numRowGroups());
      const bad = opts.rowGroups.find((g) => !Number.isInteger(g) || g < 0 || g >= n);
      if (bad !== undefined) {
        throw new ReadError(`Cannot read "${path}": row group ${bad} does not exist (it has ${n})`);
      }
    }
    return await guarded(path, async () => {
      const wasmTable = await file.read({
        columns: opts.columns,
        rowGroups: opts.rowGroups,
        offset: opts.offset,
        limit: opts.limit,
        batchSize: 65536,
      });
      return arrow.tableFromIPC(wasmTable.intoIPCStream());
    });
  } finally {
    freeQuietly(file);
  }
}

/** Frees the wasm-side file; after a trap the instance may refuse, which must not hide the error. */
function freeQuietly(file: pq.ParquetFile): void {
  try {
    file.free();
  } catch {
    // nothing to free that matters: the process is about to report the read error
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
