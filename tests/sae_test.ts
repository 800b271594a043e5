/**
 * Tests for mod/sae/sae.ts, mod/sae/grads.ts and mod/sae/geometric_median.ts on the cpu backend: the two
 * inits (Kaiming bounds and variance, W_enc = W_decᵀ), known answers on hand-set weights, saeGrads against tf.grad of forward(), the decoder-norm projection,
 * TopK's k nonzeros, save/load round trip and errors, and the geometric median.
 *
 *   deno test --allow-read --allow-write --allow-env tests/sae_test.ts
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  createSae,
  decode,
  disposeSae,
  encode,
  forward,
  fromArrays,
  kaimingBound,
  loadSae,
  type Sae,
  type SaeConfig,
  saveSae,
  toArrays,
} from "../mod/sae/mod.ts";
import { normaliseRows, projectOutParallel, saeGrads } from "../mod/sae/mod.ts";
import { geometricMedian } from "../mod/sae/mod.ts";
import { evaluateSae } from "../mod/sae/mod.ts";
import { adaptiveSaeGrads, saeGradsSparse } from "../mod/sae/mod.ts";
import { Rng } from "../mod/run/mod.ts";
import {
  assert,
  assertAllClose,
  assertAlmostEquals,
  assertEquals,
  assertGreater,
  assertLess,
  assertRejects,
  assertThrows,
} from "./assert.ts";

await tf.setBackend("cpu");

/** d_in 2, d_sae 3, with answers worked out by hand in the tests below. */
function handSae(cfg: Partial<SaeConfig> = {}): Sae {
  return fromArrays({ dIn: 2, dSae: 3, architecture: "standard", l1Coefficient: 0.1, ...cfg }, {
    W_enc: new Float32Array([1, 0, -1, 0, 1, 1]),
    b_enc: new Float32Array([0, -0.5, 0]),
    W_dec: new Float32Array([1, 0, 0, 1, 0.6, 0.8]),
    b_dec: new Float32Array([0.5, 0.5]),
  });
}

const X = () => tf.tensor2d([[1.5, 2.5], [0.5, 0.5], [2.5, 0.5]]);

function randomSae(cfg: SaeConfig, seed: number): Sae {
  const rng = new Rng(seed);
  const r = (n: number, s: number) => Float32Array.from({ length: n }, () => s * rng.normal());
  return fromArrays(cfg, {
    W_enc: r(cfg.dIn * cfg.dSae, 0.5),
    b_enc: r(cfg.dSae, 0.2),
    W_dec: r(cfg.dSae * cfg.dIn, 0.5),
    b_dec: r(cfg.dIn, 0.3),
  });
}

function randomX(n: number, d: number, seed: number): tf.Tensor2D {
  const rng = new Rng(seed);
  return tf.tensor2d(Float32Array.from({ length: n * d }, () => rng.normal()), [n, d]);
}

Deno.test("sae createSae() independent init: Kaiming-uniform W_enc, unit W_dec rows, not W_encᵀ", async () => {
  const [dIn, dSae] = [256, 1024];
  const cfg: SaeConfig = { dIn, dSae, architecture: "standard", l1Coefficient: 1 };
  const sae = createSae(cfg, { seed: 5, init: "independent" });
  const w = await toArrays(sae);
  // torch's kaiming_uniform_ on W_enc [d_in, d_sae]: fan_in = size(1) = d_sae.
  const bound = kaimingBound(dIn, dSae);
  assertAlmostEquals(bound, Math.sqrt(6 / 1024), 1e-15);
  let max = 0, sum = 0, sq = 0;
  for (const v of w.W_enc) {
    max = Math.max(max, Math.abs(v));
    sum += v;
    sq += v * v;
  }
  const n = w.W_enc.length, mean = sum / n, variance = sq / n - mean * mean;
  assert(max <= bound, `max |W_enc| ${max} exceeds the bound ${bound}`);
  assertGreater(max, 0.99 * bound); // 262,144 draws reach the edge: not a smaller bound
  // U(−b, b) has variance b²/3 = 2 / d_sae (Kaiming's gain √2); the estimate's sd here is 0.06%.
  assertAlmostEquals(variance / (bound ** 2 / 3), 1, 0.02);
  assertAlmostEquals(mean, 0, 1e-3);
  for (let f = 0; f < dSae; f++) {
    assertAlmostEquals(Math.hypot(...w.W_dec.subarray(f * dIn, (f + 1) * dIn)), 1, 1e-5);
  }
  // Independent: feature f's encoder column and decoder row are unrelated (mean |cos| of two
  // random directions in R^256 is ~0.05; W_enc = W_decᵀ would give 1).
  let cosSum = 0, maxDiff = 0;
  for (let f = 0; f < dSae; f++) {
    let dot = 0, norm = 0;
    for (let d = 0; d < dIn; d++) {
      const e = w.W_enc[d * dSae + f], dec = w.W_dec[f * dIn + d];
      dot += e * dec;
      norm += e * e;
      maxDiff = Math.max(maxDiff, Math.abs(e - dec));
    }
    cosSum += Math.abs(dot) / Math.sqrt(norm);
  }
  assertLess(cosSum / dSae, 0.1);
  assertGreater(maxDiff, 0.1);
  assertAllClose(w.b_enc, new Float32Array(dSae), 0);
  // The default init is the independent one, and the seed decides the draw.
  const again = createSae(cfg, { seed: 5 }), other = createSae(cfg, { seed: 6 });
  assertAllClose((await toArrays(again)).W_enc, w.W_enc, 0);
  const otherDec = (await toArrays(other)).W_dec;
  assertGreater(otherDec.reduce((m, v, i) => Math.max(m, Math.abs(v - w.W_dec[i])), 0), 0.1);
  [sae, again, other].forEach(disposeSae);
});

Deno.test("sae createSae() parallel init: normalised Gaussian rows, W_enc = W_decᵀ as before", async () => {
  const [dIn, dSae] = [8, 12];
  const bDec = Float32Array.from({ length: dIn }, (_, d) => d / 10);
  const sae = createSae({ dIn, dSae, architecture: "standard", l1Coefficient: 1 }, {
    seed: 3,
    init: "parallel",
    bDec,
  });
  const w = await toArrays(sae);
  // The init this project used before "independent" existed: row by row, d_in normals, normalised.
  const rng = new Rng(3);
  const expected = new Float32Array(dSae * dIn);
  for (let f = 0; f < dSae; f++) {
    let norm = 0;
    for (let d = 0; d < dIn; d++) {
      const v = rng.normal();
      expected[f * dIn + d] = v;
      norm += v * v;
    }
    for (let d = 0; d < dIn; d++) expected[f * dIn + d] /= Math.sqrt(norm);
  }
  assertAllClose(w.W_dec, expected, 0);
  for (let f = 0; f < dSae; f++) {
    for (let d = 0; d < dIn; d++) assertEquals(w.W_enc[d * dSae + f], w.W_dec[f * dIn + d]);
  }
  assertAllClose(w.b_dec, bDec, 0);
  assertAllClose(w.b_enc, new Float32Array(dSae), 0);
  disposeSae(sae);
  assertThrows(
    () =>
      createSae({ dIn, dSae, architecture: "standard", l1Coefficient: 1 }, {
        seed: 1,
        init: "orthogonal" as "parallel",
      }),
    /SAE init "orthogonal" must be one of independent, parallel/,
  );
});

Deno.test("sae encode() and decode() give the hand-computed features and reconstructions", () => {
  const sae = handSae(), x = X();
  const f = encode(sae, x), xHat = decode(sae, f);
  // x̄ = x − (0.5, 0.5); pre = x̄ W_enc + b_enc: (1, 1.5, 1), (0, −0.5, 0), (2, −0.5, −2)
  assertAllClose(f.dataSync(), [1, 1.5, 1, 0, 0, 0, 2, 0, 0], 1e-6);
  assertAllClose(xHat.dataSync(), [2.1, 2.8, 0.5, 0.5, 2.5, 0.5], 1e-6);
  tf.dispose([f, xHat, x]);
  disposeSae(sae);
});

Deno.test("sae forward() equals decode(encode(x)) and reports the documented loss parts", () => {
  const sae = handSae(), x = X();
  const out = forward(sae, x);
  const f = encode(sae, x), xHat = decode(sae, f);
  assertAllClose(out.f.dataSync(), f.dataSync(), 0);
  assertAllClose(out.xHat.dataSync(), xHat.dataSync(), 0);
  // mse = (0.6² + 0.3²) / 3 rows; l1 = (3.5 + 0 + 2) / 3; loss = mse + 0.1 l1
  assertAlmostEquals(out.mse.dataSync()[0], 0.15, 1e-6);
  assertAlmostEquals(out.l1.dataSync()[0], 5.5 / 3, 1e-6);
  assertAlmostEquals(out.loss.dataSync()[0], 0.15 + 0.55 / 3, 1e-6);
  tf.dispose([out.f, out.xHat, out.loss, out.mse, out.l1, f, xHat, x]);
  disposeSae(sae);
});

Deno.test("sae evaluateSae() gives hand-computed metrics and feature statistics", () => {
  const sae = handSae(), x = X();
  const before = tf.memory().numTensors;
  const { eval: ev, stats } = evaluateSae(sae, x, 2); // micro-batches of 2 and 1 rows
  assertEquals(tf.memory().numTensors, before);
  assertAlmostEquals(ev.mse, 0.15, 1e-6);
  assertAlmostEquals(ev.l1, 5.5 / 3, 1e-6);
  assertAlmostEquals(ev.l0, 4 / 3, 1e-12);
  // Σ‖x − mean‖² = 14/3 for these rows, so fve = 1 − 0.45 / (14/3).
  assertAlmostEquals(ev.fve, 1 - 0.45 / (14 / 3), 1e-6);
  assertEquals(Array.from(stats.count), [2, 1, 1]);
  assertAllClose(stats.density, [2 / 3, 1 / 3, 1 / 3], 1e-12);
  assertAllClose(stats.meanActivation, [1.5, 1.5, 1], 1e-6);
  assertAllClose(stats.maxActivation, [2, 1.5, 1], 1e-6);
  x.dispose();
  disposeSae(sae);
});

Deno.test("sae topk encode() keeps the k largest activations of each row", () => {
  const sae = handSae({ architecture: "topk", k: 1, l1Coefficient: 0 }), x = X();
  const f = encode(sae, x);
  assertAllClose(f.dataSync(), [0, 1.5, 0, 0, 0, 0, 2, 0, 0], 1e-6);
  tf.dispose([f, x]);
  disposeSae(sae);
});

Deno.test("sae topk keeps exactly k nonzeros per row when enough pre-activations are positive", () => {
  const cfg: SaeConfig = { dIn: 16, dSae: 64, architecture: "topk", k: 5, l1Coefficient: 0 };
  const sae = randomSae(cfg, 3);
  tf.tidy(() => sae.bEncF.assign(tf.fill([64], 50))); // every pre-activation positive
  const x = randomX(50, 16, 4);
  const f = encode(sae, x);
  const data = f.dataSync();
  for (let b = 0; b < 50; b++) {
    const row = Array.from(data.subarray(b * 64, (b + 1) * 64));
    assertEquals(row.filter((v) => v !== 0).length, 5, `row ${b}`);
  }
  // ...and the kept ones are the 5 largest of ReLU(pre).
  const pre = tf.tidy(() => tf.add(tf.matMul(tf.sub(x, sae.bDecD), sae.wEncDF), sae.bEncF));
  const preData = pre.dataSync();
  for (let b = 0; b < 50; b++) {
    const row = Array.from(preData.subarray(b * 64, (b + 1) * 64));
    const fifth = [...row].sort((p, q) => q - p)[4];
    for (let j = 0; j < 64; j++) assertEquals(data[b * 64 + j] !== 0, row[j] >= fifth);
  }
  tf.dispose([x, f, pre]);
  disposeSae(sae);
});

for (const architecture of ["standard", "topk"] as const) {
  Deno.test(`sae saeGrads() matches tf.grad of forward().loss (${architecture})`, () => {
    const cfg: SaeConfig = {
      dIn: 6,
      dSae: 10,
      architecture,
      k: 3,
      l1Coefficient: architecture === "topk" ? 0 : 0.3,
    };
    const sae = randomSae(cfg, 11), x = randomX(7, 6, 12);
    const vars = [sae.wEncDF, sae.bEncF, sae.wDecFD, sae.bDecD];
    const auto = tf.tidy(() => tf.variableGrads(() => forward(sae, x).loss, vars));
    const mine = saeGrads(sae, x);
    const want = forward(sae, x);
    assertAlmostEquals(mine.loss.dataSync()[0], want.loss.dataSync()[0], 1e-5);
    assertAlmostEquals(mine.mse.dataSync()[0], want.mse.dataSync()[0], 1e-5);
    assertAlmostEquals(mine.l1.dataSync()[0], want.l1.dataSync()[0], 1e-5);
    const nonzero = want.f.dataSync().filter((v) => v > 0).length;
    assertAlmostEquals(mine.l0.dataSync()[0], nonzero / 7, 1e-6);
    assertEquals(Array.from(mine.fireCountF.dataSync()).reduce((a, b) => a + b, 0), nonzero);
    const names = ["W_enc", "b_enc", "W_dec", "b_dec"] as const;
    names.forEach((name, i) => {
      assertAllClose(mine.grads[name].dataSync(), auto.grads[vars[i].name].dataSync(), 1e-4, name);
    });
    tf.dispose([auto.value, ...Object.values(auto.grads), x]);
    tf.dispose([mine.loss, mine.mse, mine.l1, mine.l0, mine.fireCountF]);
    tf.dispose(Object.values(mine.grads));
    tf.dispose([want.loss, want.mse, want.l1, want.f, want.xHat]);
    disposeSae(sae);
  });
}

for (const architecture of ["standard", "topk"] as const) {
  Deno.test(`sae saeGradsSparse() equals the dense saeGrads() (${architecture})`, () => {
    const cfg: SaeConfig = { dIn: 12, dSae: 40, architecture, k: 5, l1Coefficient: 0.25 };
    const sae = randomSae(cfg, 41), x = randomX(9, 12, 42);
    tf.tidy(() => sae.bEncF.assign(tf.sub(sae.bEncF, 1))); // sparser f: some rows all zero
    const dense = saeGrads(sae, x, { normBatch: 20 });
    const sparse = saeGradsSparse(sae, x, { normBatch: 20 });
    for (const key of ["loss", "mse", "l1", "l0"] as const) {
      assertAlmostEquals(sparse[key].dataSync()[0], dense[key].dataSync()[0], 1e-5, key);
    }
    assertAllClose(sparse.fireCountF.dataSync(), dense.fireCountF.dataSync(), 0);
    for (const name of ["W_enc", "b_enc", "W_dec", "b_dec"] as const) {
      assertEquals(sparse.grads[name].shape, dense.grads[name].shape);
      assertAllClose(sparse.grads[name].dataSync(), dense.grads[name].dataSync(), 1e-5, name);
    }
    for (const r of [dense, sparse]) {
      tf.dispose([r.loss, r.mse, r.l1, r.l0, r.fireCountF, ...Object.values(r.grads)]);
    }
    x.dispose();
    disposeSae(sae);
  });
}

Deno.test("sae saeGradsSparse() equals saeGrads() for odd shapes, all-zero and all-active f", () => {
  // shift = b_enc offset: -100 silences every feature, +100 makes every feature fire.
  const cases = [
    { dIn: 5, dSae: 7, batch: 3, shift: 0 },
    { dIn: 9, dSae: 33, batch: 13, shift: -100 },
    { dIn: 9, dSae: 33, batch: 13, shift: 100 },
    { dIn: 17, dSae: 130, batch: 1, shift: -0.5 },
    { dIn: 3, dSae: 257, batch: 31, shift: 0.2 },
    // d_in a multiple of 4: the WebAssembly SIMD loops (mod/backend/simd.ts) instead of the JS ones
    { dIn: 8, dSae: 33, batch: 13, shift: -100 },
    { dIn: 8, dSae: 33, batch: 13, shift: 100 },
    { dIn: 16, dSae: 130, batch: 1, shift: -0.5 },
    { dIn: 4, dSae: 257, batch: 31, shift: 0.2 },
  ];
  for (const c of cases) {
    const cfg: SaeConfig = {
      dIn: c.dIn,
      dSae: c.dSae,
      architecture: "standard",
      l1Coefficient: 0.1,
    };
    const sae = randomSae(cfg, c.dSae), x = randomX(c.batch, c.dIn, c.dIn);
    tf.tidy(() => sae.bEncF.assign(tf.add(sae.bEncF, c.shift)));
    const dense = saeGrads(sae, x);
    const sparse = saeGradsSparse(sae, x);
    const label = JSON.stringify(c);
    const l0 = dense.l0.dataSync()[0];
    if (c.shift === -100) assertEquals(l0, 0, label);
    if (c.shift === 100) assertEquals(l0, c.dSae, label);
    for (const key of ["loss", "mse", "l1", "l0"] as const) {
      const want = dense[key].dataSync()[0];
      // Relative: with every feature active the loss is ~3e5, where float32 keeps ~7 digits.
      const tolerance = 1e-5 * Math.max(1, Math.abs(want));
      assertAlmostEquals(sparse[key].dataSync()[0], want, tolerance, `${label} ${key}`);
    }
    for (const name of ["W_enc", "b_enc", "W_dec", "b_dec"] as const) {
      assertAllClose(
        sparse.grads[name].dataSync(),
        dense.grads[name].dataSync(),
        1e-4,
        `${label} ${name}`,
      );
    }
    for (const r of [dense, sparse]) {
      tf.dispose([r.loss, r.mse, r.l1, r.l0, r.fireCountF, ...Object.values(r.grads)]);
    }
    x.dispose();
    disposeSae(sae);
  }
});

Deno.test("sae adaptiveSaeGrads() goes sparse once f is sparse enough", () => {
  const cfg: SaeConfig = { dIn: 8, dSae: 32, architecture: "standard", l1Coefficient: 0.1 };
  const sae = randomSae(cfg, 51), x = randomX(16, 8, 52);
  const dispose = (r: ReturnType<typeof saeGrads>) =>
    tf.dispose([r.loss, r.mse, r.l1, r.l0, r.fireCountF, ...Object.values(r.grads)]);
  const grads = adaptiveSaeGrads(0.05);
  dispose(grads(sae, x)); // first call: dense, measures a dense f
  dispose(grads(sae, x));
  assertEquals(grads.sparseCalls, 0);
  tf.tidy(() => sae.bEncF.assign(tf.fill([32], -100))); // nothing fires now
  dispose(grads(sae, x)); // still dense (density measured on the previous call), measures 0
  dispose(grads(sae, x));
  assertEquals(grads.sparseCalls, 1);
  x.dispose();
  disposeSae(sae);
});

Deno.test("sae saeGrads() over micro-batches sums to the full batch's gradients", () => {
  const cfg: SaeConfig = { dIn: 5, dSae: 8, architecture: "standard", l1Coefficient: 0.2 };
  const sae = randomSae(cfg, 21), x = randomX(12, 5, 22);
  const full = saeGrads(sae, x);
  const a = tf.slice(x, [0, 0], [5, -1]) as tf.Tensor2D, b = tf.slice(x, [5, 0], [7, -1]);
  const ga = saeGrads(sae, a, { normBatch: 12 }),
    gb = saeGrads(sae, b as tf.Tensor2D, {
      normBatch: 12,
    });
  for (const name of ["W_enc", "b_enc", "W_dec", "b_dec"] as const) {
    const sum = tf.add(ga.grads[name], gb.grads[name]);
    assertAllClose(sum.dataSync(), full.grads[name].dataSync(), 1e-5, name);
    sum.dispose();
  }
  assertAlmostEquals(
    ga.loss.dataSync()[0] + gb.loss.dataSync()[0],
    full.loss.dataSync()[0],
    1e-5,
  );
  for (const r of [full, ga, gb]) {
    tf.dispose([r.loss, r.mse, r.l1, r.l0, r.fireCountF, ...Object.values(r.grads)]);
  }
  tf.dispose([x, a, b]);
  disposeSae(sae);
});

Deno.test("sae projectOutParallel() removes each row's parallel component and keeps the rest", () => {
  const rng = new Rng(5);
  const w = normaliseRows(tf.tensor2d(Array.from({ length: 24 }, () => rng.normal()), [4, 6]));
  const g = tf.tensor2d(Array.from({ length: 24 }, () => rng.normal()), [4, 6]);
  const p = projectOutParallel(g, w);
  const dots = tf.sum(tf.mul(p, w), 1).dataSync();
  assertAllClose(dots, [0, 0, 0, 0], 1e-6);
  // g − p is parallel to w: its norm equals |g·w|.
  const diffNorm = tf.norm(tf.sub(g, p), 2, 1).dataSync();
  const gDotW = tf.sum(tf.mul(g, w), 1).dataSync();
  assertAllClose(diffNorm, Array.from(gDotW, Math.abs), 1e-5);
  const norms = tf.norm(w, 2, 1).dataSync();
  assertAllClose(norms, [1, 1, 1, 1], 1e-6);
  tf.dispose([w, g, p]);
});

Deno.test("sae saveSae() and loadSae() round-trip weights and SAELens cfg.json fields", async () => {
  const dir = await Deno.makeTempDir();
  const sae = randomSae({ dIn: 4, dSae: 6, architecture: "topk", k: 2, l1Coefficient: 0 }, 31);
  await saveSae(dir, sae, { model_name: "tiny-1l", hook_name: "blocks.0.mlp.hook_post" });
  const cfg = JSON.parse(await Deno.readTextFile(`${dir}/cfg.json`));
  assertEquals(cfg.d_in, 4);
  assertEquals(cfg.d_sae, 6);
  assertEquals(cfg.architecture, "topk");
  assertEquals(cfg.k, 2);
  assertEquals(cfg.dtype, "float32");
  assertEquals(cfg.apply_b_dec_to_input, true);
  assertEquals(cfg.normalize_activations, "none");
  assertEquals(cfg.hook_name, "blocks.0.mlp.hook_post");
  const { sae: back, cfgJson } = await loadSae(dir);
  assertEquals(cfgJson.model_name, "tiny-1l");
  assertEquals(back.cfg, sae.cfg);
  const [a, b] = [await toArrays(sae), await toArrays(back)];
  for (const name of ["W_enc", "b_enc", "W_dec", "b_dec"]) assertAllClose(b[name], a[name], 0);
  disposeSae(sae);
  disposeSae(back);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("sae loadSae() names the missing file or the tensor with the wrong shape", async () => {
  const dir = await Deno.makeTempDir();
  await assertRejects(() => loadSae(dir), /cfg\.json.*does not exist/);
  const sae = randomSae({ dIn: 4, dSae: 6, architecture: "standard", l1Coefficient: 1 }, 32);
  await saveSae(dir, sae);
  disposeSae(sae);
  const cfg = JSON.parse(await Deno.readTextFile(`${dir}/cfg.json`));
  await Deno.writeTextFile(`${dir}/cfg.json`, JSON.stringify({ ...cfg, d_sae: 8 }));
  await assertRejects(() => loadSae(dir), /tensor "W_enc" has shape \[4,6\].*expected \[4,8\]/);
  await Deno.remove(`${dir}/sae.safetensors`);
  await assertRejects(() => loadSae(dir), /sae\.safetensors.*does not exist/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("sae encode() rejects an input of the wrong width with a clear message", () => {
  const sae = handSae(), x = tf.zeros([2, 3]) as tf.Tensor2D;
  assertThrows(() => encode(sae, x), /SAE input width 3 .* does not match d_in 2/);
  x.dispose();
  disposeSae(sae);
});

Deno.test("geometricMedian() finds the middle of collinear points and the obtuse vertex", () => {
  // Three collinear points: the median is the middle one (a data point, where Weiszfeld divides
  // by zero without the eps clamp).
  const a = tf.tensor2d([[-1, 0], [0, 0], [3, 0]]);
  assertAllClose(geometricMedian(a, { maxIter: 2000 }).median, [0, 0], 1e-3);
  // A triangle with an angle over 120° at (0,0): the Fermat point is that vertex.
  const b = tf.tensor2d([[0, 0], [1, 0.1], [-1, 0.1]]);
  assertAllClose(geometricMedian(b, { maxIter: 2000 }).median, [0, 0], 1e-3);
  // A square's four corners: its centre (the mean agrees here).
  const c = tf.tensor2d([[0, 0], [2, 0], [0, 2], [2, 2]]);
  const r = geometricMedian(c);
  assert(r.converged);
  assertAllClose(r.median, [1, 1], 1e-5);
  tf.dispose([a, b, c]);
});

Deno.test("geometricMedian() stays with the bulk when outliers drag the mean far off", () => {
  const rng = new Rng(9);
  const d = 8, rows: number[] = [];
  for (let i = 0; i < 100; i++) for (let j = 0; j < d; j++) rows.push(1 + 0.05 * rng.normal());
  for (let i = 0; i < 5; i++) for (let j = 0; j < d; j++) rows.push(1000);
  const x = tf.tensor2d(rows, [105, d]);
  const mean = tf.mean(x, 0).dataSync();
  assert(mean[0] > 40, `mean ${mean[0]} should be far off`);
  const { median } = geometricMedian(x);
  for (const v of median) assertAlmostEquals(v, 1, 0.05);
  x.dispose();
});
