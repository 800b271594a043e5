/**
 * `deno task bench`: training throughput of this project against PyTorch + OpenBLAS on the same
 * machine, same shapes, same run, as ratios; plus tokenization of the demo corpus.
 *
 *   deno task bench [--steps 5] [--only transformer,sae,tokenize] [--features 4096,16384]
 *
 * - transformer: one AdamW step of the demo model (d_model 128, 8 heads, d_mlp 512, context 128,
 *   vocab 50257) on batch 8 x 128 tokens;
 * - sae: one ReLU-SAE step with Adam, d_in 512, batch 4096 (micro-batches of 2048), at F 4096 and
 *   16384: the tfjs dense gradients (their cost does not depend on L0, nor does PyTorch's), the
 *   tfjs sparse-aware ones at the L0 of a trained SAE (64, b_enc shifted), and the native step
 *   (mod/sae/native_step.ts, what sae.kernel=auto runs) at a fresh SAE's density and at L0 64,
 *   with the seconds per phase of the latter.
 * PyTorch runs through tests/bench/torch_ref.py with Debian's python3-torch (/usr/bin/python3),
 * 2 threads, with tcmalloc preloaded where libtcmalloc-minimal4 is installed (glibc's malloc costs
 * it up to 3x here, see torch_ref.py); where torch is absent the comparison is skipped with a line
 * saying so. Prints a table
 * and writes results/bench/compare.parquet.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import * as arrow from "apache-arrow";
import { initBackend } from "../../mod/backend/mod.ts";
import {
  createTransformer,
  makeOptimizer,
  trainStep,
  transformerConfig,
} from "../../mod/transformer/mod.ts";
import { GPT2_VOCAB_SIZE } from "../../mod/tokenize/mod.ts";
import { Rng } from "../../mod/run/mod.ts";
import { writeParquet } from "../../mod/io/mod.ts";
import { measure } from "./sae_bench.ts";
import { arg } from "./args.ts";

const PYTHON = "/usr/bin/python3";

/** One line of torch_ref.py's output. */
interface TorchResult {
  tokens_per_s: number;
  blas: string;
  allocator: string;
}

async function torch(
  kind: string,
  extra: string[],
  steps: number,
): Promise<TorchResult | string> {
  try {
    const out = await new Deno.Command(PYTHON, {
      args: [
        new URL("./torch_ref.py", import.meta.url).pathname,
        kind,
        "--steps",
        String(steps),
        "--threads",
        "2",
        ...extra,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (out.code !== 0) {
      const err = new TextDecoder().decode(out.stderr).trim().split("\n").at(-1) ?? "";
      return `PyTorch failed: ${err}`;
    }
    return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
  } catch (e) {
    return `no ${PYTHON} with torch (${
      (e as Error).message.split("\n")[0]
    }): apt-get install python3-torch libopenblas0-pthread libtcmalloc-minimal4`;
  }
}

async function transformerTokensPerS(steps: number): Promise<number> {
  const cfg = transformerConfig({ dModel: 128, nCtx: 128, dVocab: GPT2_VOCAB_SIZE });
  const model = createTransformer(cfg, { seed: 0 });
  const opt = makeOptimizer(model, { lr: 1e-3, weightDecay: 0.1 });
  const rng = new Rng(1);
  const tokens = tf.tensor2d(
    Int32Array.from({ length: 8 * 128 }, () => rng.int(50257)),
    [8, 128],
    "int32",
  );
  // Warm-up (3 steps, and 3 for PyTorch in torch_ref.py): the first steps grow the wasm heap and
  // the native kernels' buffers (after one warm-up step the median of 5 read 1,088 tokens/s; of
  // 10, 2,081, in the same hour).
  for (let w = 0; w < 3; w++) await trainStep(model, opt, tokens, { lr: 1e-3 });
  const times: number[] = [];
  for (let s = 0; s < steps; s++) {
    const t0 = performance.now();
    await trainStep(model, opt, tokens, { lr: 1e-3 });
    times.push((performance.now() - t0) / 1000);
  }
  tokens.dispose();
  return (8 * 128) / times.sort((a, b) => a - b)[Math.floor(steps / 2)];
}

const rows: Record<string, unknown>[] = [];
function report(
  workload: string,
  ours: number,
  ref: TorchResult | string,
): void {
  const theirs = typeof ref === "string" ? null : ref.tokens_per_s;
  rows.push({
    workload,
    tokens_per_s: ours,
    pytorch_tokens_per_s: theirs,
    ratio: theirs ? ours / theirs : null,
    pytorch_allocator: typeof ref === "string" ? null : ref.allocator,
  });
  const f = (v: number) => Math.round(v).toLocaleString("en-US").padStart(8);
  console.log(
    `${workload.padEnd(44)} ${f(ours)} tok/s   ` +
      (typeof ref === "string"
        ? ref
        : `PyTorch (${ref.blas}, ${ref.allocator}) ${f(ref.tokens_per_s)} tok/s   ratio ${
          (ours / ref.tokens_per_s).toFixed(2)
        }x`),
  );
}

const steps = Number(arg("steps", "5"));
const phases: Record<string, number>[] = [];
const only = arg("only", "transformer,sae,tokenize").split(",");
const info = await initBackend(arg("backend", "auto"));
console.log(
  `backend: ${info.name}, ${info.threads} threads${
    info.blas ? `, matmuls on ${info.blas}` : ""
  }; median of ${steps} steps`,
);

if (only.includes("transformer")) {
  const ours = await transformerTokensPerS(steps);
  report("transformer step (B 8 x T 128, d 128)", ours, await torch("transformer", [], steps));
}
if (only.includes("sae")) {
  for (const F of arg("features", "4096,16384").split(",").map(Number)) {
    const ref = await torch("sae", ["--features", String(F)], steps);
    const dense = await measure(F, 4096, 2048, steps, { profile: false });
    report(`SAE step F ${F}, dense (L0 ${Math.round(dense.l0)})`, dense.tokensPerSecond, ref);
    const sparse = await measure(F, 4096, 2048, steps, { profile: false, sparseL0: 64 });
    report(
      `SAE step F ${F}, tfjs sparse (L0 ${Math.round(sparse.l0)})`,
      sparse.tokensPerSecond,
      ref,
    );
    // The native step (sae.kernel=auto where it can run): at a fresh SAE's density it takes the
    // dense products, at a trained SAE's the sparse kernels.
    const fresh = await measure(F, 4096, 2048, steps, { profile: false, native: true });
    report(`SAE step F ${F}, native (L0 ${Math.round(fresh.l0)})`, fresh.tokensPerSecond, ref);
    const trained = await measure(F, 4096, 2048, steps, {
      profile: false,
      sparseL0: 64,
      native: true,
    });
    report(
      `SAE step F ${F}, native (L0 ${Math.round(trained.l0)})`,
      trained.tokensPerSecond,
      ref,
    );
    phases.push({
      features: F,
      l0: trained.l0,
      seconds: trained.secondsPerStep,
      ...trained.phases,
    });
  }
}
if (only.includes("tokenize")) {
  const { encodeDocs } = await import("../../mod/tokenize/mod.ts");
  const { loadConfig } = await import("../../mod/run/mod.ts");
  const { run: runMix } = await import("../../tasks/mix.ts");
  const { readParquet } = await import("../../mod/io/mod.ts");
  const cfg = await loadConfig({ preset: "demo" });
  const mix = await runMix(cfg);
  const texts =
    (await readParquet(String(Object.keys(mix.manifest.outputs)[0]), { columns: ["text"] }))
      .getChild("text")!.toArray() as string[];
  const t0 = performance.now();
  const enc = await encodeDocs(texts, { encoder: "tiktoken", workers: 2 });
  report(
    "tokenize demo corpus (tiktoken wasm, 2 workers)",
    enc.ids.length / ((performance.now() - t0) / 1000),
    "no reference",
  );
}
await writeParquet("results/bench/compare.parquet", arrow.tableFromJSON(rows));
if (phases.length > 0) {
  console.log("native SAE step, seconds per phase (B 4,096):");
  for (const p of phases) {
    const { features, l0, seconds, ...rest } = p;
    console.log(
      `  F ${features} (L0 ${Math.round(l0 as number)}): ${(seconds as number).toFixed(3)} s`,
    );
    for (const [k, v] of Object.entries(rest)) {
      if ((v as number) > 0) console.log(`    ${(v as number).toFixed(3)} s  ${k}`);
    }
  }
}
console.log("wrote results/bench/compare.parquet");
