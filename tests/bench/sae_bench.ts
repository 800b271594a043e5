/**
 * Benchmark of SAE training: tokens/s of SweepTrainer.step at d_in 512, batch 4096 (micro-batched),
 * ReLU SAE with Adam, for F = 4096 and 16384, and where the time goes (kernel times by op, the
 * five B×F×D matmuls by shape, Adam and the decoder constraint). Then the sparse-aware gradients
 * (mod/sae/sparse.ts) at the L0 values of a trained SAE, set by shifting b_enc so that the mean L0
 * hits each target (the dense path's time does not depend on L0).
 *
 *   deno run --allow-read --allow-env tests/bench/sae_bench.ts [--backend wasm|cpu]
 *     [--features 4096,16384] [--steps 3] [--batch 4096] [--micro 2048] [--no-profile]
 *     [--sparse-l0 32,128] (empty to skip) [--native-l0 32,64,128]
 *     [--crossover 0.015,0.03,0.06,0.12] (native sparse vs dense path, each forced)
 *
 * Under `deno bench` it registers one small benchmark (F 4096, 3 iterations) instead.
 *
 * Backend: mod/backend/init.ts's initBackend (the wasm fixes, and OpenBLAS where it loads). saeGrads
 * sets no matmul transpose flags, so even stock wasm is
 * already on its fast path. Inputs are ReLU(N(0,1)) rows standing in for MLP post-activations.
 * Reads and writes nothing; prints a table.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { encode } from "../../mod/sae/mod.ts";
import { Rng } from "../../mod/run/mod.ts";
import { adaptiveSaeGrads } from "../../mod/sae/mod.ts";
import { SweepTrainer } from "../../mod/sae/mod.ts";
import type { NativeSaeStep, SaeGradsFn } from "../../mod/sae/mod.ts";
import { nativeSaeStep } from "../../mod/sae/mod.ts";
import { arg, setUpBackend } from "./args.ts";

const D = 512;

export function activations(rows: number, seed: number): tf.Tensor2D {
  const rng = new Rng(seed);
  const x = new Float32Array(rows * D);
  for (let i = 0; i < x.length; i++) x[i] = Math.max(0, rng.normal());
  return tf.tensor2d(x, [rows, D]);
}

function makeTrainer(
  features: number,
  micro: number,
  gradsFn?: SaeGradsFn,
  nativeStep?: NativeSaeStep,
): SweepTrainer {
  return new SweepTrainer(
    [{ dSae: features, l1Coefficient: 5, lr: 1e-4, resampleSteps: [] }],
    { dIn: D, microBatch: micro, logEvery: 1_000_000, medianSample: 1024, gradsFn, nativeStep },
  );
}

/** The native step (mod/sae/native_step.ts), or an error saying why it cannot run. */
export function nativeStepOrThrow(denseAbove?: number): NativeSaeStep {
  const r = nativeSaeStep({ threads: navigator.hardwareConcurrency || 1, denseAbove });
  if (!r.step) throw new Error(`native SAE step unavailable: ${r.reason}`);
  return r.step;
}

/** Shifts b_enc by one constant so that the mean number of positive pre-activations is `l0`. */
function setL0(trainer: SweepTrainer, xBD: tf.Tensor2D, l0: number): void {
  const { sae } = trainer.slots[0];
  const rows = Math.min(256, xBD.shape[0]);
  const pre = tf.tidy(() =>
    tf.add(tf.matMul(tf.sub(tf.slice(xBD, [0, 0], [rows, -1]), sae.bDecD), sae.wEncDF), sae.bEncF)
  );
  const values = Float32Array.from(pre.dataSync()).sort();
  pre.dispose();
  const threshold = values[Math.floor(values.length * (1 - l0 / sae.cfg.dSae))];
  tf.tidy(() => sae.bEncF.assign(tf.sub(sae.bEncF, threshold)));
}

export interface Result {
  features: number;
  /** Mean L0 on the batch after the timed steps. */
  l0: number;
  secondsPerStep: number;
  tokensPerSecond: number;
  kernels: [string, number][];
  /** Native runs: seconds per step in each phase of the native kernels. */
  phases?: Record<string, number>;
}

export async function measure(
  features: number,
  batch: number,
  micro: number,
  steps: number,
  opts: { profile: boolean; sparseL0?: number; native?: boolean; denseAbove?: number },
): Promise<Result> {
  const sparse = opts.sparseL0 !== undefined;
  const native = opts.native ? nativeStepOrThrow(opts.denseAbove) : undefined;
  const trainer = makeTrainer(
    features,
    micro,
    sparse && !native ? adaptiveSaeGrads(1) : undefined,
    native,
  );
  const xBD = activations(batch, features);
  await trainer.step(xBD); // warm-up: geometric median, kernel set-up, wasm heap growth
  if (sparse) {
    setL0(trainer, xBD, opts.sparseL0!);
    await trainer.step(xBD);
  }
  native?.timings(); // reset
  const times: number[] = [];
  for (let s = 0; s < steps; s++) {
    const t0 = performance.now();
    await trainer.step(xBD);
    // Sync point: the step's last write (a small read; on wasm and cpu kernels are synchronous).
    await trainer.slots[0].lastFiredF.data();
    times.push((performance.now() - t0) / 1000);
  }
  const secondsPerStep = times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
  const phases = native
    ? Object.fromEntries(Object.entries(native.timings()).map(([k, v]) => [k, v / steps]))
    : undefined;
  let kernels: [string, number][] = [];
  if (opts.profile) {
    const info = await tf.profile(async () => {
      await trainer.step(xBD);
    });
    const byName = new Map<string, number>();
    for (const k of info.kernels) {
      if (k.name.endsWith("__op")) continue; // an op wrapper, its kernel is listed too
      const shapes = k.inputShapes.map((s) => `[${s}]`).join("x");
      const key = k.name === "BatchMatMul" ? `BatchMatMul ${shapes}` : k.name;
      byName.set(key, (byName.get(key) ?? 0) + Number(k.kernelTimeMs) / 1000);
    }
    kernels = [...byName.entries()].sort((a, b) => b[1] - a[1]);
  }
  const f = encode(trainer.slots[0].sae, tf.slice(xBD, [0, 0], [256, -1]) as tf.Tensor2D);
  const l0 = tf.tidy(() => tf.sum(tf.step(f))).dataSync()[0] / 256;
  f.dispose();
  xBD.dispose();
  trainer.dispose();
  native?.dispose();
  return { features, l0, secondsPerStep, tokensPerSecond: batch / secondsPerStep, kernels, phases };
}

async function main(): Promise<void> {
  const backend = await setUpBackend(arg("backend", "wasm"));
  const features = arg("features", "4096,16384").split(",").map(Number);
  const steps = Number(arg("steps", "3"));
  const batch = Number(arg("batch", "4096"));
  const micro = Number(arg("micro", "2048"));
  const profile = !Deno.args.includes("--no-profile");
  const sparseL0 = arg("sparse-l0", "32,128").split(",").filter((v) => v !== "").map(Number);
  const nativeL0 = arg("native-l0", "32,64,128").split(",").filter((v) => v !== "").map(Number);
  // The native step's sparse and dense paths, each forced, at these densities (L0 / F): where
  // they cross is DEFAULT_DENSE_ABOVE in mod/sae/native_step.ts.
  const crossover = arg("crossover", "").split(",").filter((v) => v !== "").map(Number);
  console.error(
    `SAE training, d_in ${D}, batch ${batch} in micro-batches of ${micro}, ReLU + Adam, ` +
      `backend ${backend}, median of ${steps} steps`,
  );
  for (const f of features) {
    const r = await measure(f, batch, micro, steps, { profile });
    console.log(
      `F ${String(f).padStart(6)} dense (L0 ${r.l0.toFixed(0)}): ` +
        `${r.secondsPerStep.toFixed(2)} s/step, ` +
        `${Math.round(r.tokensPerSecond).toLocaleString("en-US")} tokens/s`,
    );
    if (profile) {
      const total = r.kernels.reduce((a, [, t]) => a + t, 0);
      console.log(`  kernel time in one profiled step: ${total.toFixed(2)} s`);
      for (const [name, t] of r.kernels.slice(0, 14)) {
        console.log(`    ${(100 * t / total).toFixed(1).padStart(5)}%  ${t.toFixed(3)} s  ${name}`);
      }
    }
    for (const density of crossover) {
      const at = { profile: false, sparseL0: Math.round(density * f), native: true };
      const sp = await measure(f, batch, micro, steps, { ...at, denseAbove: 1 });
      const de = await measure(f, batch, micro, steps, { ...at, denseAbove: 0 });
      console.log(
        `F ${String(f).padStart(6)} density ${(sp.l0 / f).toFixed(4)}: native sparse path ` +
          `${sp.secondsPerStep.toFixed(3)} s/step, dense path ${
            de.secondsPerStep.toFixed(3)
          } s/step`,
      );
    }
    for (const l0 of nativeL0) {
      const r = await measure(f, batch, micro, steps, {
        profile: false,
        sparseL0: l0,
        native: true,
      });
      console.log(
        `F ${String(f).padStart(6)} native, L0 ${r.l0.toFixed(0)}: ` +
          `${r.secondsPerStep.toFixed(3)} s/step, ` +
          `${Math.round(r.tokensPerSecond).toLocaleString("en-US")} tokens/s`,
      );
      for (const [phase, t] of Object.entries(r.phases ?? {})) {
        if (t > 0) console.log(`    ${t.toFixed(3)} s  ${phase}`);
      }
    }
    for (const l0 of sparseL0) {
      const r = await measure(f, batch, micro, steps, { profile: false, sparseL0: l0 });
      console.log(
        `F ${String(f).padStart(6)} sparse, L0 ${r.l0.toFixed(0)}: ` +
          `${r.secondsPerStep.toFixed(2)} s/step, ` +
          `${Math.round(r.tokensPerSecond).toLocaleString("en-US")} tokens/s`,
      );
    }
  }
}

if (import.meta.main) {
  await main();
} else {
  Deno.bench({
    name: "SAE step, d_in 512, batch 4096 (micro 2048), F 4096, ReLU + Adam",
    n: 3,
    warmup: 1,
    async fn(b) {
      await setUpBackend("wasm");
      const trainer = makeTrainer(4096, 2048);
      const xBD = activations(4096, 1);
      await trainer.step(xBD);
      b.start();
      await trainer.step(xBD);
      await trainer.slots[0].lastFiredF.data();
      b.end();
      xBD.dispose();
      trainer.dispose();
    },
  });
}
