/**
 * Tests for the native SAE step (mod/backend/native/sae_step.c through mod/sae/native_step.ts):
 * a SweepTrainer on it against the same trainer on tfjs (saeGrads + Adam + normaliseRows), step
 * by step, on odd shapes (D 19, F 37, micro-batches of 40 + 40 + 16 rows): parameters, Adam moments,
 * "last fired" steps and logged loss parts equal within float tolerance, on the sparse path, the
 * dense path, TopK, BatchTopK (with its threshold), an f that is all zero and one where every feature fires. Plus a level tensor
 * count, and the loader's refusal of a library built from other sources.
 *
 * Needs the wasm backend with OpenBLAS and the built library (bash tasks/setup.sh builds both); a
 * machine without them fails here with the reason, rather than skipping.
 *
 *   deno test --allow-read --allow-env --allow-ffi tests/native_sae_test.ts
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { enableBlas, initBackend, nativeSourceHash } from "../mod/backend/mod.ts";
import {
  nativeSaeStep,
  type SaeStepMetrics,
  type SaeTrainConfig,
  SweepTrainer,
  toArrays,
} from "../mod/sae/mod.ts";
import { values } from "./tensors.ts";
import { assert, assertAllClose, assertEquals, assertGreater, assertThrows } from "./assert.ts";

await initBackend("wasm", { threads: 2 });
enableBlas("wasm", { quiet: true });

const D = 19, F = 37, B = 96, MICRO = 40;

function native(denseAbove: number) {
  const r = nativeSaeStep({ threads: 2, denseAbove });
  if (!r.step) throw new Error(`native SAE step unavailable: ${r.reason}`);
  return r.step;
}

/** ReLU rows with a spread of magnitudes, so rows fire on different numbers of features. */
function batch(seed: number, shift = 0): tf.Tensor2D {
  const v = values(B * D, seed);
  for (let i = 0; i < v.length; i++) v[i] = Math.max(0, v[i] * (1 + (i % 7)) + shift);
  return tf.tensor2d(v, [B, D]);
}

interface Run {
  weights: Record<string, Float32Array>;
  moments: Float32Array[];
  lastFired: Float32Array;
  logs: SaeStepMetrics[];
  t: number;
}

async function train(
  cfg: SaeTrainConfig,
  step: ReturnType<typeof native> | undefined,
  opts: { steps?: number; bEnc?: number } = {},
): Promise<Run> {
  const trainer = new SweepTrainer([cfg], {
    dIn: D,
    microBatch: MICRO,
    logEvery: 1,
    medianSample: 64,
    seed: 3,
    nativeStep: step,
  });
  const { sae } = trainer.slots[0];
  if (opts.bEnc !== undefined) tf.tidy(() => sae.bEncF.assign(tf.fill([F], opts.bEnc!)));
  const logs: SaeStepMetrics[] = [];
  for (let s = 0; s < (opts.steps ?? 4); s++) {
    const x = batch(10 + s);
    logs.push(...(await trainer.step(x))!);
    x.dispose();
  }
  const slot = trainer.slots[0];
  const moments = ["W_enc", "b_enc", "W_dec", "b_dec"].flatMap((n) => [
    Float32Array.from(slot.adam.m[n].dataSync()),
    Float32Array.from(slot.adam.v[n].dataSync()),
  ]);
  const run = {
    weights: await toArrays(sae),
    moments,
    lastFired: Float32Array.from(slot.lastFiredF.dataSync()),
    logs,
    t: slot.adam.t,
  };
  trainer.dispose();
  return run;
}

function assertSameRun(got: Run, want: Run): void {
  for (const name of Object.keys(want.weights)) {
    assertAllClose(got.weights[name], want.weights[name], 2e-4, name);
  }
  // Moments relative to their largest entry (v is the square of small gradients).
  got.moments.forEach((m, i) => {
    const w = want.moments[i], scale = Math.max(1e-30, ...w.map(Math.abs));
    assertAllClose(m.map((e) => e / scale), w.map((e) => e / scale), 2e-3, `moment ${i}`);
  });
  assertEquals(Array.from(got.lastFired), Array.from(want.lastFired));
  assertEquals(got.t, want.t);
  got.logs.forEach((g, i) => {
    const w = want.logs[i];
    for (const key of ["loss", "mse", "l1", "l0", "fve", "deadFraction"] as const) {
      assertAllClose([g[key]], [w[key]], 1e-4, `step ${w.step} ${key}`);
    }
  });
}

const relu: SaeTrainConfig = { dSae: F, l1Coefficient: 0.3, lr: 3e-2, resampleSteps: [] };

Deno.test("native SAE step: sparse path equals tfjs over 4 steps of 3 micro-batches", async () => {
  const step = native(1);
  const got = await train(relu, step);
  const want = await train(relu, undefined);
  assertSameRun(got, want);
  assertEquals(step.denseCalls, 0);
  assertEquals(step.calls, 12);
  assertGreater(want.logs[0].l0, 1); // rows fire on several features (and on different counts)
  step.dispose();
});

Deno.test("native SAE step: dense path equals tfjs", async () => {
  const step = native(0);
  assertSameRun(await train(relu, step), await train(relu, undefined));
  assertEquals(step.denseCalls, step.calls);
  step.dispose();
});

Deno.test("native SAE step: TopK (k 3) equals tfjs on both paths", async () => {
  const topk: SaeTrainConfig = { ...relu, architecture: "topk", k: 3, l1Coefficient: 0 };
  const want = await train(topk, undefined);
  for (const denseAbove of [1, 0]) {
    const step = native(denseAbove);
    const got = await train(topk, step);
    assertSameRun(got, want);
    assert(got.logs.every((l) => l.l0 <= 3 + 1e-6), "at most k features per row");
    step.dispose();
  }
});

Deno.test("native SAE step: BatchTopK (k 3) equals tfjs on both paths, threshold included", async () => {
  const btk: SaeTrainConfig = { ...relu, architecture: "batchtopk", k: 3, l1Coefficient: 0 };
  const want = await train(btk, undefined);
  assertGreater(want.weights.threshold[0], 0); // set by the running average
  for (const denseAbove of [1, 0]) {
    const step = native(denseAbove);
    const got = await train(btk, step);
    assertEquals(step.calls, 12); // the native step ran it
    assertSameRun(got, want);
    // k·M entries per micro-batch of M rows: 3 per row on average, not per row.
    assert(got.logs.every((l) => Math.abs(l.l0 - 3) < 1e-6), "k per row on average");
    step.dispose();
  }
});

Deno.test("native SAE step: refuses the architectures it does not train, naming them", async () => {
  const { createSae } = await import("../mod/sae/mod.ts");
  const step = native(1), x = batch(1);
  for (
    const cfg of [{ architecture: "gated" as const }, {
      architecture: "topk" as const,
      k: 3,
      auxkCoefficient: 0.1,
    }]
  ) {
    const sae = createSae({ dIn: D, dSae: F, l1Coefficient: 1, ...cfg }, { seed: 1 });
    assertThrows(
      () => step.grads(sae, x, B, true),
      new RegExp(`cannot train a ${cfg.architecture}`),
    );
  }
  x.dispose();
  step.dispose();
});

Deno.test("native SAE step: f all zero, and every feature firing", async () => {
  for (const bEnc of [-100, 100]) {
    for (const denseAbove of [1, 0]) {
      const step = native(denseAbove);
      const got = await train(relu, step, { bEnc, steps: 2 });
      const want = await train(relu, undefined, { bEnc, steps: 2 });
      assertSameRun(got, want);
      assertEquals(got.logs[0].l0, bEnc < 0 ? 0 : F);
      step.dispose();
    }
  }
});

Deno.test("native SAE step: tensor count stays level", async () => {
  const step = native(1);
  const trainer = new SweepTrainer([relu], {
    dIn: D,
    microBatch: MICRO,
    logEvery: 2,
    nativeStep: step,
  });
  const x = batch(1);
  await trainer.step(x);
  const before = tf.memory().numTensors;
  for (let s = 0; s < 5; s++) await trainer.step(x);
  assertEquals(tf.memory().numTensors, before);
  x.dispose();
  trainer.dispose();
  step.dispose();
});

Deno.test("native kernels: the loader's source hash is the build script's", async () => {
  const out = await new Deno.Command("bash", {
    args: [
      "-c",
      "cd mod/backend/native && LC_ALL=C ls -1 -- *.c *.h | LC_ALL=C sort | xargs cat | sha256sum",
    ],
  }).output();
  assertEquals(new TextDecoder().decode(out.stdout).slice(0, 64), nativeSourceHash());
});

Deno.test("native encode: CSR rows equal tfjs encode (ReLU and TopK)", async () => {
  const { createSae, encode } = await import("../mod/sae/mod.ts");
  for (
    const cfg of [{ architecture: "standard" as const }, { architecture: "topk" as const, k: 4 }]
  ) {
    const sae = createSae({ dIn: D, dSae: F, l1Coefficient: 1, ...cfg }, { seed: 2 });
    const x = batch(7);
    const step = native(1);
    const sparse = step.encode(sae, x);
    const dense = encode(sae, x);
    const want = dense.dataSync();
    const got = new Float32Array(B * F);
    for (let b = 0; b < B; b++) {
      for (let j = sparse.rowPtr[b]; j < sparse.rowPtr[b + 1]; j++) {
        got[b * F + sparse.col[j]] = sparse.val[j];
      }
    }
    assertAllClose(got, want, 1e-5, cfg.architecture);
    assertEquals(sparse.rowPtr[B], want.filter((v) => v > 0).length);
    tf.dispose([x, dense]);
    step.dispose();
  }
});
