/**
 * Tests for mod/features/logit_attribution.ts on the cpu backend: the top and bottom tokens of hand-set
 * weights against a hand computation, chunked against unchunked and against a brute-force
 * ranking, residualScale() on a model whose residual stream is known, and tensor bookkeeping.
 *
 *   deno test --allow-read --allow-env tests/logit_attribution_test.ts
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { logitAttribution, residualScale } from "../mod/features/mod.ts";
import { disposeSae, fromArrays, type Sae } from "../mod/sae/mod.ts";
import {
  disposeTransformer,
  PARAM_NAMES,
  paramShapes,
  type Transformer,
  transformerConfig,
  transformerFromWeights,
} from "../mod/transformer/mod.ts";
import { Rng } from "../mod/run/mod.ts";
import {
  assert,
  assertAllClose,
  assertAlmostEquals,
  assertEquals,
  assertRejects,
} from "./assert.ts";

await tf.setBackend("cpu");

/** A model with every weight 0 (LN gains 1) except those given. */
function model(
  cfg: { dModel: number; dMlp: number; dVocab: number; nHeads?: number },
  w: Record<string, number[] | Float32Array>,
): Transformer {
  const config = transformerConfig({ nCtx: 4, nHeads: 1, ...cfg });
  const shapes = paramShapes(config), weights: Record<string, Float32Array> = {};
  for (const name of PARAM_NAMES) {
    const size = shapes[name].reduce((a, b) => a * b, 1);
    weights[name] = w[name]
      ? Float32Array.from(w[name])
      : new Float32Array(size).fill(name.endsWith(".w") ? 1 : 0);
  }
  return transformerFromWeights(config, weights);
}

/** Decoder rows f0 = (1, 0, 0), f1 = (0, 1, 1), f2 = (0.5, −1, 0); the encoder is unused. */
function handSae(): Sae {
  return fromArrays({ dIn: 3, dSae: 3, architecture: "standard", l1Coefficient: 0 }, {
    W_enc: new Float32Array(9),
    b_enc: new Float32Array(3),
    W_dec: new Float32Array([1, 0, 0, 0, 1, 1, 0.5, -1, 0]),
    b_dec: new Float32Array(3),
  });
}

function handModel(): Transformer {
  return model({ dModel: 2, dMlp: 3, dVocab: 5 }, {
    "blocks.0.mlp.W_out": [1, 2, 0, -1, 3, 1],
    "ln_final.w": [2, 1],
    "ln_final.b": [7, -7], // a constant: no part of the attribution
    "unembed.W_U": [1, -1, 0, 2, 0.5, 0, 1, 1, -1, 3],
    "unembed.b_U": [100, 0, 0, 0, -100], // likewise
  });
}

Deno.test("logitAttribution() matches a hand computation on tiny weights", async () => {
  const m = handModel(), sae = handSae();
  // v = W_dec[i] W_out: (1, 2), (3, 0), (0.5, 2). Centred: (−.5, .5), (1.5, −1.5), (−.75, .75).
  // ⊙ (2, 1) / 0.5: (−2, 1), (6, −3), (−3, 1.5). Times W_U:
  //   f0: (−2, 3, 1, −5, 2)   f1: (6, −9, −3, 15, −6)   f2: (−3, 4.5, 1.5, −7.5, 3)
  const out = await logitAttribution(m, sae, { topN: 2, lnScale: 0.5 });
  assertEquals(Array.from(out.feature), [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
  assertEquals(out.sign, [0, 1, 2].flatMap(() => ["positive", "positive", "negative", "negative"]));
  assertEquals(Array.from(out.rank), [0, 1, 2].flatMap(() => [0, 1, 0, 1]));
  assertEquals(Array.from(out.token), [1, 4, 3, 0, 3, 0, 1, 4, 1, 4, 3, 0]);
  assertAllClose(out.weight, [3, 2, -5, -2, 15, 6, -9, -6, 4.5, 3, -7.5, -3], 1e-6);
  // A subset, in the order asked, and σ = 1 (the default) doubles every weight.
  const some = await logitAttribution(m, sae, { topN: 1, features: [2, 0] });
  assertEquals(Array.from(some.feature), [2, 2, 0, 0]);
  assertEquals(Array.from(some.token), [1, 3, 1, 3]);
  assertAllClose(some.weight, [2.25, -3.75, 1.5, -2.5], 1e-6);
  await assertRejects(() => logitAttribution(m, sae, { topN: 6 }), /topN "6"/);
  await assertRejects(() => logitAttribution(m, sae, { topN: 1, features: [3] }), /Feature 3/);
  disposeTransformer(m);
  disposeSae(sae);
});

function randomSetup(seed: number) {
  const rng = new Rng(seed);
  const r = (n: number) => Array.from({ length: n }, () => rng.normal());
  const m = model({ dModel: 8, dMlp: 16, dVocab: 60, nHeads: 2 }, {
    "blocks.0.mlp.W_out": r(16 * 8),
    "ln_final.w": r(8),
    "unembed.W_U": r(8 * 60),
  });
  const sae = fromArrays({ dIn: 16, dSae: 23, architecture: "standard", l1Coefficient: 0 }, {
    W_enc: new Float32Array(16 * 23),
    b_enc: new Float32Array(23),
    W_dec: Float32Array.from(r(23 * 16)),
    b_dec: new Float32Array(16),
  });
  return { m, sae };
}

Deno.test("logitAttribution() chunked equals unchunked, and ranks like a brute-force sort", async () => {
  const { m, sae } = randomSetup(3);
  const whole = await logitAttribution(m, sae, { topN: 4, lnScale: 1.7 });
  for (const chunk of [1, 5, 100]) {
    assertEquals(await logitAttribution(m, sae, { topN: 4, lnScale: 1.7, chunk }), whole);
  }
  // Brute force: all 60 logits of each feature in plain JS, sorted.
  const [wDec, wOut, lnW, wU] = await Promise.all(
    [sae.wDecFD, m.params["blocks.0.mlp.W_out"], m.params["ln_final.w"], m.params["unembed.W_U"]]
      .map((t) => t.data()),
  );
  for (let f = 0; f < 23; f++) {
    const v = Array.from({ length: 8 }, (_, d) => {
      let s = 0;
      for (let j = 0; j < 16; j++) s += wDec[f * 16 + j] * wOut[j * 8 + d];
      return s;
    });
    const mean = v.reduce((a, b) => a + b) / 8;
    const u = v.map((x, d) => ((x - mean) * lnW[d]) / 1.7);
    const logits = Array.from(
      { length: 60 },
      (_, t) => u.reduce((s, x, d) => s + x * wU[d * 60 + t], 0),
    );
    const order = logits.map((l, t) => ({ l, t })).sort((a, b) => b.l - a.l);
    const rows = Array.from({ length: 8 }, (_, i) => f * 8 + i);
    assertEquals(rows.slice(0, 4).map((i) => whole.token[i]), order.slice(0, 4).map((o) => o.t));
    assertEquals(
      rows.slice(4).map((i) => whole.token[i]),
      order.slice(-4).reverse().map((o) => o.t),
    );
    assertAllClose(rows.map((i) => whole.weight[i]), [
      ...order.slice(0, 4).map((o) => o.l),
      ...order.slice(-4).reverse().map((o) => o.l),
    ], 1e-4);
    for (let i = 1; i < 4; i++) {
      assert(whole.weight[f * 8 + i] <= whole.weight[f * 8 + i - 1]);
      assert(whole.weight[f * 8 + 4 + i] >= whole.weight[f * 8 + 3 + i]);
    }
  }
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) await logitAttribution(m, sae, { topN: 4, chunk: 7 });
  assertEquals(tf.memory().numTensors, before);
  disposeTransformer(m);
  disposeSae(sae);
});

Deno.test("residualScale() is the mean per-token std of a residual stream known by hand", async () => {
  // Attention and MLP weights 0: the residual is W_E[token] + W_pos[pos].
  const m = model({ dModel: 2, dMlp: 3, dVocab: 4 }, {
    "embed.W_E": [0, 0, 1, -1, 3, 0, 0, 4],
    "pos_embed.W_pos": [0, 0, 1, 0, 0, 0, 0, 0],
  });
  // Tokens (1, 2) at positions (0, 1): residuals (1, −1), (4, 0); (3, 0), (1, 4).
  // With d_model 2 the std is |a − b| / 2: 1, 2; 1.5, 1.5.
  const t = tf.tensor2d([[1, 2], [2, 3]], [2, 2], "int32");
  const hand = (d: number) => Math.sqrt(d * d + 1e-5);
  assertAlmostEquals(
    await residualScale(m, t),
    (hand(1) + hand(2) + hand(1.5) + hand(1.5)) / 4,
    1e-6,
  );
  // Several batches: the mean over all their tokens.
  const t2 = tf.tensor2d([[0, 0]], [1, 2], "int32"); // (0, 0), (1, 0): std 0, 0.5
  assertAlmostEquals(
    await residualScale(m, [t, t2]),
    (hand(1) + hand(2) + hand(1.5) + hand(1.5) + hand(0) + hand(0.5)) / 6,
    1e-6,
  );
  const before = tf.memory().numTensors;
  await residualScale(m, [t, t2]);
  assertEquals(tf.memory().numTensors, before);
  tf.dispose([t, t2]);
  disposeTransformer(m);
});
