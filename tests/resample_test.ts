/**
 * Tests for mod/sae/resample.ts on the cpu backend: a dead feature is rebuilt from the input with by
 * far the largest reconstruction error (its decoder row the input at unit norm), with the
 * documented encoder norm, a zero bias and zeroed
 * Adam moments, while every other parameter and moment is left alone; and the weighted sampler
 * draws in proportion to its weights.
 *
 *   deno test --allow-read --allow-env tests/resample_test.ts
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { Adam } from "../mod/transformer/mod.ts";
import { resampleDeadFeatures, weightedSample } from "../mod/sae/mod.ts";
import { disposeSae, fromArrays, type Sae, saeParams, toArrays } from "../mod/sae/mod.ts";
import { Rng } from "../mod/run/mod.ts";
import { assert, assertAllClose, assertAlmostEquals, assertEquals } from "./assert.ts";

await tf.setBackend("cpu");

const D = 4, F = 3, OUTLIER = 37;

/** Exact equality where −0 counts as 0 (a moment masked to zero may come out as −0). */
function same(actual: number, expected: number, msg: string): void {
  assert(actual === expected, `${msg}: ${actual} !== ${expected}`);
}
const B_DEC = [0.1, 0, 0, 0];

/**
 * Feature 0 reads e1 (encoder norm 2), feature 1 reads e2 (encoder norm 0.5), feature 2 is dead
 * (b_enc −100). 63 inputs live in span(e1, e2) and reconstruct with small errors; input 37 is
 * 5·e3 + 2·e4 (plus b_dec), which nothing reconstructs: its error 29 dwarfs the rest.
 */
function setup(): { sae: Sae; inputs: tf.Tensor2D; adam: Adam } {
  const sae = fromArrays({ dIn: D, dSae: F, architecture: "standard", l1Coefficient: 0 }, {
    W_enc: new Float32Array([2, 0, 0, 0, 0.5, 0, 0, 0, 0, 0, 0, 1]),
    b_enc: new Float32Array([0.01, 0.02, -100]),
    W_dec: new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]),
    b_dec: new Float32Array(B_DEC),
  });
  const rng = new Rng(1);
  const rows: number[] = [];
  for (let n = 0; n < 64; n++) {
    const x = n === OUTLIER ? [0, 0, 5, 2] : [0.1 * rng.next(), 0.1 * rng.next(), 0, 0];
    rows.push(...x.map((v, d) => v + B_DEC[d]));
  }
  const adam = new Adam(saeParams(sae), { lr: 1e-3 });
  for (let s = 0; s < 2; s++) {
    const grads = tf.tidy(() => {
      const g: Record<string, tf.Tensor> = {};
      for (const [name, p] of Object.entries(saeParams(sae))) g[name] = tf.randomNormal(p.shape);
      return g;
    });
    adam.step(grads, 0); // lr 0: fills the moments, leaves the weights as set above
    tf.dispose(Object.values(grads));
  }
  return { sae, inputs: tf.tensor2d(rows, [64, D]), adam };
}

Deno.test("resample rebuilds a dead feature from the input with the largest error", async () => {
  const { sae, inputs, adam } = setup();
  const before = await toArrays(sae);
  const momentsBefore = await adam.state();
  const event = resampleDeadFeatures(sae, adam, [2], inputs, new Rng(7), {
    step: 500,
    deadFractionBefore: 1 / 3,
  });
  const after = await toArrays(sae);

  assertEquals(event.inputIndices, [OUTLIER]);
  assertEquals(event.nDead, 1);
  // Decoder row 2 = x / ‖x‖ (the input itself, as Anthropic describe; not x − b_dec), with
  // x = (0.1, 0, 5, 2): ‖x‖ = √29.01.
  const r = Math.sqrt(29.01);
  const unit = [0.1 / r, 0, 5 / r, 2 / r];
  assertAllClose(after.W_dec.subarray(2 * D, 3 * D), unit, 1e-6);
  // Encoder column 2 = unit × 0.2 × mean alive encoder norm = unit × 0.2 × (2 + 0.5) / 2.
  assertAlmostEquals(event.meanAliveEncoderNorm, 1.25, 1e-6);
  const col = Array.from({ length: D }, (_, d) => after.W_enc[d * F + 2]);
  assertAllClose(col, unit.map((u) => u * 0.25), 1e-6);
  assertAlmostEquals(Math.hypot(...col), 0.25, 1e-6);
  assertEquals(after.b_enc[2], 0);
  // Everything else is untouched.
  for (let d = 0; d < D; d++) {
    for (const f of [0, 1]) assertEquals(after.W_enc[d * F + f], before.W_enc[d * F + f]);
  }
  assertAllClose(after.W_dec.subarray(0, 2 * D), before.W_dec.subarray(0, 2 * D), 0);
  assertAllClose(after.b_enc.subarray(0, 2), before.b_enc.subarray(0, 2), 0);
  assertAllClose(after.b_dec, before.b_dec, 0);
  // Feature 2 now fires on the outlier, so no feature is silent on the inputs.
  assertEquals(event.deadFractionAfter, 0);
  assertAlmostEquals(event.meanPickedLoss, 29 + 0.01 ** 2 + 0.02 ** 2, 1e-4); // b_enc leaks in

  // Moments: zero for the touched column / row / entry, unchanged everywhere else.
  const m = await adam.state();
  for (const key of ["m", "v"] as const) {
    const wEnc = m[key].W_enc, wEncOld = momentsBefore[key].W_enc;
    for (let d = 0; d < D; d++) {
      for (let f = 0; f < F; f++) {
        same(wEnc[d * F + f], f === 2 ? 0 : wEncOld[d * F + f], `${key} W_enc ${d},${f}`);
      }
    }
    const wDec = m[key].W_dec, wDecOld = momentsBefore[key].W_dec;
    for (let i = 0; i < F * D; i++) {
      same(wDec[i], i >= 2 * D ? 0 : wDecOld[i], `${key} W_dec ${i}`);
    }
    const bEnc = m[key].b_enc, bEncOld = momentsBefore[key].b_enc;
    for (let f = 0; f < F; f++) same(bEnc[f], f === 2 ? 0 : bEncOld[f], `${key} b_enc ${f}`);
    assertAllClose(m[key].b_dec, momentsBefore[key].b_dec, 0);
    assert(wEncOld[2] !== 0, "the moments were nonzero before the resample");
  }
  inputs.dispose();
  adam.dispose();
  disposeSae(sae);
});

Deno.test("resample with no dead features changes nothing", async () => {
  const { sae, inputs, adam } = setup();
  const before = await toArrays(sae);
  const event = resampleDeadFeatures(sae, adam, [], inputs, new Rng(7), {
    step: 1,
    deadFractionBefore: 0,
  });
  assertEquals(event.nDead, 0);
  const after = await toArrays(sae);
  for (const name of Object.keys(before)) assertAllClose(after[name], before[name], 0);
  inputs.dispose();
  adam.dispose();
  disposeSae(sae);
});

Deno.test("resample gives several dead features distinct unit-norm inputs", async () => {
  const { sae, inputs, adam } = setup();
  tf.tidy(() => sae.bEncF.assign(tf.tensor1d([-100, -100, -100])));
  const event = resampleDeadFeatures(sae, adam, [0, 1, 2], inputs, new Rng(3), {
    step: 1,
    deadFractionBefore: 1,
  });
  assertEquals(new Set(event.inputIndices).size, 3);
  assert(event.inputIndices.includes(OUTLIER));
  // No feature was alive: the encoder norm falls back to 0.2 × 1.
  assertEquals(event.meanAliveEncoderNorm, 1);
  const w = await toArrays(sae);
  for (let f = 0; f < F; f++) {
    assertAlmostEquals(Math.hypot(...w.W_dec.subarray(f * D, (f + 1) * D)), 1, 1e-6);
  }
  inputs.dispose();
  adam.dispose();
  disposeSae(sae);
});

Deno.test("weightedSample draws in proportion to the weights and never picks weight 0", () => {
  const rng = new Rng(11);
  const counts = [0, 0, 0];
  for (let i = 0; i < 4000; i++) counts[weightedSample([1, 0, 3], 1, rng)[0]] += 1;
  assertEquals(counts[1], 0);
  assertAlmostEquals(counts[2] / 4000, 0.75, 0.03);
  // Without replacement while nonzero weights last, then with replacement.
  const picks = weightedSample([1, 0, 3, 2], 5, rng);
  assertEquals(new Set(picks.slice(0, 3)), new Set([0, 2, 3]));
  assert(picks.every((i) => i !== 1));
});
