/**
 * Tests for mod/sae/trainer.ts (and mod/sae/checkpoint.ts, mod/sae/train_config.ts) on the cpu
 * backend: the lr warm-up schedule and per-SAE seeds, unit decoder rows over many steps, a level
 * tensor count, b_dec at the geometric median, resampling inside the
 * trainer, recovery of known directions from synthetic sparse data, and checkpoint-resume equal to
 * an unbroken run.
 *
 *   deno test --allow-read --allow-write --allow-env tests/sae_trainer_test.ts
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { geometricMedian } from "../mod/sae/mod.ts";
import { toArrays } from "../mod/sae/mod.ts";
import { readSweepCheckpoint, writeSweepCheckpoint } from "../mod/sae/mod.ts";
import { adaptiveSaeGrads } from "../mod/sae/mod.ts";
import { type SaeStepMetrics, type SaeTrainConfig, SweepTrainer } from "../mod/sae/mod.ts";
import { lrAt, slotSeed } from "../mod/sae/mod.ts";
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
import { SparseSource } from "./synthetic.ts";

await tf.setBackend("cpu");

function rowNorms(w: Float32Array, rows: number, cols: number): number[] {
  return Array.from(
    { length: rows },
    (_, i) => Math.hypot(...w.subarray(i * cols, (i + 1) * cols)),
  );
}

const TWO_SIZES: SaeTrainConfig[] = [
  { dSae: 48, l1Coefficient: 0.3, lr: 0.01, resampleSteps: [20], deadWindow: 10, warmupSteps: 4 },
  { dSae: 32, architecture: "topk", k: 4, l1Coefficient: 0, lr: 0.01, init: "parallel" },
];

Deno.test("sae lrAt() warms up linearly from lr / warmupSteps and restarts after each resample", () => {
  const cfg = { lr: 1e-3, warmupSteps: 10, resampleSteps: [50, 100] };
  const at = (s: number) => lrAt(s, cfg);
  assertAlmostEquals(at(1), 1e-4, 1e-15); // the first update: lr / warmupSteps
  assertAlmostEquals(at(5), 5e-4, 1e-15);
  assertEquals([at(10), at(11), at(50)], [1e-3, 1e-3, 1e-3]); // the resample step itself: full lr
  assertAlmostEquals(at(51), 1e-4, 1e-15); // the step right after a resample: lr / warmupSteps
  assertAlmostEquals(at(57), 7e-4, 1e-15);
  assertEquals(at(60), 1e-3);
  assertAlmostEquals(at(101), 1e-4, 1e-15);
  assertEquals(at(1000), 1e-3);
  // Warm-up 0 disables the schedule; a warm-up longer than a gap between resamples restarts early.
  assertEquals([1, 51, 101].map((s) => lrAt(s, { ...cfg, warmupSteps: 0 })), [1e-3, 1e-3, 1e-3]);
  const long = { lr: 1, warmupSteps: 100, resampleSteps: [50] };
  assertAlmostEquals(lrAt(50, long), 0.5, 1e-15);
  assertAlmostEquals(lrAt(51, long), 0.01, 1e-15);
});

Deno.test("sweep trainer's first update moves b_enc by lr / warmupSteps (Adam's first step is ±lr)", async () => {
  const src = new SparseSource(16, 32, 3, 8);
  const lr = 0.01, warmupSteps = 8;
  const trainer = new SweepTrainer([{ dSae: 32, l1Coefficient: 0.3, lr, warmupSteps }], {
    dIn: 16,
  });
  const x = src.batch(64);
  await trainer.step(x);
  x.dispose();
  // b_enc starts at 0; Adam's bias-corrected first step is lr·g/(|g| + ε) ≈ ±lr per entry.
  const bEnc = (await trainer.slots[0].sae.bEncF.data()) as Float32Array;
  const moved = Array.from(bEnc).filter((v) => v !== 0).map(Math.abs);
  assertGreater(moved.length, 16);
  // ε = 1e-8 shortens the step only where |g| is tiny; without the warm-up it would be lr.
  const target = lr / warmupSteps;
  assert(moved.every((v) => v <= target * (1 + 1e-6)), `a step exceeds lr / warmupSteps`);
  assertGreater(moved.filter((v) => Math.abs(v / target - 1) < 0.01).length, 0.9 * moved.length);
  trainer.dispose();
});

Deno.test("sae slotSeed() is deterministic, in [0, 2³¹) and distinct across inits, sizes and replicates", () => {
  const seeds = new Set<number>();
  for (const init of ["independent", "parallel"]) {
    for (const size of [512, 1024, 2048, 4096, 8192, 16384]) {
      for (let replicate = 0; replicate < 8; replicate++) {
        const s = slotSeed(0, { init, size, replicate });
        assertEquals(s, slotSeed(0, { init, size, replicate }));
        assert(Number.isInteger(s) && s >= 0 && s < 2 ** 31, `seed ${s}`);
        seeds.add(s);
      }
    }
  }
  assertEquals(seeds.size, 2 * 6 * 8);
  const s = { init: "independent", size: 512, replicate: 0 };
  assert(slotSeed(0, s) !== slotSeed(1, s), "the run's seed changes every SAE's seed");
});

Deno.test("sweep trainer keeps every decoder row at unit norm over many micro-batched steps", async () => {
  const src = new SparseSource(16, 32, 3, 1);
  const trainer = new SweepTrainer(TWO_SIZES, { dIn: 16, microBatch: 16, logEvery: 10 });
  for (let s = 0; s < 60; s++) {
    const x = src.batch(40); // 16 + 16 + 8 rows
    await trainer.step(x);
    x.dispose();
  }
  for (const slot of trainer.slots) {
    const w = (await slot.sae.wDecFD.data()) as Float32Array;
    assertAllClose(rowNorms(w, slot.cfg.dSae, 16), new Array(slot.cfg.dSae).fill(1), 1e-5);
  }
  trainer.dispose();
});

Deno.test("sweep trainer leaves tf.memory().numTensors level across steps", async () => {
  const src = new SparseSource(16, 32, 3, 2);
  const trainer = new SweepTrainer(TWO_SIZES, { dIn: 16, microBatch: 16, logEvery: 5 });
  const counts: number[] = [];
  for (let s = 1; s <= 30; s++) {
    const x = src.batch(40);
    await trainer.step(x);
    x.dispose();
    if (s === 10 || s === 25 || s === 30) counts.push(tf.memory().numTensors);
  }
  // Steps 11..30 include logging steps and the resample at step 20.
  assertEquals(counts[1], counts[0]);
  assertEquals(counts[2], counts[0]);
  trainer.dispose();
});

Deno.test("sweep trainer on the sparse gradient path tracks the dense one", async () => {
  const src = new SparseSource(16, 32, 3, 6);
  const batches = Array.from({ length: 20 }, () => src.batch(40));
  const sparseFn = adaptiveSaeGrads(1); // sparse from the second call on
  const dense = new SweepTrainer(TWO_SIZES, { dIn: 16, microBatch: 16 });
  const sparse = new SweepTrainer(TWO_SIZES, { dIn: 16, microBatch: 16, gradsFn: sparseFn });
  const counts: number[] = [];
  for (const [i, x] of batches.entries()) {
    await dense.step(x);
    await sparse.step(x);
    if (i === 5 || i === 19) counts.push(tf.memory().numTensors);
  }
  assertGreater(sparseFn.sparseCalls, 100);
  assertEquals(counts[1], counts[0]);
  for (let i = 0; i < TWO_SIZES.length; i++) {
    const [a, b] = [await toArrays(dense.slots[i].sae), await toArrays(sparse.slots[i].sae)];
    for (const name of Object.keys(a)) assertAllClose(b[name], a[name], 1e-4, name);
  }
  tf.dispose(batches);
  dense.dispose();
  sparse.dispose();
});

Deno.test("sweep trainer starts b_dec at the geometric median of the first batch", async () => {
  const src = new SparseSource(8, 16, 2, 3);
  const trainer = new SweepTrainer([{ dSae: 16, l1Coefficient: 0.1, lr: 1e-9 }], { dIn: 8 });
  const x = src.batch(64);
  await trainer.step(x);
  const { median } = geometricMedian(x);
  assertAllClose(await trainer.slots[0].sae.bDecD.data(), median, 1e-5);
  x.dispose();
  trainer.dispose();
});

Deno.test("sweep trainer resamples dead features at the configured step and logs it once", async () => {
  const src = new SparseSource(16, 32, 3, 4);
  // λ this large silences most features within the window.
  const trainer = new SweepTrainer(
    [{ dSae: 64, l1Coefficient: 4, lr: 0.03, resampleSteps: [25], deadWindow: 10 }],
    { dIn: 16, logEvery: 5, resampleInputs: 256 },
  );
  const logs: SaeStepMetrics[] = [];
  for (let s = 0; s < 40; s++) {
    const x = src.batch(32);
    logs.push(...((await trainer.step(x)) ?? []));
    x.dispose();
  }
  assertEquals(logs.map((l) => l.step), [5, 10, 15, 20, 25, 30, 35, 40]);
  assertGreater(logs[3].deadFraction, 0.2); // dead before the resample ...
  const events = logs.flatMap((l) => l.resamples);
  assertEquals(events.length, 1);
  assertEquals(logs[4].resamples.length, 1); // ... reported at the step that resampled ...
  const [ev] = events;
  assertEquals(ev.step, 25);
  assertGreater(ev.nDead, 10);
  assertAlmostEquals(ev.deadFractionBefore, ev.nDead / 64, 1e-12);
  assertLess(ev.deadFractionAfter, ev.deadFractionBefore);
  assertEquals(logs[4].deadFraction, 0); // ... and resampled features get a fresh window
  assert(ev.deadFractionNextWindow !== undefined, "dead fraction one window later is recorded");
  assert(
    ev.revivedNextWindow! >= 0 && ev.revivedNextWindow! <= ev.nDead,
    `revived count ${ev.revivedNextWindow} of ${ev.nDead}`,
  );
  trainer.dispose();
});

for (const init of ["independent", "parallel"] as const) {
  Deno.test(`sweep trainer recovers at least 90% of known sparse directions (${init} init)`, async () => {
    // 64 unit directions in R^32, 3 active per row with magnitudes in [0.5, 1.5).
    const src = new SparseSource(32, 64, 3, 123);
    const trainer = new SweepTrainer(
      [{ dSae: 128, l1Coefficient: 0.3, lr: 0.01, init }],
      { dIn: 32, logEvery: 10 },
    );
    const logs: SaeStepMetrics[] = [];
    for (let s = 0; s < 400; s++) {
      const x = src.batch(64);
      logs.push(...((await trainer.step(x)) ?? []));
      x.dispose();
    }
    assertLess(logs.at(-1)!.loss, 0.6 * logs[0].loss);
    assertGreater(logs.at(-1)!.fve, 0.85);
    const w = (await trainer.slots[0].sae.wDecFD.data()) as Float32Array;
    let recovered = 0;
    for (let g = 0; g < 64; g++) {
      let best = -1;
      for (let f = 0; f < 128; f++) {
        let cos = 0;
        for (let j = 0; j < 32; j++) cos += w[f * 32 + j] * src.dirs[g * 32 + j];
        best = Math.max(best, cos);
      }
      if (best >= 0.9) recovered++;
    }
    assertGreater(recovered, 0.9 * 64 - 1e-9, `recovered ${recovered} of 64 directions`);
    trainer.dispose();
  });
}

Deno.test("sweep trainer resumed from a checkpoint on disk matches an unbroken run", async () => {
  // Two replicates (seeds) of each init of the ReLU SAE, with the warm-up restarting at resamples.
  const relu = { dSae: 48, l1Coefficient: 3, lr: 0.03, resampleSteps: [10, 20, 25], deadWindow: 5 };
  const configs: SaeTrainConfig[] = [
    { ...relu, name: "f48", seed: 1, warmupSteps: 3 },
    { ...relu, name: "f48-independent-r1", seed: 2, warmupSteps: 3 },
    { ...relu, name: "f48-parallel-r0", seed: 3, init: "parallel", warmupSteps: 3 },
    { ...relu, name: "f48-parallel-r1", seed: 4, init: "parallel", warmupSteps: 3 },
    { dSae: 32, architecture: "topk", k: 4, l1Coefficient: 0, lr: 0.01 },
  ];
  const opts = { dIn: 16, microBatch: 16, logEvery: 5, resampleInputs: 64, seed: 9 };
  const src = new SparseSource(16, 32, 3, 5);
  const batches = Array.from({ length: 30 }, () => src.batch(40));
  const run = async (t: SweepTrainer, from: number, to: number) => {
    const logs: SaeStepMetrics[] = [];
    for (let s = from; s < to; s++) logs.push(...((await t.step(batches[s])) ?? []));
    return logs;
  };

  const unbroken = new SweepTrainer(configs, opts);
  const logsA = await run(unbroken, 0, 30);

  const first = new SweepTrainer(configs, opts);
  await run(first, 0, 12);
  const dir = await Deno.makeTempDir();
  await writeSweepCheckpoint(dir, await first.state());
  first.dispose();
  const resumed = new SweepTrainer(configs, opts);
  resumed.load(await readSweepCheckpoint(dir));
  const logsB = await run(resumed, 12, 30);

  const resampled = logsA.filter((l) => l.name === "f48").flatMap((l) => l.resamples)
    .filter((e) => e.step > 12);
  assertGreater(resampled[0].nDead + resampled[1].nDead, 0, "the resumed part resamples");
  const tail = logsA.filter((l) => l.step > 12);
  assertEquals(logsB.map((l) => [l.name, l.step]), tail.map((l) => [l.name, l.step]));
  logsB.forEach((l, i) => {
    assertAllClose([l.loss, l.mse, l.l0, l.deadFraction], [
      tail[i].loss,
      tail[i].mse,
      tail[i].l0,
      tail[i].deadFraction,
    ], 1e-5);
    assertEquals(
      l.resamples.map((e) => e.inputIndices),
      tail[i].resamples.map((e) => e.inputIndices),
    );
  });
  // Distinct seeds give distinct SAEs.
  const w0 = await toArrays(unbroken.slots[0].sae), w1 = await toArrays(unbroken.slots[1].sae);
  assertGreater(w0.W_dec.reduce((m, v, i) => Math.max(m, Math.abs(v - w1.W_dec[i])), 0), 0.1);
  for (let i = 0; i < configs.length; i++) {
    const [a, b] = [await toArrays(unbroken.slots[i].sae), await toArrays(resumed.slots[i].sae)];
    for (const name of Object.keys(a)) assertAllClose(b[name], a[name], 1e-5, name);
    const [ma, mb] = [await unbroken.slots[i].adam.state(), await resumed.slots[i].adam.state()];
    assertEquals(mb.t, ma.t);
    for (const name of Object.keys(ma.m)) assertAllClose(mb.v[name], ma.v[name], 1e-5, name);
  }
  tf.dispose(batches);
  unbroken.dispose();
  resumed.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("sweep trainer rejects bad configs and inputs with messages that name the value", async () => {
  assertThrows(
    () =>
      new SweepTrainer([{ dSae: 8, l1Coefficient: 1, lr: 1e-3, resampleSteps: [5] }], {
        dIn: 4,
      }),
    /first resample step 5 comes before deadWindow 1000/,
  );
  assertThrows(
    () =>
      new SweepTrainer([{ dSae: 8, architecture: "topk", l1Coefficient: 0, lr: 1e-3 }], {
        dIn: 4,
      }),
    /SAE "f8-topk": SAE k "undefined" must be a positive integer/,
  );
  const trainer = new SweepTrainer([{ dSae: 8, l1Coefficient: 1, lr: 1e-3 }], { dIn: 4 });
  const x = tf.zeros([3, 5]) as tf.Tensor2D;
  await assertRejects(() => trainer.step(x), /SAE input width 5 .* does not match d_in 4/);
  x.dispose();
  trainer.dispose();
});
