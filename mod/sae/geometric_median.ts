/**
 * Geometric median of a set of points (the point minimising the sum of Euclidean distances), by
 * Weiszfeld's iterations. The SAE's b_dec starts here (Anthropic, "Towards Monosemanticity"): the
 * median is a robust centre, unlike the mean it is not dragged off by a few large activations.
 *
 *   y_{t+1} = Σ_n w_n x_n / Σ_n w_n,   w_n = 1 / max(‖x_n − y_t‖, eps)
 *
 * Clamping the distance at eps keeps the step defined when y_t lands on a data point (the plain
 * iteration divides by zero there); with eps small the fixed point moves by O(eps). Starts at the
 * coordinate-wise mean and stops when a step moves y by less than tol·(1 + ‖y‖) or after maxIter.
 *
 * Shape key: N points, D width.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

export interface GeometricMedianOptions {
  maxIter?: number;
  tol?: number;
  eps?: number;
}

export interface GeometricMedianResult {
  median: Float32Array;
  iterations: number;
  converged: boolean;
}

export function geometricMedian(
  xND: tf.Tensor2D,
  opts: GeometricMedianOptions = {},
): GeometricMedianResult {
  const { maxIter = 200, tol = 1e-6, eps = 1e-8 } = opts;
  if (xND.rank !== 2 || xND.shape[0] < 1) {
    throw new Error(`Geometric median needs a non-empty [N, D] matrix, got shape [${xND.shape}]`);
  }
  let y1D = tf.mean(xND, 0, true);
  let iterations = 0, converged = false;
  while (iterations < maxIter && !converged) {
    iterations += 1;
    const [next1D, moved, scale] = tf.tidy(() => {
      const distN1 = tf.sqrt(tf.sum(tf.square(tf.sub(xND, y1D)), 1, true));
      const wN1 = tf.div(1, tf.maximum(distN1, eps));
      const next = tf.div(tf.sum(tf.mul(xND, wN1), 0, true), tf.sum(wN1));
      return [next, tf.norm(tf.sub(next, y1D)), tf.norm(next)];
    });
    converged = moved.dataSync()[0] <= tol * (1 + scale.dataSync()[0]);
    moved.dispose();
    scale.dispose();
    y1D.dispose();
    y1D = next1D;
  }
  const median = y1D.dataSync() as Float32Array;
  y1D.dispose();
  return { median: Float32Array.from(median), iterations, converged };
}
