/**
 * Tests of mod/transformer*.ts on the cpu backend: a known-answer forward pass against a plain-JS
 * reference, the causal mask, finite-difference gradients, the fused chunked cross-entropy against
 * the plain one, hooks, a loss that falls, save/load and seeded sampling.
 *
 *   deno test --allow-read --allow-write --allow-env tests/transformer_test.ts
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  assert,
  assertAllClose,
  assertAlmostEquals,
  assertEquals,
  assertLess,
  assertNotEquals,
  assertRejects,
  assertThrows,
} from "./assert.ts";
import { writeSafetensors } from "../mod/io/mod.ts";
import {
  addToMlpPost,
  createTransformer,
  disposeTransformer,
  evalLoss,
  forward,
  layerNorm,
  lossFn,
  lrSchedule,
  makeOptimizer,
  mlpActivations,
  PARAM_NAMES,
  paramShapes,
  replaceMlpPost,
  splitLoss,
  tokenLosses,
  trainStep,
  type TransformerConfig,
  transformerConfig,
  transformerFromWeights,
} from "../mod/transformer/mod.ts";
import {
  chunkedTokenLosses,
  fusedCrossEntropy,
  plainCrossEntropy,
} from "../mod/transformer/mod.ts";
import { loadTransformer, saveTransformer, transformerWeights } from "../mod/transformer/mod.ts";
import { pickToken, sample } from "../mod/transformer/mod.ts";
import { Rng } from "../mod/run/mod.ts";

await tf.setBackend("cpu");

const TINY = transformerConfig({ dModel: 4, nHeads: 2, dMlp: 16, nCtx: 3, dVocab: 7 });

/** Hand-set weights: a fixed pattern of small values per tensor, LN gains and biases not 1 and 0. */
function tinyWeights(): Record<string, Float32Array> {
  const shapes = paramShapes(TINY), out: Record<string, Float32Array> = {};
  PARAM_NAMES.forEach((name, k) => {
    const size = shapes[name].reduce((a, b) => a * b, 1);
    const w = new Float32Array(size);
    for (let i = 0; i < size; i++) w[i] = (((i * 7 + k * 3) % 11) - 5) / 10;
    if (name.endsWith(".w")) { for (let i = 0; i < size; i++) w[i] = 1 + w[i] / 2; }
    out[name] = w;
  });
  return out;
}

function tokens(rows: number[][]): tf.Tensor2D {
  return tf.tensor2d(rows, [rows.length, rows[0].length], "int32");
}

Deno.test("transformerConfig() rejects bad values and names them", () => {
  const v = 50257;
  assertThrows(
    () => transformerConfig({ dModel: 130, nCtx: 8, dVocab: v }),
    /dModel 130 .*nHeads 8/,
  );
  assertThrows(() => transformerConfig({ dModel: 128, nCtx: 0, dVocab: v }), /nCtx "0"/);
  assertThrows(
    () => transformerConfig({ dModel: 128, nCtx: 8, dMlp: 1.5, dVocab: v }),
    /dMlp "1.5"/,
  );
  assertThrows(() => transformerConfig({ dModel: 128, nCtx: 8, dVocab: 0 }), /dVocab "0"/);
  const c = transformerConfig({ dModel: 128, nCtx: 1024, dVocab: v });
  assertEquals(c, { dModel: 128, nHeads: 8, dMlp: 512, nCtx: 1024, dVocab: 50257 });
});

Deno.test("layerNorm() matches hand-computed values", () => {
  const out = tf.tidy(() =>
    layerNorm(tf.tensor2d([[1, 2, 3, 4]]), tf.tensor1d([1, 2, 1, 1]), tf.tensor1d([0, 0, 0, 1]))
      .dataSync()
  );
  // mean 2.5, variance 1.25: (x - 2.5) / sqrt(1.25 + 1e-5) = [-1.34164, -0.44721, 0.44721, 1.34164]
  const s = Math.sqrt(1.25 + 1e-5);
  assertAllClose(out, [-1.5 / s, (2 * -0.5) / s, 0.5 / s, 1.5 / s + 1], 1e-6);
});

Deno.test("forward() matches a plain-JS reference on hand-set weights", () => {
  const weights = tinyWeights();
  const model = transformerFromWeights(TINY, weights);
  const rows = [[1, 6, 3], [0, 0, 5]];
  const { logits, mlpPost } = forward(model, tokens(rows), { returnMlpPost: true });
  const ref = referenceForward(TINY, weights, rows);
  assertEquals(logits.shape, [2, 3, 7]);
  assertAllClose(logits.dataSync(), ref.logits, 1e-5, "logits");
  assertAllClose(mlpPost!.dataSync(), ref.mlpPost, 1e-5, "mlp post");
  assert(ref.mlpPost.some((x) => x === 0) && ref.mlpPost.some((x) => x > 0), "ReLU is exercised");
  tf.dispose([logits, mlpPost!]);
  disposeTransformer(model);
});

Deno.test("causal mask: a later token never changes earlier positions", () => {
  const model = transformerFromWeights(TINY, tinyWeights());
  const run = (row: number[]) => {
    const { logits } = forward(model, tokens([row]));
    const v = Array.from(logits.dataSync());
    logits.dispose();
    return [v.slice(0, 7), v.slice(7, 14), v.slice(14, 21)];
  };
  const a = run([1, 2, 3]), b = run([1, 2, 5]), c = run([1, 4, 3]);
  assertEquals(b[0], a[0]);
  assertEquals(b[1], a[1]);
  assertNotEquals(b[2], a[2]);
  assertEquals(c[0], a[0]);
  assertNotEquals(c[1], a[1]);
  disposeTransformer(model);
});

const GRAD_CFG = transformerConfig({ dModel: 8, nHeads: 2, dMlp: 32, nCtx: 5, dVocab: 11 });
const GRAD_ROWS = [[1, 3, 3, 7, 1], [10, 0, 3, 3, 2]]; // repeated ids exercise the scatter-add

for (const ce of ["plain", "fused"] as const) {
  Deno.test(`gradients (${ce} CE) match central finite differences`, () => {
    const model = createTransformer(GRAD_CFG, { seed: 3, initStd: 0.4 });
    const tok = tokens(GRAD_ROWS);
    const opts = { ce, fused: { rowChunk: 3 } };
    const lossAt = () => tf.tidy(() => lossFn(model, tok, opts).dataSync()[0]);
    const names = [
      "embed.W_E",
      "pos_embed.W_pos",
      "blocks.0.attn.W_Q",
      "blocks.0.attn.W_O",
      "blocks.0.ln1.w",
      "blocks.0.mlp.W_in",
      "unembed.W_U",
      "unembed.b_U",
    ] as const;
    const vars = names.map((n) => model.params[n]);
    const { value, grads } = tf.variableGrads(() => lossFn(model, tok, opts), vars);
    value.dispose();
    // Central differences at eps and eps/2, combined (Richardson) so that the eps^2 curvature
    // term cancels: LayerNorm makes it ~1% at eps 1e-2 here, float32 rounding forbids tiny eps.
    const eps = 1e-2;
    const fd = (p: tf.Variable, dir: Float32Array) => {
      const base = p.dataSync().slice();
      const lossShifted = (s: number) => {
        tf.tidy(() => p.assign(tf.tensor(base.map((x, i) => x + s * dir[i]), p.shape)));
        return lossAt();
      };
      const central = (h: number) => (lossShifted(h) - lossShifted(-h)) / (2 * h);
      const estimate = (4 * central(eps / 2) - central(eps)) / 3;
      tf.tidy(() => p.assign(tf.tensor(base, p.shape)));
      return estimate;
    };
    for (const [i, name] of names.entries()) {
      const g = grads[vars[i].name].dataSync() as Float32Array;
      const norm = Math.hypot(...g);
      assert(norm > 1e-3, `${name}: gradient norm ${norm} too small to test`);
      // Along the gradient's own direction, then the three largest single entries.
      const checks: [Float32Array, number][] = [[g.map((x) => x / norm), norm]];
      const order = Array.from(g.keys()).sort((a, b) => Math.abs(g[b]) - Math.abs(g[a]));
      for (const j of order.slice(0, 3)) {
        const dir = new Float32Array(g.length);
        dir[j] = 1;
        checks.push([dir, g[j]]);
      }
      for (const [dir, analytic] of checks) {
        const numeric = fd(vars[i], dir);
        const tol = 1e-2 * Math.max(Math.abs(analytic), 1e-2);
        assertAlmostEquals(
          analytic,
          numeric,
          tol,
          `${name}: analytic ${analytic} vs FD ${numeric}`,
        );
      }
    }
    tf.dispose([tok, ...Object.values(grads)]);
    disposeTransformer(model);
  });
}

function ceInputs(n: number, d: number, v: number, scale = 1) {
  const rng = new Rng(7);
  const rand = (size: number, s: number) =>
    Float32Array.from({ length: size }, () => s * rng.normal());
  return {
    x: tf.tensor2d(rand(n * d, scale), [n, d]),
    w: tf.tensor2d(rand(d * v, 1), [d, v]),
    b: tf.tensor1d(rand(v, 1)),
    t: tf.tensor1d(
      Array.from({ length: n }, (_, i) => (i === 1 || i === 3 ? 3 : rng.int(v))),
      "int32",
    ),
  };
}

// 13 rows in chunks of 4 (the last chunk short), a repeated target (rows 1 and 3 both predict id
// 3: the scatter-add must sum), and logits large enough to overflow a naive exp.
for (
  const [label, rowChunk, mode, scale] of [
    ["13 rows in chunks of 4, store", 4, "store", 1],
    ["13 rows in chunks of 4, recompute", 4, "recompute", 1],
    ["one chunk", 64, "store", 1],
    ["large logits, recompute", 5, "recompute", 30],
    ["large logits, store", 5, "store", 30],
  ] as const
) {
  Deno.test(`fusedCrossEntropy equals the plain version in loss and gradients (${label})`, () => {
    const { x, w, b, t } = ceInputs(13, 6, 37, scale);
    const results = [
      (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
        plainCrossEntropy(xx as tf.Tensor2D, ww as tf.Tensor2D, bb as tf.Tensor1D, t),
      (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
        fusedCrossEntropy(xx as tf.Tensor2D, ww as tf.Tensor2D, bb as tf.Tensor1D, t, {
          rowChunk,
          mode,
        }),
    ].map((f) => {
      const before = tf.memory().numTensors;
      const { value, grads } = tf.valueAndGrads(f)([x, w, b]);
      const out = [value, ...grads].map((g) => g.dataSync());
      tf.dispose([value, ...grads]);
      assertEquals(tf.memory().numTensors, before, "no tensors leak");
      return out;
    });
    const [plain, fused] = results;
    assert(Number.isFinite(fused[0][0]) && fused[0][0] > 0.1, `loss ${fused[0][0]}`);
    for (const [k, what] of ["loss", "dx", "dW_U", "db_U"].entries()) {
      assertAllClose(fused[k], plain[k], 1e-4, what);
    }
    const lossesN = chunkedTokenLosses(x, w, b, t, { rowChunk });
    assertAlmostEquals(tf.mean(lossesN).dataSync()[0], plain[0][0], 1e-4 * plain[0][0]);
    tf.dispose([x, w, b, t, lossesN]);
  });
}

Deno.test("fused and plain loss give the same model gradients; evalLoss agrees", async () => {
  const model = createTransformer(GRAD_CFG, { seed: 5, initStd: 0.3 });
  const tok = tokens(GRAD_ROWS);
  const vars = PARAM_NAMES.map((n) => model.params[n]);
  const [plain, fused] = (["plain", "fused"] as const).map((ce) => {
    const { value, grads } = tf.variableGrads(
      () => lossFn(model, tok, { ce, fused: { rowChunk: 3 } }),
      vars,
    );
    const out = [value.dataSync(), ...vars.map((v) => grads[v.name].dataSync())];
    tf.dispose([value, ...Object.values(grads)]);
    return out;
  });
  for (let i = 0; i < plain.length; i++) assertAllClose(fused[i], plain[i], 1e-4, `tensor ${i}`);
  assertAlmostEquals(await evalLoss(model, tok, { fused: { rowChunk: 3 } }), plain[0][0], 1e-5);
  tok.dispose();
  disposeTransformer(model);
});

Deno.test("hooks: zero steering and identity replacement change nothing; mlpPost is [B,T,M]", () => {
  const model = createTransformer(GRAD_CFG, { seed: 1, initStd: 0.3 });
  const tok = tokens(GRAD_ROWS);
  const base = forward(model, tok, { returnMlpPost: true });
  assertEquals(base.mlpPost!.shape, [2, 5, 32]);
  const acts = mlpActivations(model, tok);
  assertEquals(acts.dataSync(), base.mlpPost!.dataSync());
  const zero = tf.zeros([32]) as tf.Tensor1D, dir = tf.ones([32]) as tf.Tensor1D;
  const logitsWith = (hook: (p: tf.Tensor3D) => tf.Tensor3D) => {
    const { logits } = forward(model, tok, { hooks: { mlpPost: hook } });
    const out = logits.dataSync();
    logits.dispose();
    return out;
  };
  assertEquals(logitsWith(addToMlpPost(zero, 5)), base.logits.dataSync());
  assertEquals(logitsWith(replaceMlpPost((p) => p)), base.logits.dataSync());
  assertNotEquals(logitsWith(addToMlpPost(dir, 2)), base.logits.dataSync());
  assertThrows(
    () => forward(model, tok, { hooks: { mlpPost: replaceMlpPost((p) => tf.slice(p, 0, 1)) } }),
    /MLP post replacement has shape \[1,5,32\], expected \[2,5,32\]/,
  );
  tf.dispose([base.logits, base.mlpPost!, acts, zero, dir, tok]);
  disposeTransformer(model);
});

Deno.test("trainStep lowers the loss on a repeated pattern and keeps numTensors level", async () => {
  const cfg = transformerConfig({ dModel: 16, nHeads: 2, dMlp: 64, nCtx: 8, dVocab: 16 });
  const model = createTransformer(cfg, { seed: 0 });
  const opt = makeOptimizer(model, { lr: 1e-2, weightDecay: 0.01 });
  const rows = [0, 1, 2, 3].map((o) => Array.from({ length: 8 }, (_, i) => (i + o) % 6));
  const tok = tokens(rows);
  const losses: number[] = [];
  let level = 0;
  for (let step = 0; step < 30; step++) {
    losses.push(await trainStep(model, opt, tok, { lr: 1e-2, clipNorm: 1 }));
    if (step === 1) level = tf.memory().numTensors;
  }
  assertEquals(tf.memory().numTensors, level, "numTensors is level across steps");
  assertAlmostEquals(losses[0], Math.log(16), 0.1, `first loss ${losses[0]} is about ln 16`);
  assertLess(losses[29], 0.3 * losses[0], `loss fell from ${losses[0]} to ${losses[29]}`);
  assertLess(await evalLoss(model, tok), losses[29] + 0.05);
  tok.dispose();
  opt.dispose();
  disposeTransformer(model);
});

Deno.test("lrSchedule warms up linearly, then decays by cosine to the floor", () => {
  const o = { lr: 1e-3, warmupSteps: 10, totalSteps: 110, minLrRatio: 0.1 };
  assertAlmostEquals(lrSchedule(0, o), 1e-4, 1e-12);
  assertAlmostEquals(lrSchedule(9, o), 1e-3, 1e-12);
  assertAlmostEquals(lrSchedule(60, o), 0.55e-3, 1e-12); // half-way down the cosine
  assertAlmostEquals(lrSchedule(110, o), 1e-4, 1e-12);
  for (let s = 10; s < 110; s++) assert(lrSchedule(s + 1, o) <= lrSchedule(s, o));
});

Deno.test("createTransformer: same seed, same weights; GPT-2 scales", async () => {
  const cfg = transformerConfig({ dModel: 64, nHeads: 8, nCtx: 16, dVocab: 500 });
  const [a, b, c] = [1, 1, 2].map((seed) => createTransformer(cfg, { seed }));
  const [wa, wb, wc] = await Promise.all([a, b, c].map(transformerWeights));
  assertEquals(wa["unembed.W_U"], wb["unembed.W_U"]);
  assertNotEquals(wa["unembed.W_U"], wc["unembed.W_U"]);
  const std = (x: Float32Array) => Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length);
  assertAlmostEquals(std(wa["embed.W_E"]), 0.02, 0.001);
  assertAlmostEquals(std(wa["blocks.0.mlp.W_out"]), 0.02 / Math.SQRT2, 0.001);
  assertEquals(wa["blocks.0.ln1.w"], new Float32Array(64).fill(1));
  assertEquals(wa["blocks.0.mlp.b_in"], new Float32Array(256));
  [a, b, c].forEach(disposeTransformer);
});

Deno.test("save/load round-trips bit for bit and rejects wrong shapes and missing tensors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const model = createTransformer(GRAD_CFG, { seed: 9 });
    const path = `${dir}/model.safetensors`;
    await saveTransformer(path, model, { note: "test" });
    const loaded = await loadTransformer(path);
    assertEquals(loaded.config, GRAD_CFG);
    assertEquals(await transformerWeights(loaded), await transformerWeights(model));
    const w = await transformerWeights(model);
    const asFile = (names: string[], overrides: Record<string, number[]> = {}) =>
      Object.fromEntries(names.map((n) => [n, {
        shape: overrides[n] ?? paramShapes(GRAD_CFG)[n as (typeof PARAM_NAMES)[number]],
        data: overrides[n] ? new Float32Array(overrides[n][0] * overrides[n][1]) : w[n],
      }]));
    const bad = `${dir}/bad.safetensors`;
    await writeSafetensors(bad, asFile([...PARAM_NAMES], { "blocks.0.mlp.W_in": [8, 16] }));
    await assertRejects(
      () => loadTransformer(bad, { config: GRAD_CFG }),
      /"[^"]*bad.safetensors": tensor "blocks.0.mlp.W_in" has shape \[8,16\], expected \[8,32\]/,
    );
    await writeSafetensors(bad, asFile(PARAM_NAMES.filter((n) => n !== "unembed.b_U")));
    await assertRejects(() => loadTransformer(bad), /tensor "unembed.b_U" is missing/);
    await assertRejects(() => loadTransformer(`${dir}/none.safetensors`), /does not exist/);
    disposeTransformer(model);
    disposeTransformer(loaded);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sample: greedy is deterministic, a seed gives the same ids twice", async () => {
  const model = createTransformer(GRAD_CFG, { seed: 4, initStd: 0.5 });
  const greedy = await sample(model, [1, 2], { maxNewTokens: 8, temperature: 0 });
  assertEquals(await sample(model, [1, 2], { maxNewTokens: 8, temperature: 0, seed: 99 }), greedy);
  assertEquals(greedy.length, 8);
  const opts = { maxNewTokens: 20, temperature: 1.5, seed: 12 };
  const s1 = await sample(model, [3], opts), s2 = await sample(model, [3], opts);
  assertEquals(s1, s2);
  assertNotEquals(await sample(model, [3], { ...opts, seed: 13 }), s1);
  assert(s1.every((id) => id >= 0 && id < 11));
  // Greedy equals the argmax of forward()'s logits at the last position.
  const { logits } = forward(model, tokens([[1, 2]]));
  const last = Array.from(logits.dataSync().slice(11, 22));
  assertEquals(greedy[0], last.indexOf(Math.max(...last)));
  logits.dispose();
  await assertRejects(() => sample(model, [11], { maxNewTokens: 1 }), /Prompt token id 11/);
  disposeTransformer(model);
});

Deno.test("pickToken: top-k 1 is the argmax; draws follow the softmax", () => {
  const logits = Float32Array.from([0, Math.log(3), 0, -Infinity]);
  const rng = new Rng(1);
  for (let i = 0; i < 20; i++) assertEquals(pickToken(logits, { temperature: 1, topK: 1, rng }), 1);
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 5000; i++) counts[pickToken(logits, { temperature: 1, rng })]++;
  assertAlmostEquals(counts[1] / 5000, 0.6, 0.03); // 3 / (1 + 3 + 1)
  assertEquals(counts[3], 0);
});

// ---------------------------------------------------------------------------------------------
// A plain-JS reference of the model (loops over arrays, TransformerLens layouts), independent of
// tfjs, for the known-answer test.

function refLayerNorm(x: number[], w: Float32Array, b: Float32Array): number[] {
  const mean = x.reduce((s, v) => s + v, 0) / x.length;
  const variance = x.reduce((s, v) => s + (v - mean) ** 2, 0) / x.length;
  return x.map((v, i) => ((v - mean) / Math.sqrt(variance + 1e-5)) * w[i] + b[i]);
}

function referenceForward(
  c: TransformerConfig,
  W: Record<string, Float32Array>,
  rows: number[][],
): { logits: number[]; mlpPost: number[] } {
  const { dModel: D, nHeads: H, dMlp: M, dVocab: V } = c, E = D / H;
  const logits: number[] = [], mlpPost: number[] = [];
  for (const row of rows) {
    const T = row.length;
    const resid = row.map((tok, t) =>
      Array.from(
        { length: D },
        (_, d) => W["embed.W_E"][tok * D + d] + W["pos_embed.W_pos"][t * D + d],
      )
    );
    const ln1 = resid.map((x) => refLayerNorm(x, W["blocks.0.ln1.w"], W["blocks.0.ln1.b"]));
    const proj = (w: string, b: string) =>
      ln1.map((x) =>
        Array.from({ length: H }, (_, h) =>
          Array.from({ length: E }, (_, e) => {
            let s = W[b][h * E + e];
            for (let d = 0; d < D; d++) s += x[d] * W[w][(h * D + d) * E + e];
            return s;
          }))
      );
    const q = proj("blocks.0.attn.W_Q", "blocks.0.attn.b_Q");
    const k = proj("blocks.0.attn.W_K", "blocks.0.attn.b_K");
    const v = proj("blocks.0.attn.W_V", "blocks.0.attn.b_V");
    for (let i = 0; i < T; i++) {
      const attnOut = Array.from({ length: D }, (_, d) => W["blocks.0.attn.b_O"][d]);
      for (let h = 0; h < H; h++) {
        const scores = [];
        for (let j = 0; j <= i; j++) {
          let s = 0;
          for (let e = 0; e < E; e++) s += q[i][h][e] * k[j][h][e];
          scores.push(s / Math.sqrt(E));
        }
        const mx = Math.max(...scores), ex = scores.map((s) => Math.exp(s - mx));
        const z = ex.reduce((a, b) => a + b, 0);
        for (let e = 0; e < E; e++) {
          let zi = 0;
          for (let j = 0; j <= i; j++) zi += (ex[j] / z) * v[j][h][e];
          for (let d = 0; d < D; d++) {
            attnOut[d] += zi * W["blocks.0.attn.W_O"][(h * E + e) * D + d];
          }
        }
      }
      const r = resid[i].map((x, d) => x + attnOut[d]);
      const ln2 = refLayerNorm(r, W["blocks.0.ln2.w"], W["blocks.0.ln2.b"]);
      const post = Array.from({ length: M }, (_, m) => {
        let s = W["blocks.0.mlp.b_in"][m];
        for (let d = 0; d < D; d++) s += ln2[d] * W["blocks.0.mlp.W_in"][d * M + m];
        return Math.max(0, s);
      });
      mlpPost.push(...post);
      const r2 = r.map((x, d) => {
        let s = x + W["blocks.0.mlp.b_out"][d];
        for (let m = 0; m < M; m++) s += post[m] * W["blocks.0.mlp.W_out"][m * D + d];
        return s;
      });
      const lnf = refLayerNorm(r2, W["ln_final.w"], W["ln_final.b"]);
      for (let tok = 0; tok < V; tok++) {
        let s = W["unembed.b_U"][tok];
        for (let d = 0; d < D; d++) s += lnf[d] * W["unembed.W_U"][d * V + tok];
        logits.push(s);
      }
    }
  }
  return { logits, mlpPost };
}

Deno.test("splitLoss() is the mean over every sequence, with the standard error of the sequences", async () => {
  const model = createTransformer(GRAD_CFG, { seed: 7, initStd: 0.3 });
  const T = GRAD_CFG.nCtx, n = 7;
  const rng = new Rng(11);
  const ids = Uint16Array.from({ length: n * T }, () => rng.int(GRAD_CFG.dVocab));
  const before = tf.memory().numTensors;
  // Batches of 3 (the last one short) give what one pass over all sequences gives.
  const got = await splitLoss(model, ids, { contextLength: T, batchSize: 3 });
  assertEquals(tf.memory().numTensors, before);
  const all = tf.tensor2d(Int32Array.from(ids), [n, T], "int32");
  const perSeqT = tf.tidy(() => tf.mean(tokenLosses(model, all), 1));
  const perSeq = Array.from(perSeqT.dataSync());
  const mean = perSeq.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(perSeq.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1));
  assertAlmostEquals(got.mean, await evalLoss(model, all), 1e-5);
  assertAlmostEquals(got.se, sd / Math.sqrt(n), 1e-6);
  assertEquals([got.sequences, got.tokens], [n, n * (T - 1)]);
  tf.dispose([all, perSeqT]);
  disposeTransformer(model);
});
