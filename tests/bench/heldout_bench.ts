/**
 * Benchmark of what runs per SAE over the held-out rows: the features stage's pass
 * (collectFeatureExamples with the demo's example options) and the SAE stage's evaluateSae, on
 * the dense tfjs path and on the native sparse one (mod/sae/native_step.ts), at d_in 512. Path
 * "native-again": the features pass encodes its context rows again instead of reading them from
 * the pass's sparse rows (keepSparseBytes 0; evaluateSae is the same as "native"). What
 * "encode": the native encode of every row alone (the floor under both, native paths only).
 *
 *   deno run --allow-read --allow-env --allow-ffi tests/bench/heldout_bench.ts
 *     [--rows 100000] [--features 4096,16384] [--reps 3] [--paths dense,native,native-again]
 *     [--what features,eval,encode] [--micro 2048]
 *
 * Rows are ReLU(N(0,1)) in sequences of 128 positions. Each SAE is a fresh ReLU SAE whose b_enc is
 * set so that feature i fires on a share d_i of rows, d_i log-uniform in [1e-5, 3e-2] (mean L0
 * 0.00375·F, about a trained SAE's spread), from a Gaussian fit of each pre-activation on 2,048
 * rows. Prints one line per timing and a table of medians; reads and writes nothing.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { collectFeatureExamples } from "../../mod/features/mod.ts";
import { Rng } from "../../mod/run/mod.ts";
import { createSae, disposeSae, evaluateSae, nativeSaeStep, type Sae } from "../../mod/sae/mod.ts";
import { enableBlas } from "../../mod/backend/mod.ts";
import { arg, setUpBackend } from "./args.ts";

const D = 512, SEQ = 128;

/** Φ⁻¹(p) (Acklam's rational approximation, relative error < 1.2e-9). */
function normalQuantile(p: number): number {
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269];
  const a4 = -30.66479806614716, a5 = 2.506628277459239;
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972];
  const b4 = -13.28068155288572;
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734];
  const c4 = 4.374664141464968, c5 = 2.938163982698783;
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const tail = (q: number) =>
    (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c4) * q + c5) /
    ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  if (p < 0.02425) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - 0.02425) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5, r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a4) * r + a5) * q /
    (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b4) * r + 1);
}

function heldRows(n: number, seed: number) {
  const rng = new Rng(seed);
  const acts = new Float32Array(n * D);
  for (let i = 0; i < acts.length; i++) acts[i] = Math.max(0, rng.normal());
  const seq = Int32Array.from({ length: n }, (_, r) => Math.floor(r / SEQ));
  const pos = Int32Array.from({ length: n }, (_, r) => r % SEQ);
  const token = Int32Array.from({ length: n }, () => rng.int(50257));
  return { acts, seq, pos, token, dIn: D };
}

/** A ReLU SAE whose features fire at log-uniform densities in [1e-5, 3e-2]. */
function sparseSae(F: number, acts: Float32Array, seed: number): Sae {
  const sae = createSae({ dIn: D, dSae: F, architecture: "standard", l1Coefficient: 1 }, { seed });
  const rng = new Rng(seed + 1);
  const bEnc = tf.tidy(() => {
    const x = tf.tensor2d(acts.subarray(0, 2048 * D), [2048, D]);
    const pre = tf.matMul(tf.sub(x, sae.bDecD), sae.wEncDF);
    const { mean, variance } = tf.moments(pre, 0);
    const z = Float32Array.from({ length: F }, () => {
      const density = Math.exp(Math.log(1e-5) + rng.next() * Math.log(3e-2 / 1e-5));
      return normalQuantile(1 - density);
    });
    return tf.neg(tf.add(mean, tf.mul(tf.sqrt(variance), tf.tensor1d(z)))) as tf.Tensor1D;
  });
  sae.bEncF.assign(bEnc);
  bEnc.dispose();
  return sae;
}

function median(v: number[]): number {
  const s = v.slice().sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main() {
  const n = Number(arg("rows", "100000")), reps = Number(arg("reps", "3"));
  const sizes = arg("features", "4096,16384").split(",").map(Number);
  const paths = arg("paths", "dense,native").split(",");
  const what = arg("what", "features,eval").split(",");
  const micro = Number(arg("micro", "2048"));
  console.log(`backend: ${await setUpBackend("wasm")}`);
  enableBlas("wasm", { quiet: true });
  const threads = navigator.hardwareConcurrency || 1;
  const native = paths.some((p) => p.startsWith("native")) ? nativeSaeStep({ threads }) : null;
  if (native && !native.step) throw new Error(`native SAE step unavailable: ${native.reason}`);
  const rows = heldRows(n, 1);
  const results: string[] = [];
  for (const F of sizes) {
    const sae = sparseSae(F, rows.acts, 2);
    for (const path of paths) {
      const step = path.startsWith("native") ? native!.step! : undefined;
      for (const w of what) {
        if (w === "encode" && !step) continue;
        const times: number[] = [];
        let l0 = 0;
        for (let r = 0; r < reps; r++) {
          const t0 = performance.now();
          if (w === "features") {
            await collectFeatureExamples(sae, rows, {
              topK: 10,
              quantileBins: 5,
              perQuantile: 2,
              random: 10,
              contextBefore: 12,
              contextAfter: 4,
              microBatch: micro,
              seed: 1,
              nativeStep: step,
              keepSparseBytes: path === "native-again" ? 0 : undefined,
            });
          } else if (w === "encode") {
            for (let start = 0; start < n; start += micro) {
              const b = Math.min(micro, n - start);
              const x = tf.tensor2d(rows.acts.subarray(start * D, (start + b) * D), [b, D]);
              step!.encode(sae, x);
              x.dispose();
            }
          } else if (w === "eval") {
            l0 = evaluateSae(sae, rows.acts, micro, { nativeStep: step }).eval.l0;
          }
          times.push((performance.now() - t0) / 1000);
          console.log(`F ${F} ${path} ${w} rep ${r}: ${times.at(-1)!.toFixed(2)} s`);
        }
        const l0Note = w === "eval" ? ` (L0 ${l0.toFixed(1)})` : "";
        results.push(
          `F ${F}\t${path}\t${w}\tmedian ${median(times).toFixed(2)} s of [${
            times.map((t) => t.toFixed(2)).join(", ")
          }]${l0Note}`,
        );
      }
    }
    disposeSae(sae);
  }
  native?.step?.dispose();
  console.log(`${n.toLocaleString("en-US")} rows x ${D}; micro-batch ${micro}`);
  for (const line of results) console.log(line);
}

if (import.meta.main) await main();
