/**
 * Deterministic test tensors: the same seed gives the same values on every backend and run.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** `n` deterministic values in [-1, 1) from a linear congruential generator. */
export function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** A tensor of the given shape filled with values(size, seed). */
export function tensor(shape: number[], seed: number): tf.Tensor {
  return tf.tensor(values(shape.reduce((a, b) => a * b, 1), seed), shape);
}
