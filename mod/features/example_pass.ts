/**
 * The one pass of mod/features/max_activating.ts over the held-out rows: every firing of a
 * selected feature goes to its count, sum and max, its top rows and its quantile bins, and every
 * feature's stream of zero rows to its random reservoir. A micro-batch arrives either as a dense
 * f [B, S] from tfjs (every entry read: B × S host steps) or as compressed sparse rows from the
 * native encode (mod/sae/native_step.ts: only the nonzeros, plus O(S) per micro-batch).
 *
 * Both visit each feature's firings in row order and feed its reservoir the same zero stream, so
 * they leave identical samplers for the same rows and seed (tests/heldout_native_test.ts). On the
 * sparse side the reservoir is told where the feature fires, not where it is silent: its rows are
 * listed per feature with a counting sort, and Algorithm L skips ahead by counts
 * (ZeroRows.scanFired).
 *
 * Shape key: B micro-batch rows, F features, S selected features (slots).
 *
 * @module
 */
import type { SparseRows } from "../sae/mod.ts";
import { QuantileBins, sampleKey, TopRows, ZeroRows } from "./samplers.ts";

export interface PassOptions {
  topK: number;
  /** Quantile bins (0: none) and the rows each keeps (see max_activating.ts). */
  quantileBins: number;
  binCapacity: number;
  /** Zero rows each reservoir keeps (0: none). */
  zeroRows: number;
  seed: number;
}

/** The samplers and firing statistics of the selected features, fed one micro-batch at a time. */
export class ExamplePass {
  readonly count: Float64Array;
  readonly sum: Float64Array;
  readonly peak: Float32Array;
  readonly top: TopRows;
  readonly quantiles: QuantileBins;
  readonly zeroRows: ZeroRows;
  /** Per micro-batch: slot s's firings. */
  readonly #nnz: Int32Array;
  /** features[s] → s, −1 for features not selected. */
  readonly #slotOf: Int32Array;

  constructor(
    readonly features: number[],
    dSae: number,
    readonly seq: Int32Array,
    readonly opts: PassOptions,
  ) {
    const S = features.length;
    this.count = new Float64Array(S), this.sum = new Float64Array(S);
    this.peak = new Float32Array(S), this.#nnz = new Int32Array(S);
    this.top = new TopRows(S, opts.topK);
    this.quantiles = new QuantileBins(S, opts.quantileBins, opts.binCapacity);
    this.zeroRows = new ZeroRows(features, opts.zeroRows, opts.seed);
    this.#slotOf = new Int32Array(dSae).fill(-1);
    features.forEach((f, s) => this.#slotOf[f] = s);
  }

  /** Slot s fires on `row` with activation a > 0. */
  #fire(s: number, row: number, a: number) {
    this.#nnz[s]++, this.count[s]++, this.sum[s] += a;
    if (a > this.peak[s]) this.peak[s] = a;
    if (this.opts.topK > 0) this.top.push(s, row, a, this.seq[row]);
    if (this.opts.quantileBins > 0) {
      this.quantiles.observe(s, row, sampleKey(this.opts.seed, this.features[s], row), a);
    }
  }

  /** A dense micro-batch f [b, S] (column s: slot s) whose first row is `start`. */
  scanDense(data: Float32Array, b: number, start: number) {
    const S = this.features.length;
    this.#nnz.fill(0);
    for (let r = 0; r < b; r++) {
      const off = r * S;
      for (let s = 0; s < S; s++) {
        const a = data[off + s];
        if (a > 0) this.#fire(s, start + r, a);
      }
    }
    if (this.opts.zeroRows === 0) return;
    for (let s = 0; s < S; s++) this.zeroRows.scan(s, data, S, b, start, b - this.#nnz[s]);
  }

  /** A micro-batch of b rows from row `start` as CSR over all F features (values > 0). */
  scanSparse(f: SparseRows, b: number, start: number) {
    const S = this.features.length, slotOf = this.#slotOf;
    this.#nnz.fill(0);
    for (let r = 0; r < b; r++) {
      for (let j = f.rowPtr[r]; j < f.rowPtr[r + 1]; j++) {
        const s = slotOf[f.col[j]], a = f.val[j];
        if (s >= 0 && a > 0) this.#fire(s, start + r, a);
      }
    }
    if (this.opts.zeroRows === 0) return;
    // Each slot's firing rows, ascending: a counting sort by slot.
    const at = new Int32Array(S + 1);
    for (let s = 0; s < S; s++) at[s + 1] = at[s] + this.#nnz[s];
    const fired = new Int32Array(at[S]), next = at.slice(0, S);
    for (let r = 0; r < b; r++) {
      for (let j = f.rowPtr[r]; j < f.rowPtr[r + 1]; j++) {
        const s = slotOf[f.col[j]];
        if (s >= 0 && f.val[j] > 0) fired[next[s]++] = r;
      }
    }
    for (let s = 0; s < S; s++) this.zeroRows.scanFired(s, fired, at[s], at[s + 1], b, start);
  }
}

/**
 * Context activations from sparse rows: out[k] = f[entryRow[k], entryCol[k]] for every context
 * entry k, where entryRow indexes the encoded rows and f arrives a chunk of rows at a time.
 * Entries are bucketed by row once; each row's nonzeros are scattered into a width-F scratch row,
 * read, and cleared, so the work is entries + nonzeros.
 */
export class SparseContextFill {
  readonly out: Float32Array;
  readonly #start: Int32Array;
  readonly #entries: Int32Array;
  readonly #scratch: Float32Array;
  constructor(
    rows: number,
    dSae: number,
    readonly entryRow: Int32Array,
    readonly entryCol: Int32Array,
  ) {
    const K = entryRow.length;
    this.out = new Float32Array(K);
    this.#start = new Int32Array(rows + 1);
    for (let k = 0; k < K; k++) this.#start[entryRow[k] + 1]++;
    for (let r = 0; r < rows; r++) this.#start[r + 1] += this.#start[r];
    const next = this.#start.slice(0, rows);
    this.#entries = new Int32Array(K);
    for (let k = 0; k < K; k++) this.#entries[next[entryRow[k]]++] = k;
    this.#scratch = new Float32Array(dSae);
  }

  /** Fills the entries of encoded rows c0 .. c0 + b from their CSR f. */
  chunk(f: SparseRows, b: number, c0: number) {
    const scratch = this.#scratch;
    for (let r = 0; r < b; r++) {
      if (this.#start[c0 + r] === this.#start[c0 + r + 1]) continue; // no context entry here
      const j0 = f.rowPtr[r], j1 = f.rowPtr[r + 1];
      for (let j = j0; j < j1; j++) scratch[f.col[j]] = f.val[j];
      for (let i = this.#start[c0 + r]; i < this.#start[c0 + r + 1]; i++) {
        const k = this.#entries[i];
        this.out[k] = scratch[this.entryCol[k]];
      }
      for (let j = j0; j < j1; j++) scratch[f.col[j]] = 0;
    }
  }
}
