/**
 * Scores: the simulation score (Pearson correlation between true and simulated activations,
 * pooled over every token of every held-out example, x 100, as the seed paper's "Score: 40") and
 * the confusion metrics of detection and fuzzing.
 *
 * Zero variance: when either side is constant over all pooled tokens (a dead feature, or a
 * simulator that wrote the same number everywhere) the correlation is undefined; the score is
 * then null and the reason says which side was constant. Binary metrics follow sklearn's
 * zero_division=0: a ratio with a zero denominator is 0.
 *
 * @module
 */
import type { BinaryScores } from "./types.ts";

/** A score, or null with the reason. */
export type ScoreOrReason = { score: number; reason: null } | { score: null; reason: string };

/** Pearson correlation of two equally long series; null when either has zero variance. */
export function pearson(x: readonly number[], y: readonly number[]): number | null {
  if (x.length !== y.length) {
    throw new Error(`Cannot correlate series of lengths ${x.length} and ${y.length}`);
  }
  const n = x.length;
  if (n === 0) return null;
  let mx = 0, my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i];
    my += y[i];
  }
  mx /= n;
  my /= n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i] - mx, dy = y[i] - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx === 0 || syy === 0) return null;
  return Math.max(-1, Math.min(1, sxy / Math.sqrt(sxx * syy)));
}

/** Pooled Pearson x 100 of per-example true and simulated activations. */
export function simulationScore(
  trueActs: readonly number[][],
  simulatedActs: readonly number[][],
): ScoreOrReason {
  const t = trueActs.flat(), s = simulatedActs.flat();
  if (t.length === 0) return { score: null, reason: "no held-out tokens were simulated" };
  const r = pearson(t, s);
  if (r !== null) return { score: 100 * r, reason: null };
  const constT = t.every((v) => v === t[0]), constS = s.every((v) => v === s[0]);
  const side = constT && constS
    ? "true and simulated activations are"
    : constT
    ? "true activations are"
    : "simulated activations are";
  return {
    score: null,
    reason: `${side} constant (${constT ? t[0] : s[0]}) over all ${t.length} held-out tokens, ` +
      "so the correlation is undefined",
  };
}

/** Confusion counts and metrics of binary predictions against labels (1 = activating). */
export function binaryScores(
  labels: readonly (0 | 1)[],
  predictions: readonly (0 | 1)[],
): BinaryScores {
  if (labels.length !== predictions.length) {
    throw new Error(`${labels.length} labels but ${predictions.length} predictions`);
  }
  let tp = 0, fp = 0, tn = 0, fn = 0;
  labels.forEach((l, i) => {
    const p = predictions[i];
    if (l === 1 && p === 1) tp++;
    else if (l === 0 && p === 1) fp++;
    else if (l === 0 && p === 0) tn++;
    else fn++;
  });
  const n = labels.length;
  const div = (a: number, b: number) => (b === 0 ? 0 : a / b);
  const precision = div(tp, tp + fp), recall = div(tp, tp + fn);
  return {
    n,
    tp,
    fp,
    tn,
    fn,
    accuracy: div(tp + tn, n),
    precision,
    recall,
    f1: div(2 * precision * recall, precision + recall),
  };
}
