/**
 * Tests for the native clip + AdamW update (mod/backend/native/adamw.c through
 * mod/transformer/native_adam.ts): NativeAdamW.step against Adam.step on the same gradients
 * clipped in JavaScript, over three steps, with the clip active and not, weight decay on some
 * parameters, sizes below one vector, not a multiple of 8 and large enough to be split over two
 * threads; and trainStepStats on it against the tfjs update (one step from identical models:
 * every parameter equal; three steps: losses close and a level tensor count).
 *
 * Needs the wasm backend and the built library (bash tasks/setup.sh builds it); a machine without
 * them fails here with the reason, rather than skipping.
 *
 *   deno test --allow-read --allow-env --allow-ffi tests/native_adam_test.ts
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../mod/backend/mod.ts";
import { Adam } from "../mod/transformer/adam.ts";
import { nativeAdamW } from "../mod/transformer/native_adam.ts";
import {
  createTransformer,
  disposeTransformer,
  makeOptimizer,
  PARAM_NAMES,
  trainStepStats,
  transformerConfig,
} from "../mod/transformer/mod.ts";
import { Rng } from "../mod/run/mod.ts";
import { values } from "./tensors.ts";
import { assertAllClose, assertAlmostEquals, assertEquals, assertGreater } from "./assert.ts";

await initBackend("wasm", { threads: 2 });

function native() {
  const r = nativeAdamW();
  if (!r.adamw) throw new Error(`native AdamW unavailable: ${r.reason}`);
  return r.adamw;
}

// 5 floats: below one vector; 3 x 7: not a multiple of 8; 9,001: split over two threads.
const SHAPES: Record<string, number[]> = { b: [5], w: [3, 7], e: [9001] };

function params(): Record<string, tf.Variable> {
  return Object.fromEntries(
    Object.entries(SHAPES).map(([name, shape], i) => [
      name,
      tf.variable(tf.tensor(values(shape.reduce((a, b) => a * b), 10 + i), shape), true),
    ]),
  );
}

function grads(step: number): Record<string, tf.Tensor> {
  return Object.fromEntries(
    Object.entries(SHAPES).map(([name, shape], i) => [
      name,
      tf.tensor(values(shape.reduce((a, b) => a * b), 100 * step + i), shape),
    ]),
  );
}

for (const clipNorm of [3, 0]) {
  Deno.test(`NativeAdamW.step equals Adam.step on clipped gradients (clip ${clipNorm})`, () => {
    const opts = { lr: 1e-2, weightDecay: 0.1, decay: ["w", "e"] };
    const [pn, pr] = [params(), params()];
    const [an, ar] = [new Adam(pn, opts), new Adam(pr, opts)];
    const adamw = native();
    const before = tf.memory().numTensors;
    for (let s = 0; s < 3; s++) {
      const g = grads(s);
      let sq = 0;
      for (const t of Object.values(g)) for (const x of t.dataSync()) sq += x * x;
      const norm = Math.sqrt(sq);
      assertAlmostEquals(adamw.step(an, g, { lr: 1e-2, clipNorm }), norm, 1e-5 * norm, "norm");
      if (clipNorm > 0) assertGreater(norm, clipNorm, "the clip is active");
      const scale = clipNorm > 0 ? Math.min(1, clipNorm / (norm + 1e-6)) : 1;
      tf.tidy(() =>
        ar.step(Object.fromEntries(Object.entries(g).map(([n, t]) => [n, tf.mul(t, scale)])))
      );
      tf.dispose(Object.values(g));
    }
    assertEquals(tf.memory().numTensors, before, "no tensors leak");
    assertEquals(an.t, ar.t);
    for (const name of Object.keys(SHAPES)) {
      assertAllClose(pn[name].dataSync(), pr[name].dataSync(), 1e-6, name);
      assertAllClose(an.m[name].dataSync(), ar.m[name].dataSync(), 1e-6, `m of ${name}`);
      assertAllClose(an.v[name].dataSync(), ar.v[name].dataSync(), 1e-6, `v of ${name}`);
    }
    an.dispose();
    ar.dispose();
    tf.dispose([...Object.values(pn), ...Object.values(pr)]);
  });
}

const CFG = transformerConfig({ dModel: 6, nHeads: 2, nCtx: 5, dVocab: 1501 });

async function train(update: "native" | "tfjs", steps: number) {
  const model = createTransformer(CFG, { seed: 3, initStd: 0.3 });
  const opt = makeOptimizer(model, { lr: 3e-2, weightDecay: 0.1 });
  const rng = new Rng(5);
  const stats = [];
  const before = tf.memory().numTensors;
  for (let s = 0; s < steps; s++) {
    const tok = tf.tensor2d(Int32Array.from({ length: 15 }, () => rng.int(1501)), [3, 5], "int32");
    stats.push(await trainStepStats(model, opt, tok, { lr: 3e-2, clipNorm: 0.05, update }));
    tok.dispose();
  }
  assertEquals(tf.memory().numTensors, before, `${update}: no tensors leak`);
  const weights = PARAM_NAMES.map((n) => Float32Array.from(model.params[n].dataSync()));
  opt.dispose();
  disposeTransformer(model);
  return { stats, weights };
}

Deno.test("trainStepStats on the native update equals the tfjs one", async () => {
  const [nat, ref] = [await train("native", 1), await train("tfjs", 1)];
  assertAlmostEquals(nat.stats[0].gradNorm, ref.stats[0].gradNorm, 1e-5 * ref.stats[0].gradNorm);
  // The attention's key bias has a gradient of pure rounding noise, which Adam scales up to ±lr:
  // equal only where the two runs see the same gradient, i.e. after one step.
  PARAM_NAMES.forEach((name, i) => assertAllClose(nat.weights[i], ref.weights[i], 1e-5, name));
  const [nat3, ref3] = [await train("native", 3), await train("tfjs", 3)];
  nat3.stats.forEach((s, i) => assertAlmostEquals(s.loss, ref3.stats[i].loss, 1e-3, `loss ${i}`));
});
