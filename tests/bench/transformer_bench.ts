/**
 * Benchmark of the transformer training step at the demo shape (d_model 128, 8 heads, d_mlp 512,
 * n_ctx 128, vocab 50257, batch 8 x 128 tokens): tokens/s of trainStep with the fused chunked
 * cross-entropy (on the native kernel where it runs, and on tfjs ops) against the plain one, where
 * the time goes (forward, backward, clip + Adam), the native cross-entropy's phases, the
 * cross-entropy alone in its variants (store/recompute, rows per chunk), and peak memory.
 *
 *   deno run --allow-read --allow-env tests/bench/transformer_bench.ts [--backend wasm|cpu]
 *     [--steps 3] [--batch 8] [--ctx 128] [--ce all|fused|tfjs|plain] [--no-ce-sweep]
 *
 * --ce: fused = the cross-entropy and the clip + AdamW update as trainStep runs them (on the
 * native kernels where they can run); tfjs = the same on tfjs ops (kernel "tfjs", Adam.step);
 * plain = plainCrossEntropy and Adam.step.
 *
 * Backend: mod/backend/init.ts's initBackend (the wasm fixes, and OpenBLAS where it loads). Reads and
 * writes nothing; prints a table.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Adam } from "../../mod/transformer/mod.ts";
import {
  createTransformer,
  lossFn,
  type LossOptions,
  makeOptimizer,
  PARAM_NAMES,
  type Transformer,
  transformerConfig,
} from "../../mod/transformer/mod.ts";
import { GPT2_VOCAB_SIZE } from "../../mod/tokenize/mod.ts";
import {
  type FusedCeOptions,
  fusedCrossEntropy,
  plainCrossEntropy,
} from "../../mod/transformer/mod.ts";
import { nativeAdamW } from "../../mod/transformer/native_adam.ts";
import { nativeCe } from "../../mod/transformer/native_ce.ts";
import { Rng } from "../../mod/run/mod.ts";
import { arg, setUpBackend } from "./args.ts";

async function sync(t: tf.Tensor): Promise<void> {
  await t.data();
}

/** Seconds per call of `fn`, median of `reps` after one warm-up. */
async function timeIt(fn: () => Promise<void>, reps: number): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    times.push((performance.now() - t0) / 1000);
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
}

type Ce = "fused" | "tfjs" | "plain";

function lossOptions(ce: Ce): LossOptions {
  return ce === "tfjs" ? { ce: "fused", fused: { kernel: "tfjs" } } : { ce };
}

interface Phases {
  forward: number;
  forwardBackward: number;
  optimizer: number;
  step: number;
  peakMiB: number;
}

/** Times the phases of one training step the way trainStep runs them. */
async function phases(
  model: Transformer,
  opt: Adam,
  tok: tf.Tensor2D,
  ce: Ce,
  reps: number,
): Promise<Phases> {
  const vars = PARAM_NAMES.map((n) => model.params[n]);
  const forward = await timeIt(async () => {
    const loss = tf.tidy(() => lossFn(model, tok, lossOptions(ce)));
    await sync(loss);
    loss.dispose();
  }, reps);
  let grads: tf.NamedTensorMap = {};
  const forwardBackward = await timeIt(async () => {
    tf.dispose(grads);
    const r = tf.variableGrads(() => lossFn(model, tok, lossOptions(ce)), vars);
    await Promise.all(Object.values(r.grads).map(sync));
    r.value.dispose();
    grads = r.grads;
  }, reps);
  const adamw = ce === "fused" ? nativeAdamW().adamw : null;
  const optimizer = await timeIt(async () => {
    if (adamw) {
      const byParam = Object.fromEntries(PARAM_NAMES.map((n) => [n, grads[model.params[n].name]]));
      adamw.step(opt, byParam, { lr: 1e-4, clipNorm: 1 });
    } else {
      tf.tidy(() => {
        const list = vars.map((v) => grads[v.name]);
        const norm = tf.sqrt(tf.addN(list.map((g) => tf.sum(tf.square(g)))));
        const scale = tf.minimum(1, tf.div(1, tf.add(norm, 1e-6)));
        const scaled: Record<string, tf.Tensor> = {};
        PARAM_NAMES.forEach((n, i) => (scaled[n] = tf.mul(list[i], scale)));
        opt.step(scaled, 1e-4);
      });
    }
    await sync(model.params["unembed.W_U"]);
  }, reps);
  tf.dispose(grads);
  const profile = await tf.profile(() => {
    const r = tf.variableGrads(() => lossFn(model, tok, lossOptions(ce)), vars);
    tf.dispose([r.value, ...Object.values(r.grads)]);
  });
  return {
    forward,
    forwardBackward,
    optimizer,
    step: forwardBackward + optimizer,
    peakMiB: profile.peakBytes / 2 ** 20,
  };
}

/** The unembedding + cross-entropy alone, forward and backward, at [N, D] x [D, V]. */
async function ceAlone(n: number, d: number, v: number, opts: FusedCeOptions | "plain") {
  const rng = new Rng(1);
  const x = tf.tensor2d(Float32Array.from({ length: n * d }, () => rng.normal()), [n, d]);
  const w = tf.tensor2d(Float32Array.from({ length: d * v }, () => 0.05 * rng.normal()), [d, v]);
  const b = tf.zeros([v]) as tf.Tensor1D;
  const t = tf.tensor1d(Array.from({ length: n }, () => rng.int(v)), "int32");
  const f = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
    opts === "plain"
      ? plainCrossEntropy(xx as tf.Tensor2D, ww as tf.Tensor2D, bb as tf.Tensor1D, t)
      : fusedCrossEntropy(xx as tf.Tensor2D, ww as tf.Tensor2D, bb as tf.Tensor1D, t, opts);
  const seconds = await timeIt(async () => {
    const { value, grads } = tf.valueAndGrads(f)([x, w, b]);
    await Promise.all(grads.map(sync));
    tf.dispose([value, ...grads]);
  }, 2);
  const profile = await tf.profile(() => {
    const { value, grads } = tf.valueAndGrads(f)([x, w, b]);
    tf.dispose([value, ...grads]);
  });
  tf.dispose([x, w, b, t]);
  return { seconds, peakMiB: profile.peakBytes / 2 ** 20 };
}

async function main() {
  const backend = await setUpBackend(arg("backend", "wasm"));
  const steps = Number(arg("steps", "3")), batch = Number(arg("batch", "8"));
  const ctx = Number(arg("ctx", "128")), which = arg("ce", "all");
  const cfg = transformerConfig({ dModel: 128, nHeads: 8, nCtx: ctx, dVocab: GPT2_VOCAB_SIZE });
  console.log(`backend ${backend}; B ${batch} x T ${ctx}; median of ${steps} after 1 warm-up`);
  const model = createTransformer(cfg, { seed: 0 });
  const opt = makeOptimizer(model, { lr: 1e-4, weightDecay: 0.1 });
  const rng = new Rng(2);
  const tok = tf.tensor2d(
    Int32Array.from({ length: batch * ctx }, () => rng.int(cfg.dVocab)),
    [batch, ctx],
    "int32",
  );
  const tokens = batch * ctx;
  const ces: Ce[] = which === "all" ? ["fused", "tfjs", "plain"] : [which as Ce];
  console.log("ce     fwd s  fwd+bwd s  clip+adam s  step s  tokens/s  peak MiB");
  for (const ce of ces) {
    const p = await phases(model, opt, tok, ce, steps);
    console.log(
      `${ce.padEnd(6)} ${p.forward.toFixed(3).padStart(5)}  ${
        p.forwardBackward.toFixed(3).padStart(9)
      }  ${p.optimizer.toFixed(3).padStart(11)}  ${p.step.toFixed(3).padStart(6)}  ${
        (tokens / p.step).toFixed(0).padStart(8)
      }  ${p.peakMiB.toFixed(0).padStart(8)}`,
    );
  }
  const native = nativeCe().ce;
  if (native && ces.includes("fused")) {
    // One more forward + backward, split into the native cross-entropy's phases.
    native.timings();
    const vars = PARAM_NAMES.map((n) => model.params[n]);
    const t0 = performance.now();
    const r = tf.variableGrads(() => lossFn(model, tok), vars);
    await Promise.all(Object.values(r.grads).map(sync));
    const total = (performance.now() - t0) / 1000;
    tf.dispose([r.value, ...Object.values(r.grads)]);
    const parts = Object.entries(native.timings());
    const inCe = parts.reduce((a, [, s]) => a + s, 0);
    console.log(`
fused forward + backward, one step: ${total.toFixed(3)} s, of which native CE:`);
    for (const [phase, s] of parts) console.log(`  ${phase.padEnd(32)} ${s.toFixed(3)} s`);
    console.log(`  ${"rest of the model (tfjs)".padEnd(32)} ${(total - inCe).toFixed(3)} s`);
  }
  if (!Deno.args.includes("--no-ce-sweep")) {
    const n = batch * (ctx - 1);
    console.log(`\ncross-entropy alone, forward + backward, N ${n} x D 128 x V ${cfg.dVocab}`);
    const variants: [string, FusedCeOptions | "plain"][] = [
      ["plain", "plain"],
      ["tfjs store, 334 rows", { mode: "store", rowChunk: 334, kernel: "tfjs" }],
      ["tfjs recompute, 334", { mode: "recompute", rowChunk: 334, kernel: "tfjs" }],
      ["fused store, 128 rows", { mode: "store", rowChunk: 128 }],
      ["fused store, 254 rows", { mode: "store", rowChunk: 254 }],
      ["fused store, 508 rows", { mode: "store", rowChunk: 508 }],
      ["fused recompute, 254", { mode: "recompute", rowChunk: 254 }],
    ];
    for (const [label, opts] of variants) {
      const r = await ceAlone(n, 128, cfg.dVocab, opts);
      console.log(
        `${label.padEnd(22)} ${r.seconds.toFixed(3)} s  peak ${r.peakMiB.toFixed(0)} MiB`,
      );
    }
  }
  tok.dispose();
  opt.dispose();
  Deno.exit(0); // a threaded wasm backend keeps workers alive
}

if (import.meta.main) await main();
