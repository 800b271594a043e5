/**
 * Benchmark of the BLAS matmul kernels (mod/backend/blas_kernels.ts) against the wasm backend's own
 * (XNNPACK with transpose-first, mod/backend/wasm.ts): GFLOP/s of the project's big products,
 * the per-call time of small ones (to see whether small products should stay on XNNPACK), and
 * whole training steps with and without BLAS: the transformer (d_model 128, 8 heads, d_mlp 512,
 * n_ctx 128, batch 8) and the SAE (d_in 512, F 4096 and 16384, batch 4096 in micro-batches of
 * 2048, ReLU + Adam, SweepTrainer.step), for each OpenBLAS thread count asked for.
 *
 *   deno run -A tests/bench/blas_bench.ts [--wasm-threads 2] [--blas-threads 1,2] [--steps 3]
 *     [--only matmul,small,transformer,sae]
 *
 * Needs --allow-read (node_modules, the library path), --allow-ffi and --allow-env (RTD_BLAS_LIB,
 * optional). Off and on runs alternate, so that load from other processes hits both alike.
 * Reads and writes nothing; prints tables on stdout. Under `deno bench` it registers one product
 * both ways instead.
 *
 * Shape key: M, N, K as in sgemm (product M x N, inner K); B batch, T positions, F features.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../mod/backend/mod.ts";
import { disableBlas, enableBlas } from "../../mod/backend/mod.ts";
import {
  createTransformer,
  makeOptimizer,
  trainStep,
  transformerConfig,
} from "../../mod/transformer/mod.ts";
import { GPT2_VOCAB_SIZE } from "../../mod/tokenize/mod.ts";
import { SweepTrainer } from "../../mod/sae/mod.ts";
import { Rng } from "../../mod/run/mod.ts";
import { arg } from "./args.ts";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Times `fn` (which must end at a sync point) with BLAS off and on, alternating; median s. */
async function offOn(
  fn: () => Promise<void> | void,
  reps: number,
  blasThreads: number,
): Promise<{ off: number; on: number }> {
  const off: number[] = [], on: number[] = [];
  for (let r = -1; r < reps; r++) { // r = -1: warm-up of both
    for (const blas of [false, true]) {
      if (blas) enableBlas("wasm", { quiet: true, threads: blasThreads });
      else disableBlas();
      const t0 = performance.now();
      await fn();
      const s = (performance.now() - t0) / 1000;
      if (r >= 0) (blas ? on : off).push(s);
    }
  }
  disableBlas();
  return { off: median(off), on: median(on) };
}

interface Product {
  label: string;
  aShape: [number, number];
  bShape: [number, number];
  ta: boolean;
  tb: boolean;
}

const PRODUCTS: Product[] = [
  { label: "unembed  x @ W_U", aShape: [1016, 128], bShape: [128, 50257], ta: false, tb: false },
  {
    label: "grad x   dL @ W_U^T",
    aShape: [1016, 50257],
    bShape: [128, 50257],
    ta: false,
    tb: true,
  },
  { label: "grad W_U x^T @ dL", aShape: [1016, 128], bShape: [1016, 50257], ta: true, tb: false },
  { label: "SAE enc  x @ W_enc", aShape: [2048, 512], bShape: [512, 4096], ta: false, tb: false },
  { label: "SAE grad x^T @ g", aShape: [2048, 512], bShape: [2048, 4096], ta: true, tb: false },
  { label: "SAE grad g @ W^T", aShape: [2048, 4096], bShape: [512, 4096], ta: false, tb: true },
];

function flops(p: Product): number {
  const m = p.ta ? p.aShape[1] : p.aShape[0];
  const k = p.ta ? p.aShape[0] : p.aShape[1];
  const n = p.tb ? p.bShape[0] : p.bShape[1];
  return 2 * m * n * k;
}

async function matmuls(reps: number, blasThreads: number): Promise<void> {
  console.log(`\nbig products (GFLOP/s, median of ${reps}), OpenBLAS ${blasThreads} thread(s)`);
  console.log("product                shapes                          XNNPACK    BLAS  speed-up");
  for (const p of PRODUCTS) {
    const a = tf.randomUniform(p.aShape, -1, 1, "float32", 1);
    const b = tf.randomUniform(p.bShape, -1, 1, "float32", 2);
    const t = await offOn(
      () => tf.tidy(() => tf.matMul(a, b, p.ta, p.tb)).dispose(),
      reps,
      blasThreads,
    );
    // tfjs-wasm computes synchronously inside matMul, so no read-back is needed to time it.
    const shapes = `[${p.aShape}]${p.ta ? "^T" : ""} x [${p.bShape}]${p.tb ? "^T" : ""}`;
    const g = (s: number) => (flops(p) / s / 1e9).toFixed(1).padStart(7);
    console.log(
      `${p.label.padEnd(22)} ${shapes.padEnd(30)} ${g(t.off)} ${g(t.on)}  ${
        (t.off / t.on).toFixed(2).padStart(6)
      }x`,
    );
    tf.dispose([a, b]);
  }
}

async function small(reps: number, blasThreads: number): Promise<void> {
  console.log(`\nsmall products (microseconds per call, median of ${reps} x 200 calls)`);
  console.log("shape (batch x M x K x N, flags)     XNNPACK     BLAS");
  const cases: [number, number, number, number, boolean, boolean][] = [
    [1, 1, 1, 1, false, false],
    [1, 16, 16, 16, false, false],
    [1, 64, 64, 64, false, true],
    [64, 128, 16, 128, false, true], // attention scores, 8 heads x batch 8
    [64, 128, 128, 16, false, false], // attention-weighted values
    [1, 256, 256, 256, true, false],
    [1, 1016, 128, 512, false, false], // MLP in
  ];
  for (const [batch, m, k, n, ta, tb] of cases) {
    const aShape = ta ? [k, m] : [m, k], bShape = tb ? [n, k] : [k, n];
    const a = tf.randomUniform(batch > 1 ? [batch, ...aShape] : aShape, -1, 1, "float32", 1);
    const b = tf.randomUniform(batch > 1 ? [batch, ...bShape] : bShape, -1, 1, "float32", 2);
    const t = await offOn(
      () => {
        for (let i = 0; i < 200; i++) tf.matMul(a, b, ta, tb).dispose();
      },
      reps,
      blasThreads,
    );
    const us = (s: number) => (s / 200 * 1e6).toFixed(1).padStart(8);
    const label = `${batch} x ${m} x ${k} x ${n}${ta ? " ^T" : ""}${tb ? " T^" : ""}`;
    console.log(`${label.padEnd(34)} ${us(t.off)} ${us(t.on)}`);
    tf.dispose([a, b]);
  }
}

async function transformerSteps(reps: number, blasThreads: number): Promise<number[]> {
  const [batch, ctx] = [8, 128];
  const cfg = transformerConfig({
    dModel: 128,
    nHeads: 8,
    dMlp: 512,
    nCtx: ctx,
    dVocab: GPT2_VOCAB_SIZE,
  });
  const model = createTransformer(cfg, { seed: 0 });
  const opt = makeOptimizer(model, { lr: 1e-4, weightDecay: 0.1 });
  const rng = new Rng(2);
  const ids = Int32Array.from({ length: batch * ctx }, () => rng.int(cfg.dVocab));
  const tokensBT = tf.tensor2d(ids, [batch, ctx], "int32");
  const t = await offOn(
    async () => {
      await trainStep(model, opt, tokensBT, { lr: 1e-4 }); // reads the loss: a sync point
    },
    reps,
    blasThreads,
  );
  tokensBT.dispose();
  opt.dispose();
  for (const p of Object.values(model.params)) p.dispose();
  return [batch * ctx / t.off, batch * ctx / t.on];
}

async function saeSteps(features: number, reps: number, blasThreads: number): Promise<number[]> {
  const [batch, micro, dIn] = [4096, 2048, 512];
  const trainer = new SweepTrainer(
    [{ dSae: features, l1Coefficient: 5, lr: 1e-4, resampleSteps: [] }],
    { dIn, microBatch: micro, logEvery: 1_000_000, medianSample: 1024 },
  );
  const rng = new Rng(features);
  const x = Float32Array.from({ length: batch * dIn }, () => Math.max(0, rng.normal()));
  const xBD = tf.tensor2d(x, [batch, dIn]);
  const t = await offOn(
    async () => {
      await trainer.step(xBD);
      await trainer.slots[0].sae.wDecFD.data(); // the step's last write
    },
    reps,
    blasThreads,
  );
  xBD.dispose();
  trainer.dispose();
  return [batch / t.off, batch / t.on];
}

async function main(): Promise<void> {
  const wasmThreads = Number(arg("wasm-threads", String(navigator.hardwareConcurrency || 1)));
  const blasThreads = arg("blas-threads", String(navigator.hardwareConcurrency || 1))
    .split(",").map(Number);
  const reps = Number(arg("steps", "3"));
  const only = arg("only", "matmul,small,transformer,sae").split(",");
  await initBackend("wasm", { threads: wasmThreads, quiet: true });
  const status = enableBlas("wasm", { quiet: true });
  if (!status.enabled) {
    console.log(`No BLAS: ${status.reason}`);
    Deno.exit(1);
  }
  console.log(`wasm ${wasmThreads} thread(s); ${status.config} (${status.library})`);
  const fmt = (v: number) => Math.round(v).toLocaleString("en-US").padStart(8);
  for (const bt of blasThreads) {
    if (only.includes("matmul")) await matmuls(reps, bt);
    if (only.includes("small")) await small(reps, bt);
    const rows: [string, number[], string][] = [];
    if (only.includes("transformer")) {
      rows.push(["transformer B 8 x T 128", await transformerSteps(reps, bt), "~1,270"]);
    }
    if (only.includes("sae")) {
      rows.push(["SAE F 4096, B 4096", await saeSteps(4096, reps, bt), "~5,270"]);
      rows.push(["SAE F 16384, B 4096", await saeSteps(16384, reps, bt), "~1,170"]);
    }
    if (rows.length === 0) continue;
    console.log(`\ntraining steps (tokens/s, median of ${reps}), OpenBLAS ${bt} thread(s)`);
    console.log("step                      XNNPACK      BLAS  speed-up  PyTorch+OpenBLAS");
    for (const [label, [off, on], torch] of rows) {
      console.log(
        `${label.padEnd(24)} ${fmt(off)}  ${fmt(on)}  ${(on / off).toFixed(2).padStart(7)}x  ${
          torch.padStart(16)
        }`,
      );
    }
  }
}

if (import.meta.main) {
  await main();
} else {
  const p = PRODUCTS[4];
  for (const blas of [false, true]) {
    Deno.bench({
      name: `${p.label} [${p.aShape}]^T x [${p.bShape}], ${blas ? "BLAS" : "XNNPACK"}`,
      group: "SAE weight gradient",
      baseline: !blas,
      n: 5,
      warmup: 1,
      async fn(b) {
        await initBackend("wasm", { quiet: true });
        const status = blas ? enableBlas("wasm", { quiet: true }) : (disableBlas(), null);
        if (status && !status.enabled) return;
        const x = tf.randomUniform(p.aShape, -1, 1, "float32", 1);
        const y = tf.randomUniform(p.bShape, -1, 1, "float32", 2);
        b.start();
        tf.matMul(x, y, p.ta, p.tb).dispose();
        b.end();
        tf.dispose([x, y]);
        disableBlas();
      },
    });
  }
}
