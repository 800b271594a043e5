/**
 * Tests for the native cross-entropy (mod/backend/native/ce.c through
 * mod/transformer/native_ce.ts): its vector exp against Math.exp over the whole float range, and
 * the loss and its gradients (x, W_U, b_U) against plainCrossEntropy and the tfjs fused path on
 * odd shapes (V not a multiple of 8, N not a multiple of the chunk, one row, V below 8), extreme
 * logits, an upstream gradient other than 1, both modes; per-token losses; a level tensor count;
 * an out-of-range target; and a transformer's gradients through lossFn on both kernels.
 *
 * Needs the wasm backend with OpenBLAS and the built library (bash tasks/setup.sh builds both); a
 * machine without them fails here with the reason (kernel: "native" throws), rather than skipping.
 *
 *   deno test --allow-read --allow-env --allow-ffi tests/native_ce_test.ts
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { enableBlas, initBackend, loadNative } from "../mod/backend/mod.ts";
import {
  chunkedTokenLosses,
  createTransformer,
  disposeTransformer,
  type FusedCeOptions,
  fusedCrossEntropy,
  lossFn,
  PARAM_NAMES,
  plainCrossEntropy,
  transformerConfig,
} from "../mod/transformer/mod.ts";
import { Rng } from "../mod/run/mod.ts";
import { values } from "./tensors.ts";
import { assert, assertAllClose, assertEquals, assertLess, assertThrows } from "./assert.ts";

await initBackend("wasm", { threads: 2 });
enableBlas("wasm", { quiet: true });

function native() {
  const r = loadNative();
  if (!r.native) throw new Error(`native library unavailable: ${r.reason}`);
  return r.native;
}

/** The gap between `y` and the next float32 away from zero (for |y| at least the smallest normal). */
function ulp(y: number): number {
  const e = Math.floor(Math.log2(Math.abs(y)));
  return 2 ** (Math.max(e, -126) - 23);
}

Deno.test("native exp is within 2 ulp of Math.exp from -104 to 89, with Inf, 0 and NaN at the ends", () => {
  const n = 2_000_003; // odd: the last call ends in a partial vector
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = -104 + (193 * i) / (n - 1);
  const specials = [0, -0, 1, -1, 88.72, 88.73, 89, 100, -87.3, -103.9, -110, Infinity, -Infinity];
  const xs = Float32Array.from([...x, ...specials, NaN]);
  const y = new Float32Array(xs.length);
  native().symbols.rtd_exp_f32(xs, y, BigInt(xs.length));
  let worst = 0, worstAt = 0;
  for (let i = 0; i < xs.length - 1; i++) {
    const exact = Math.exp(xs[i]), want = Math.fround(exact);
    if (!Number.isFinite(want)) {
      assertEquals(y[i], Infinity, `exp(${xs[i]})`);
      continue;
    }
    const err = Math.abs(y[i] - exact) / ulp(Math.max(want, 2 ** -126));
    if (err > worst) [worst, worstAt] = [err, xs[i]];
  }
  assertLess(worst, 2, `worst error ${worst.toFixed(2)} ulp at x = ${worstAt}`);
  assert(Number.isNaN(y[xs.length - 1]), "exp(NaN) is NaN");
  assertEquals(y[xs.length - 2], 0, "exp(-Inf)");
  assertEquals(y[n], 1, "exp(0)");
});

interface Case {
  n: number;
  d: number;
  v: number;
  rowChunk: number;
  /** Logit scale; with `extreme`, b_U also holds ±500 entries. */
  scale: number;
  extreme?: boolean;
}

function ceInputs(c: Case, seed = 1) {
  const rng = new Rng(seed);
  const b = values(c.v, seed + 2).map((u) => u * c.scale);
  if (c.extreme) { for (let j = 0; j < c.v; j += 3) b[j] = j % 2 ? 500 : -500; }
  return {
    x: tf.tensor2d(values(c.n * c.d, seed).map((u) => u * c.scale), [c.n, c.d]),
    w: tf.tensor2d(values(c.d * c.v, seed + 1), [c.d, c.v]),
    b: tf.tensor1d(b),
    // Rows 0 and 1 share a target (db and dW sum at it); the others are drawn.
    t: tf.tensor1d(
      Array.from({ length: c.n }, (_, i) => (i < 2 ? 1 % c.v : rng.int(c.v))),
      "int32",
    ),
  };
}

/** Loss and gradients of dyScale · CE, with the tensor count checked level. */
function lossAndGrads(
  ce: (x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D) => tf.Scalar,
  inputs: ReturnType<typeof ceInputs>,
  dyScale: number,
): Float32Array[] {
  const before = tf.memory().numTensors;
  const f = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) =>
    tf.mul(ce(x as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D), dyScale) as tf.Scalar;
  const { value, grads } = tf.valueAndGrads(f)([inputs.x, inputs.w, inputs.b]);
  const out = [value, ...grads].map((g) => g.dataSync() as Float32Array);
  tf.dispose([value, ...grads]);
  assertEquals(tf.memory().numTensors, before, "no tensors leak");
  return out;
}

const CASES: [string, Case][] = [
  ["13 rows in chunks of 4, V 37", { n: 13, d: 6, v: 37, rowChunk: 4, scale: 1 }],
  ["one row, V 5 (below one vector)", { n: 1, d: 3, v: 5, rowChunk: 4, scale: 1 }],
  ["21 rows, V 8, one chunk", { n: 21, d: 4, v: 8, rowChunk: 64, scale: 1 }],
  ["large logits, V 203", { n: 17, d: 9, v: 203, rowChunk: 5, scale: 30 }],
  ["extreme logits (b = ±500), V 61", { n: 11, d: 5, v: 61, rowChunk: 3, scale: 1, extreme: true }],
];

for (const [label, c] of CASES) {
  for (const mode of ["store", "recompute"] as const) {
    Deno.test(`native cross-entropy equals plain and tfjs-fused in loss and gradients (${label}, ${mode})`, () => {
      const inputs = ceInputs(c);
      const opts = (kernel: FusedCeOptions["kernel"]): FusedCeOptions => ({
        kernel,
        mode,
        rowChunk: c.rowChunk,
      });
      const dyScale = 2.5; // the gradient must read dy, not assume 1
      const plain = lossAndGrads(
        (x, w, b) => plainCrossEntropy(x, w, b, inputs.t),
        inputs,
        dyScale,
      );
      const tfjs = lossAndGrads(
        (x, w, b) => fusedCrossEntropy(x, w, b, inputs.t, opts("tfjs")),
        inputs,
        dyScale,
      );
      const nat = lossAndGrads(
        (x, w, b) => fusedCrossEntropy(x, w, b, inputs.t, opts("native")),
        inputs,
        dyScale,
      );
      for (const [k, what] of ["loss", "dx", "dW_U", "db_U"].entries()) {
        assert(nat[k].every(Number.isFinite), `${what}: all finite`);
        assertAllClose(nat[k], plain[k], 2e-5, `${what} against plain`);
        assertAllClose(nat[k], tfjs[k], 2e-5, `${what} against tfjs fused`);
      }
      const lossesN = chunkedTokenLosses(inputs.x, inputs.w, inputs.b, inputs.t, opts("native"));
      const tfjsN = chunkedTokenLosses(inputs.x, inputs.w, inputs.b, inputs.t, opts("tfjs"));
      assertAllClose(lossesN.dataSync(), tfjsN.dataSync(), 2e-5, "per-token losses");
      tf.dispose([lossesN, tfjsN, ...Object.values(inputs)]);
    });
  }
}

Deno.test("native cross-entropy rejects a target outside the vocabulary", () => {
  const inputs = ceInputs({ n: 4, d: 3, v: 9, rowChunk: 2, scale: 1 });
  const bad = tf.tensor1d([0, 9, 1, 2], "int32");
  const before = tf.memory().numTensors;
  assertThrows(
    () => fusedCrossEntropy(inputs.x, inputs.w, inputs.b, bad, { kernel: "native" }),
    /outside the vocabulary/,
  );
  assertEquals(tf.memory().numTensors, before, "no tensors leak on the error");
  tf.dispose([bad, ...Object.values(inputs)]);
});

Deno.test("a transformer's gradients through lossFn agree on the native and tfjs kernels", () => {
  const cfg = transformerConfig({ dModel: 8, nHeads: 2, nCtx: 6, dVocab: 45 });
  const model = createTransformer(cfg, { seed: 4, initStd: 0.3 });
  const rng = new Rng(9);
  const tok = tf.tensor2d(Int32Array.from({ length: 18 }, () => rng.int(45)), [3, 6], "int32");
  const vars = PARAM_NAMES.map((n) => model.params[n]);
  const [nat, ref] = (["native", "tfjs"] as const).map((kernel) => {
    const before = tf.memory().numTensors;
    const fused = { kernel, rowChunk: 7 };
    const { value, grads } = tf.variableGrads(() => lossFn(model, tok, { fused }), vars);
    const out = [value, ...vars.map((v) => grads[v.name])].map((t) => t.dataSync());
    tf.dispose([value, ...Object.values(grads)]);
    assertEquals(tf.memory().numTensors, before, `${kernel}: no tensors leak`);
    return out;
  });
  assertAllClose(nat[0], ref[0], 1e-5, "loss");
  PARAM_NAMES.forEach((name, i) => assertAllClose(nat[i + 1], ref[i + 1], 1e-4, name));
  tok.dispose();
  disposeTransformer(model);
});
