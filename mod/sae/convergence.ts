/**
 * Whether an SAE's training metrics have flattened: the relative change of a logged metric (MSE,
 * L0) over the last fifth of training, as the mean of that window's second half against its first
 * half (halves, not end points, because each logged value is one batch's and noisy).
 *
 *   lastFifthChange([100, 200, ..., 1000], mse)   // -0.012: MSE fell 1.2% over the last fifth
 *
 * A run counts as flat when both MSE and L0 changed by less than FLAT_TOLERANCE.
 *
 * @module
 */

/** "A few percent": the most a flat metric may change over the last fifth. */
export const FLAT_TOLERANCE = 0.05;

/**
 * (mean of the second half − mean of the first half) / |mean of the first half| over the logged
 * values whose step lies in the last fifth of the run (after 0.8 × the last step). NaN with fewer
 * than two values there, or a first-half mean of 0.
 */
export function lastFifthChange(steps: ArrayLike<number>, values: ArrayLike<number>): number {
  if (steps.length !== values.length) {
    throw new Error(`lastFifthChange: ${steps.length} steps for ${values.length} values`);
  }
  if (steps.length === 0) return NaN;
  const end = steps[steps.length - 1], from = 0.8 * end;
  const window: number[] = [];
  for (let i = 0; i < steps.length; i++) if (steps[i] > from) window.push(values[i]);
  if (window.length < 2) return NaN;
  const half = Math.floor(window.length / 2);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const first = mean(window.slice(0, half)), second = mean(window.slice(window.length - half));
  return first === 0 ? NaN : (second - first) / Math.abs(first);
}
