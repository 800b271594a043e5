/**
 * A small seeded random number generator (Mulberry32) so that every stage is deterministic for a
 * seed, and its whole state is one 32-bit number that checkpoints save and restore (a resumed run
 * then draws exactly the numbers an unbroken one would).
 *
 * @module
 */

/** A generator's whole state, for checkpoints. */
export type RngState = number;

export class Rng {
  #state: number;

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new Error(`Rng seed "${seed}" is not a finite number`);
    this.#state = (Math.floor(seed) >>> 0) ^ 0x9e3779b9;
  }

  state(): RngState {
    return this.#state;
  }

  load(state: RngState): void {
    if (!Number.isInteger(state)) {
      throw new Error(`Rng state ${JSON.stringify(state)} is not an integer`);
    }
    this.#state = state >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform in (0, 1]: safe under a logarithm. */
  nextOpen(): number {
    return 1 - this.next();
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    const u = this.nextOpen(), v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Fisher-Yates shuffle in place; returns the array. */
  shuffle<T>(items: T[] | Int32Array | Uint32Array): typeof items {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i];
      items[i] = items[j];
      items[j] = tmp;
    }
    return items;
  }

  /** 0..n-1 in random order. */
  permutation(n: number): Int32Array {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = i;
    return this.shuffle(out) as Int32Array;
  }
}

/** A seed derived from a base seed and a label, so stages and sources draw independent streams. */
export function deriveSeed(seed: number, label: string): number {
  let h = 2166136261 ^ seed;
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 16777619);
  return h >>> 0;
}
