/**
 * Benchmark of the CPU backends on matmul-heavy training work: wasm with the transpose-first
 * matmul fix (1 and 2 threads), wasm as shipped (1 thread), and cpu (plain JavaScript).
 *
 *   deno bench --allow-read --allow-env tests/bench/backend_bench.ts
 *
 * Workloads (B batch, D width, F features, N positions, V vocab):
 * - matmul x @ W, [2048,512] @ [512,4096] (no transpose: XNNPACK's path even as shipped);
 * - matmul x^T @ dY, [2048,512]^T @ [2048,4096] (the weight gradient's shape and flag);
 * - SAE step: f = ReLU((x - b_dec) @ W_enc + b_enc), x_hat = f @ W_dec + b_dec, MSE + L1, and the
 *   gradients of all four parameters; B 2048, D 512, F 4096;
 * - unembedding step: logits = x @ W_U, [1024,128] @ [128,50257], softmax cross-entropy, and the
 *   gradients of x and W_U.
 * Each workload has two groups, each with wasm fixed on 1 thread as its baseline: the full batch
 * (1 against 2 threads) and 1/8 of the batch (against wasm as shipped and cpu, which take 20-90 s
 * per full-size SAE step). GFLOP/s counts matmul work only. Takes about 3 minutes on 2 cores; the
 * machine is shared, so compare within one run. Reads and writes nothing; Deno's table gives
 * times, and a GFLOP/s table follows on stderr at the end.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../mod/backend/mod.ts";
import { setWasmMatMulFix } from "../../mod/backend/mod.ts";

interface Variant {
  name: string;
  backend: "wasm" | "cpu";
  threads: number;
  fixed: boolean;
  /** Batch divisor: slow variants run a smaller batch. */
  shrink: number;
  /** Timed iterations (after Deno's one warm-up). */
  n: number;
}

interface Workload {
  name: string;
  /** Matmul floating-point operations of one run at batch divisor `shrink`. */
  flops(shrink: number): number;
  /** Makes the inputs and returns the timed computation, which returns what to read back. */
  setup(shrink: number): { run: () => tf.Tensor[]; inputs: tf.Tensor[] };
}

const cores = navigator.hardwareConcurrency || 1;
const FIXED_1: Omit<Variant, "shrink" | "n"> = {
  name: "wasm fixed, 1 thread",
  backend: "wasm",
  threads: 1,
  fixed: true,
};
/** Two groups per workload, each compared against wasm fixed on 1 thread at the same size. */
const GROUPS: { suffix: string; variants: Variant[] }[] = [
  {
    suffix: "full batch",
    variants: [
      { ...FIXED_1, shrink: 1, n: 2 },
      { ...FIXED_1, name: "wasm fixed, 2 threads", threads: 2, shrink: 1, n: 2 },
    ],
  },
  {
    suffix: "batch / 8",
    variants: [
      { ...FIXED_1, shrink: 8, n: 3 },
      { ...FIXED_1, name: "wasm as shipped, 1 thread", fixed: false, shrink: 8, n: 1 },
      { name: "cpu", backend: "cpu", threads: 1, fixed: true, shrink: 8, n: 1 },
    ],
  },
];

const [B, D, F] = [2048, 512, 4096];
const [N, DM, V] = [1024, 128, 50257];
const L1 = 5e-3;

const WORKLOADS: Workload[] = [
  {
    name: "matmul x @ W [2048,512]@[512,4096]",
    flops: (s) => 2 * (B / s) * D * F,
    setup(s) {
      const xBD = tf.randomNormal([B / s, D]);
      const wDF = tf.randomNormal([D, F]);
      return { inputs: [xBD, wDF], run: () => [tf.matMul(xBD, wDF)] };
    },
  },
  {
    name: "matmul x^T @ dY [2048,512]^T@[2048,4096]",
    flops: (s) => 2 * (B / s) * D * F,
    setup(s) {
      const xBD = tf.randomNormal([B / s, D]);
      const dyBF = tf.randomNormal([B / s, F]);
      return { inputs: [xBD, dyBF], run: () => [tf.matMul(xBD, dyBF, true, false)] };
    },
  },
  {
    name: "SAE step B2048 D512 F4096 (fwd+bwd)",
    // Forward: 2 matmuls; backward: dW_dec, dF, dW_enc, dx_bar (for b_dec's gradient).
    flops: (s) => 6 * 2 * (B / s) * D * F,
    setup(s) {
      const xBD = tf.randomNormal([B / s, D]);
      const wEncDF = tf.mul(tf.randomNormal([D, F]), 0.04);
      const bEncF = tf.zeros([F]);
      const wDecFD = tf.mul(tf.randomNormal([F, D]), 0.04);
      const bDecD = tf.zeros([D]);
      const loss = (wEnc: tf.Tensor, bEnc: tf.Tensor, wDec: tf.Tensor, bDec: tf.Tensor) => {
        const featsBF = tf.relu(tf.add(tf.matMul(tf.sub(xBD, bDec), wEnc), bEnc));
        const xHatBD = tf.add(tf.matMul(featsBF, wDec), bDec);
        const mse = tf.mean(tf.sum(tf.square(tf.sub(xHatBD, xBD)), 1));
        return tf.add(mse, tf.mul(L1, tf.mean(tf.sum(tf.abs(featsBF), 1)))) as tf.Scalar;
      };
      const params = [wEncDF, bEncF, wDecFD, bDecD];
      return { inputs: [xBD, ...params], run: () => tf.grads(loss)(params) };
    },
  },
  {
    name: "unembed step [1024,128]@[128,50257] + softmax CE (fwd+bwd)",
    flops: (s) => 3 * 2 * (N / s) * DM * V,
    setup(s) {
      const xND = tf.randomNormal([N / s, DM]);
      const wDV = tf.mul(tf.randomNormal([DM, V]), 0.05);
      const targetsN = tf.randomUniform([N / s], 0, V, "int32");
      // Cast explicitly: oneHot's int32 output read as float gives denormals on wasm.
      const labelsNV = tf.cast(tf.oneHot(targetsN, V), "float32");
      const loss = (x: tf.Tensor, w: tf.Tensor) =>
        tf.losses.softmaxCrossEntropy(labelsNV, tf.matMul(x, w)) as tf.Scalar;
      return { inputs: [xND, wDV, targetsN, labelsNV], run: () => tf.grads(loss)([xND, wDV]) };
    },
  },
];

/** Milliseconds of each timed run, by group then variant. */
const times = new Map<string, Map<string, number[]>>();

async function use(v: Variant): Promise<void> {
  await initBackend(v.backend, { threads: v.threads, quiet: true });
  if (v.backend === "wasm") setWasmMatMulFix(v.fixed);
}

for (const w of WORKLOADS) {
  for (const g of GROUPS) {
    const group = `${w.name}, ${g.suffix}`;
    times.set(group, new Map());
    for (const v of g.variants) {
      Deno.bench({
        name: v.name,
        group,
        baseline: v === g.variants[0],
        n: v.n,
        warmup: 0,
        ignore: v.threads > 1 && cores < 2,
        async fn(b) {
          await use(v);
          const { run, inputs } = w.setup(v.shrink);
          b.start();
          const t0 = performance.now();
          const outs = tf.tidy(run);
          await Promise.all(outs.map((t) => t.data()));
          const ms = performance.now() - t0;
          b.end();
          tf.dispose([...outs, ...inputs]);
          const list = times.get(group)!.get(v.name) ?? [];
          list.push(ms);
          times.get(group)!.set(v.name, list);
        },
      });
    }
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

globalThis.addEventListener("unload", () => {
  const lines = [
    "",
    "GFLOP/s (matmul work only; median of the timed runs, Deno's warm-up left out):",
  ];
  for (const w of WORKLOADS) {
    for (const g of GROUPS) {
      const group = `${w.name}, ${g.suffix}`;
      lines.push(`  ${group}`);
      for (const v of g.variants) {
        const list = times.get(group)?.get(v.name);
        if (!list?.length) continue;
        const ms = median(list.length > 1 ? list.slice(1) : list);
        const gflops = (w.flops(v.shrink) / ms / 1e6).toFixed(2).padStart(7);
        lines.push(`    ${v.name.padEnd(26)} ${gflops} GFLOP/s ${ms.toFixed(0).padStart(7)} ms`);
      }
    }
  }
  console.error(lines.join("\n"));
});
