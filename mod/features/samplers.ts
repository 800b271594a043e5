/**
 * The per-feature samplers behind mod/features/max_activating.ts, each in flat typed arrays so memory is
 * O(features x kept rows): the top-K rows, one per sequence (min-heaps), rows sampled inside
 * activation-quantile bins (by a seeded per-row key, exact however the running max moves), and
 * random rows where the feature is silent (reservoir sampling, Algorithm L).
 *
 * @module
 */
import { deriveSeed, Rng } from "../run/mod.ts";
const KEY_LIMIT = 2 ** 53;

/** The seeded key that orders rows inside a quantile bin: distinct rows get distinct keys. */
export function sampleKey(seed: number, feature: number, row: number): number {
  const a = fmix32(fmix32((seed ^ 0x2545f491) >>> 0) ^ feature);
  const h1 = fmix32(a ^ fmix32(row));
  const h2 = fmix32(h1 ^ 0x68e31da4);
  return h1 * 2097152 + (h2 >>> 11); // 32 + 21 bits: exact in a float64, unique per row
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The quantile bin of activation `a` > 0 under max `m`. */
export function quantileBin(a: number, m: number, bins: number): number {
  return Math.min(bins - 1, Math.floor((bins * a) / m));
}

/**
 * Per-feature top-K rows with at most one row per sequence (the sequence's max), as min-heaps in
 * flat arrays; the root is the worst kept row.
 *
 * Why one per sequence: a feature that fires on runs of consecutive tokens would otherwise fill
 * its top K with one window shifted by a token, and any split of those examples between an
 * explainer and a scorer would share almost every token. The kept set is exactly the top K of the
 * per-sequence maxima: a sequence's entry is replaced in place when a better row of it arrives,
 * and an evicted sequence can only come back with a row better than the one evicted (the root
 * never falls), so no sequence is ever held twice.
 */
export class TopRows {
  readonly val: Float32Array;
  readonly row: Int32Array;
  readonly seq: Int32Array;
  readonly size: Int32Array;
  constructor(features: number, readonly k: number) {
    this.val = new Float32Array(features * k), this.row = new Int32Array(features * k);
    this.seq = new Int32Array(features * k), this.size = new Int32Array(features);
  }

  /** Worse: the lower activation, or the later row at equal activation. */
  #worse(i: number, j: number): boolean {
    const { val, row } = this;
    return val[i] < val[j] || (val[i] === val[j] && row[i] > row[j]);
  }
  #swap(i: number, j: number) {
    const { val, row, seq } = this, v = val[i], r = row[i], q = seq[i];
    val[i] = val[j], row[i] = row[j], seq[i] = seq[j], val[j] = v, row[j] = r, seq[j] = q;
  }
  #siftDown(base: number, n: number, i: number) {
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < n && this.#worse(base + l, base + m)) m = l;
      if (r < n && this.#worse(base + r, base + m)) m = r;
      if (m === i) return;
      this.#swap(base + i, base + m), i = m;
    }
  }

  /** Takes a firing of feature slot s on `row` (of sequence `seq`) with activation a. */
  push(s: number, row: number, a: number, seq: number) {
    const base = s * this.k, k = this.k, n = this.size[s];
    // Full and no better than the root: every kept row, its sequence's included, beats it.
    if (n === k && (a < this.val[base] || (a === this.val[base] && row > this.row[base]))) return;
    for (let i = 0; i < n; i++) {
      if (this.seq[base + i] !== seq) continue;
      const v = this.val[base + i];
      if (a < v || (a === v && row > this.row[base + i])) return;
      this.val[base + i] = a, this.row[base + i] = row; // better: it only moves away from the root
      return this.#siftDown(base, n, i);
    }
    if (n < k) {
      let i = this.size[s]++;
      this.val[base + i] = a, this.row[base + i] = row, this.seq[base + i] = seq;
      for (
        let p = (i - 1) >> 1;
        i > 0 && this.#worse(base + i, base + p);
        i = p, p = (i - 1) >> 1
      ) {
        this.#swap(base + i, base + p);
      }
      return;
    }
    this.val[base] = a, this.row[base] = row, this.seq[base] = seq;
    this.#siftDown(base, k, 0);
  }

  /** Feature slot s's rows, highest activation first, earlier row first on ties. */
  sorted(s: number): { row: number; a: number }[] {
    return Array.from({ length: this.size[s] }, (_, i) => s * this.k + i)
      .map((i) => ({ row: this.row[i], a: this.val[i] }))
      .sort((x, y) => y.a - x.a || x.row - y.row);
  }
}

/**
 * Per-feature quantile bins of capacity C, each holding the rows whose key is below its
 * threshold τ (see the module header for why the sample stays exact as max rises).
 */
export class QuantileBins {
  readonly max: Float32Array;
  readonly row: Int32Array;
  readonly key: Float64Array;
  readonly act: Float32Array;
  readonly size: Int32Array;
  readonly tau: Float64Array;
  constructor(features: number, readonly bins: number, readonly cap: number) {
    const n = features * bins * cap;
    this.max = new Float32Array(features);
    this.row = new Int32Array(n), this.key = new Float64Array(n), this.act = new Float32Array(n);
    this.size = new Int32Array(features * bins);
    this.tau = new Float64Array(features * bins).fill(KEY_LIMIT);
  }

  /** Takes a firing (activation a > 0) of feature slot s on `row`, whose key is `key`. */
  observe(s: number, row: number, key: number, a: number) {
    if (a > this.max[s]) {
      this.max[s] = a;
      this.#rebin(s);
    }
    const b = quantileBin(a, this.max[s], this.bins), sb = s * this.bins + b;
    if (!(key < this.tau[sb])) return;
    const base = sb * this.cap;
    if (this.size[sb] < this.cap) {
      const i = base + this.size[sb]++;
      this.key[i] = key, this.row[i] = row, this.act[i] = a;
      return;
    }
    // Full: the largest key among the cap + 1 candidates leaves and becomes the threshold.
    let m = base;
    for (let i = base + 1; i < base + this.cap; i++) if (this.key[i] > this.key[m]) m = i;
    if (key > this.key[m]) return this.#lowerTau(s, b, key);
    const t = this.key[m];
    this.key[m] = key, this.row[m] = row, this.act[m] = a;
    this.#lowerTau(s, b, t);
  }

  /** Lowers τ of bin b and of every bin below it to `t`, dropping rows no longer below it. */
  #lowerTau(s: number, b: number, t: number) {
    for (let bb = b; bb >= 0 && this.tau[s * this.bins + bb] > t; bb--) {
      const sb = s * this.bins + bb, base = sb * this.cap;
      this.tau[sb] = t;
      let k = 0;
      for (let i = base; i < base + this.size[sb]; i++) {
        if (this.key[i] >= t) continue;
        this.key[base + k] = this.key[i], this.row[base + k] = this.row[i];
        this.act[base + k++] = this.act[i];
      }
      this.size[sb] = k;
    }
  }

  /** After max rose: every kept row moves to its new (lower or equal) bin, top bin first. */
  #rebin(s: number) {
    const items: { row: number; key: number; act: number; bin: number }[] = [];
    for (let sb = s * this.bins; sb < (s + 1) * this.bins; sb++) {
      for (let i = sb * this.cap; i < sb * this.cap + this.size[sb]; i++) {
        const act = this.act[i], bin = quantileBin(act, this.max[s], this.bins);
        items.push({ row: this.row[i], key: this.key[i], act, bin });
      }
      this.size[sb] = 0;
    }
    if (items.length === 0) return;
    for (let b = this.bins - 1; b >= 0; b--) {
      const sb = s * this.bins + b, base = sb * this.cap;
      const mine = items.filter((it) => it.bin === b && it.key < this.tau[sb])
        .sort((x, y) => x.key - y.key);
      if (mine.length > this.cap) {
        const t = mine[this.cap].key;
        mine.length = this.cap;
        for (let i = s * this.bins; i <= sb; i++) this.tau[i] = Math.min(this.tau[i], t);
      }
      mine.forEach((it, i) => {
        this.key[base + i] = it.key, this.row[base + i] = it.row, this.act[base + i] = it.act;
      });
      this.size[sb] = mine.length;
    }
  }

  /**
   * Bin b's `per` rows with the smallest keys whose sequence (`seqOf(row)`) is not in `usedSeqs`,
   * at most one per sequence, highest activation first; their sequences join `usedSeqs`.
   */
  sample(
    s: number,
    b: number,
    per: number,
    usedSeqs: Set<number>,
    seqOf: (row: number) => number,
  ): { row: number; a: number }[] {
    const sb = s * this.bins + b, base = sb * this.cap;
    const order = Array.from({ length: this.size[sb] }, (_, i) => base + i)
      .sort((i, j) => this.key[i] - this.key[j]);
    const out: { row: number; a: number }[] = [];
    for (const i of order) {
      if (out.length >= per) break;
      const q = seqOf(this.row[i]);
      if (usedSeqs.has(q)) continue;
      usedSeqs.add(q);
      out.push({ row: this.row[i], a: this.act[i] });
    }
    return out.sort((x, y) => y.a - x.a || x.row - y.row);
  }
}

/** Per-feature uniform samples of the rows where the feature is 0 (Li's Algorithm L). */
export class ZeroRows {
  readonly row: Int32Array;
  readonly size: Int32Array;
  /** Position in the feature's stream of zero rows of the next row to take. */
  readonly next: Float64Array;
  readonly w: Float64Array;
  readonly seen: Float64Array;
  readonly rngs: Rng[];
  constructor(features: number[], readonly k: number, seed: number) {
    const S = features.length;
    this.row = new Int32Array(S * k), this.size = new Int32Array(S);
    this.next = new Float64Array(S), this.w = new Float64Array(S), this.seen = new Float64Array(S);
    this.rngs = k > 0 ? features.map((f) => new Rng(deriveSeed(seed, `random:${f}`))) : [];
  }

  /** Scans slot s's column of a micro-batch f [b, width] whose first row is `start`. */
  scan(s: number, data: Float32Array, width: number, b: number, start: number, zeros: number) {
    const end = this.seen[s] + zeros;
    for (let r = 0, z = this.seen[s]; r < b && this.next[s] < end; r++) {
      if (data[r * width + s] > 0) continue;
      if (z === this.next[s]) this.#take(s, start + r, z);
      z++;
    }
    this.seen[s] = end;
  }

  /**
   * The same scan from the rows where slot s fires instead of its column: `fired[from..to)`, the
   * micro-batch rows (0..b) where it is nonzero, ascending. Algorithm L skips ahead by counts, so
   * this touches only those rows and the ones it takes: the q-th zero row of the batch is
   * q + (fired rows at or before it).
   */
  scanFired(s: number, fired: Int32Array, from: number, to: number, b: number, start: number) {
    const end = this.seen[s] + b - (to - from);
    let p = from;
    while (this.next[s] < end) {
      const z = this.next[s];
      let r = z - this.seen[s] + (p - from);
      while (p < to && fired[p] <= r) p++, r++;
      this.#take(s, start + r, z);
    }
    this.seen[s] = end;
  }

  #take(s: number, row: number, z: number) {
    const rng = this.rngs[s], k = this.k;
    if (this.size[s] < k) {
      this.row[s * k + this.size[s]++] = row;
      if (this.size[s] < k) return void (this.next[s] = z + 1);
      this.w[s] = Math.exp(Math.log(rng.nextOpen()) / k);
    } else {
      this.row[s * k + rng.int(k)] = row;
      this.w[s] *= Math.exp(Math.log(rng.nextOpen()) / k);
    }
    this.next[s] = z + Math.floor(Math.log(rng.nextOpen()) / Math.log1p(-this.w[s])) + 1;
  }

  /** Slot s's rows, in row order. */
  sorted(s: number): number[] {
    return Array.from(this.row.subarray(s * this.k, s * this.k + this.size[s])).sort((x, y) =>
      x - y
    );
  }
}
