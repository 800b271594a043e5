/**
 * Synthetic sparse data with known directions, for the SAE training tests: each row is a sum of a
 * few of `n` seeded unit directions in R^d with random magnitudes, and a count of how many of the
 * directions a decoder recovered.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { Rng } from "../mod/run/mod.ts";

/** Sparse synthetic data: each row is `active` of `n` seeded unit directions in R^d, scaled. */
export class SparseSource {
  readonly dirs: Float32Array;
  readonly rng: Rng;
  constructor(readonly d: number, readonly n: number, readonly active: number, seed: number) {
    this.rng = new Rng(seed);
    this.dirs = new Float32Array(n * d);
    for (let g = 0; g < n; g++) {
      let norm = 0;
      for (let j = 0; j < d; j++) norm += (this.dirs[g * d + j] = this.rng.normal()) ** 2;
      for (let j = 0; j < d; j++) this.dirs[g * d + j] /= Math.sqrt(norm);
    }
  }
  batch(rows: number): tf.Tensor2D {
    const { d, n, rng } = this;
    const x = new Float32Array(rows * d);
    for (let b = 0; b < rows; b++) {
      const chosen = new Set<number>();
      while (chosen.size < this.active) chosen.add(rng.int(n));
      for (const g of chosen) {
        const a = 0.5 + rng.next();
        for (let j = 0; j < d; j++) x[b * d + j] += a * this.dirs[g * d + j];
      }
    }
    return tf.tensor2d(x, [rows, d]);
  }
}

/**
 * How many of the source's directions some decoder row (wDec [F, d]) matches with cosine ≥ `min`.
 */
export function recoveredDirections(src: SparseSource, wDec: Float32Array, min = 0.9): number {
  const { d, n, dirs } = src;
  const f = wDec.length / d;
  let recovered = 0;
  for (let g = 0; g < n; g++) {
    let best = -1;
    for (let i = 0; i < f; i++) {
      let cos = 0, norm = 0;
      for (let j = 0; j < d; j++) {
        cos += wDec[i * d + j] * dirs[g * d + j];
        norm += wDec[i * d + j] ** 2;
      }
      best = Math.max(best, cos / Math.sqrt(norm || 1));
    }
    if (best >= min) recovered++;
  }
  return recovered;
}
