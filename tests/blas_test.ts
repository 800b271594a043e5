/**
 * Tests of mod/backend/blas.ts and mod/backend/blas_kernels.ts: sgemm on Float32Arrays against a plain loop, the
 * BLAS BatchMatMul/_FusedMatMul kernels on wasm against the kernels they replace (values and
 * gradients, every transpose combination, odd and batched shapes, broadcasting, bias and
 * activations), on the single-threaded heap (ArrayBuffer) and the threaded one
 * (SharedArrayBuffer), across heap growth, with tensor and buffer counts level; and the reasons
 * given when no library can be used.
 *
 *   deno test --allow-read --allow-env --allow-ffi tests/blas_test.ts
 *
 * Tests that need the library are ignored, with the reason printed once, where it is absent
 * (CI installs libopenblas0-pthread so that they run there).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend, shutdownBackend } from "../mod/backend/mod.ts";
import { wasmDataIds, wasmHeapBytes } from "../mod/backend/mod.ts";
import { loadBlas } from "../mod/backend/mod.ts";
import {
  batchIndices,
  blasCallCounts,
  blasStatus,
  broadcastBatch,
  disableBlas,
  enableBlas,
} from "../mod/backend/mod.ts";
import { assert, assertAllClose, assertEquals, assertMatch, assertThrows } from "./assert.ts";
import { tensor, values } from "./tensors.ts";

const probe = loadBlas();
const ignore = probe.blas === null;
if (ignore) console.error(`blas_test: BLAS tests skipped: ${probe.reason}`);
const QUIET = { quiet: true };
const FFI = Deno.permissions.querySync({ name: "ffi" }).state === "granted";
const NO_FFI = /^no FFI permission \(run with --allow-ffi, without a path list\)$/;

/** Runs `fn` with the BLAS kernels on or off and returns its tensors' data (disposing them). */
function run(blas: boolean, fn: () => tf.Tensor[]): Float32Array[] {
  if (blas) enableBlas("wasm", QUIET);
  else disableBlas();
  const outs = tf.tidy(fn);
  const data = outs.map((t) => t.dataSync() as Float32Array);
  tf.dispose(outs);
  return data;
}

/**
 * BLAS against the previous kernel on `fn` (or on `reference` where given: the wasm kernel
 * refuses some inputs that BLAS takes); also checks that BLAS really ran.
 */
function compare(
  label: string,
  fn: () => tf.Tensor[],
  reference: () => tf.Tensor[] = fn,
  tolerance = 1e-4,
): void {
  const expected = run(false, reference);
  const before = blasCallCounts().blas;
  const got = run(true, fn);
  assert(blasCallCounts().blas > before, `${label}: no product ran on BLAS`);
  assertEquals(got.length, expected.length);
  for (let i = 0; i < got.length; i++) {
    assertAllClose(got[i], expected[i], tolerance, `${label}, output ${i}`);
  }
}

/** A test that needs the library; the BLAS kernels are always switched off after it. */
function blasTest(name: string, fn: () => Promise<void> | void): void {
  Deno.test({
    name,
    ignore,
    async fn() {
      try {
        await fn();
      } finally {
        disableBlas();
      }
    },
  });
}

interface Case {
  aShape: number[];
  bShape: number[];
}

/** [batch.., m, k] @ [batch.., k, n] shapes, before transposes. */
const SHAPES: Case[] = [
  { aShape: [1, 1], bShape: [1, 1] },
  { aShape: [7, 13], bShape: [13, 5] },
  { aShape: [1, 513], bShape: [513, 2049] },
  { aShape: [3, 7, 13], bShape: [3, 13, 5] }, // batched
  { aShape: [4, 7, 13], bShape: [13, 5] }, // one right matrix for a batch
  { aShape: [4, 7, 13], bShape: [1, 13, 5] }, // batch of 1 broadcast on the right
  { aShape: [1, 7, 13], bShape: [4, 13, 5] }, // batch of 1 broadcast on the left
  { aShape: [2, 3, 7, 13], bShape: [3, 13, 5] }, // rank 4 against rank 3
];

function transposed(shape: number[], t: boolean): number[] {
  if (!t) return shape;
  const s = [...shape];
  [s[s.length - 2], s[s.length - 1]] = [s[s.length - 1], s[s.length - 2]];
  return s;
}

function label(c: Case, ta: boolean, tb: boolean): string {
  return `[${transposed(c.aShape, ta)}]${ta ? "^T" : ""} @ [${transposed(c.bShape, tb)}]${
    tb ? "^T" : ""
  }`;
}

/** The product, and the gradients of sum(product * w) for both operands. */
function productAndGrads(c: Case, ta: boolean, tb: boolean): tf.Tensor[] {
  const a = tensor(transposed(c.aShape, ta), 1);
  const b = tensor(transposed(c.bShape, tb), 2);
  const product = tf.matMul(a, b, ta, tb);
  const w = tensor(product.shape, 3);
  const f = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y, ta, tb), w));
  // tfjs does not sum a broadcast operand's gradient over its batch dims (any backend): compare
  // the gradients where the batch shapes are equal.
  const gradsOk = c.aShape.slice(0, -2).join() === c.bShape.slice(0, -2).join();
  return gradsOk ? [product, ...tf.grads(f)([a, b])] : [product];
}

Deno.test("broadcastBatch and batchIndices follow TensorFlow's broadcasting", () => {
  assertEquals(broadcastBatch([], []), []);
  assertEquals(broadcastBatch([4], []), [4]);
  assertEquals(broadcastBatch([1], [4]), [4]);
  assertEquals(broadcastBatch([2, 1], [3]), [2, 3]);
  assertEquals(broadcastBatch([2], [3]), null);
  assertEquals([...batchIndices([2, 3], [2, 1])], [0, 0, 0, 1, 1, 1]);
  assertEquals([...batchIndices([2, 3], [3])], [0, 1, 2, 0, 1, 2]);
  assertEquals([...batchIndices([2, 3], [])], [0, 0, 0, 0, 0, 0]);
  assertEquals([...batchIndices([2, 3], [2, 3])], [0, 1, 2, 3, 4, 5]);
});

Deno.test("loadBlas reports a missing library instead of throwing", () => {
  const r = loadBlas({ path: "/nonexistent/libopenblas.so.0" });
  assertEquals(r.blas, null);
  assertMatch(r.reason!, FFI ? /^cannot load "\/nonexistent\/libopenblas\.so\.0": / : NO_FFI);
});

Deno.test("a search that finds no library says what it looked for", () => {
  const saved = Deno.env.get("RTD_BLAS_LIB");
  try {
    Deno.env.delete("RTD_BLAS_LIB");
    const r = loadBlas({ candidates: ["/nonexistent/libopenblas.so.0"] });
    assertEquals(r.blas, null);
    if (!FFI) assertMatch(r.reason!, NO_FFI);
    else if (Deno.build.os === "linux") {
      assertEquals(r.reason, "OpenBLAS not found (libopenblas.so.0)");
    }
  } finally {
    if (saved !== undefined) Deno.env.set("RTD_BLAS_LIB", saved);
  }
});

Deno.test("RTD_BLAS_LIB pointing nowhere gives enabled: false with the reason", () => {
  const saved = Deno.env.get("RTD_BLAS_LIB");
  try {
    Deno.env.set("RTD_BLAS_LIB", "/nonexistent/libblas-rtd.so");
    const s = enableBlas("wasm", QUIET);
    assertEquals(s.enabled, false);
    assertMatch(
      s.reason!,
      FFI ? /^RTD_BLAS_LIB: cannot load .*\/nonexistent\/libblas-rtd\.so/ : NO_FFI,
    );
    Deno.env.set("RTD_BLAS_LIB", "off");
    const off = enableBlas("wasm", QUIET);
    assertEquals(off.enabled, false);
    assertMatch(off.reason!, FFI ? /^RTD_BLAS_LIB=off$/ : NO_FFI);
    assertEquals(blasStatus().enabled, false);
  } finally {
    if (saved === undefined) Deno.env.delete("RTD_BLAS_LIB");
    else Deno.env.set("RTD_BLAS_LIB", saved);
  }
});

Deno.test("enableBlas prints one line and refuses backends other than wasm", () => {
  const lines: string[] = [];
  const error = console.error;
  console.error = (...args: unknown[]) => lines.push(args.join(" "));
  try {
    const s = enableBlas("cpu", { path: "/nonexistent/x.so" });
    assertEquals(s, { enabled: false, reason: `BLAS kernels exist for wasm only, not "cpu"` });
  } finally {
    console.error = error;
  }
  assertEquals(lines, [
    `backend: BLAS kernels exist for wasm only, not "cpu": matmuls stay on the cpu backend`,
  ]);
});

Deno.test({
  name: "a library without cblas_sgemm is refused with the symbol named",
  ignore: ignore || Deno.build.os !== "linux",
  fn() {
    const libc = ["/lib/x86_64-linux-gnu/libc.so.6", "/lib/aarch64-linux-gnu/libc.so.6"]
      .find((p) => {
        try {
          return Deno.statSync(p).isFile;
        } catch {
          return false;
        }
      });
    if (!libc) return;
    const r = loadBlas({ path: libc });
    assertEquals(r.blas, null);
    assertMatch(r.reason!, /cblas_sgemm/);
  },
});

blasTest("enableBlas before the wasm backend has started throws", () => {
  shutdownBackend();
  assertThrows(() => enableBlas("wasm", QUIET), /before the backend started: call initBackend/);
});

blasTest("sgemm on Float32Arrays equals a plain loop for every transpose combination", () => {
  const blas = probe.blas!;
  const [m, n, k] = [5, 3, 4];
  const a = values(m * k, 1), b = values(k * n, 2);
  for (const ta of [false, true]) {
    for (const tb of [false, true]) {
      // A stored [m,k] or, transposed, [k,m]; B [k,n] or [n,k].
      const aS = ta ? transpose(a, m, k) : a, bS = tb ? transpose(b, k, n) : b;
      const c = new Float32Array(m * n).fill(1);
      blas.sgemm(ta, tb, m, n, k, 2, aS, ta ? m : k, bS, tb ? k : n, 0.5, c, n);
      const want = new Float32Array(m * n);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j];
          want[i * n + j] = 2 * s + 0.5;
        }
      }
      assertAllClose(c, want, 1e-6, `transposeA ${ta}, transposeB ${tb}`);
    }
  }
  const c = new Float32Array(4);
  blas.sgemm(false, false, 2, 2, 0, 1, new Float32Array(0), 1, new Float32Array(0), 2, 0, c, 2);
  assertEquals([...c], [0, 0, 0, 0]);
  assertThrows(
    () => blas.sgemm(false, false, 2, 2, 2, 1, new Float32Array(3), 2, b, 2, 0, c, 2),
    /sgemm A holds 3 floats; \[2,2\] with stride 2 needs 4/,
  );
  assertThrows(
    () => blas.sgemm(false, false, 2, 2, 2, 1, a, 1, b, 2, 0, c, 2),
    /leading dimension of A 1 is below its 2 columns/,
  );
});

function applyActivation(y: tf.Tensor, activation: string, alpha?: tf.Tensor): tf.Tensor {
  switch (activation) {
    case "linear":
      return y;
    case "relu":
      return tf.relu(y);
    case "relu6":
      return tf.relu6(y);
    case "elu":
      return tf.elu(y);
    case "sigmoid":
      return tf.sigmoid(y);
    case "leakyrelu":
      return tf.leakyRelu(y, 0.3);
    case "prelu":
      return tf.prelu(y, alpha!);
  }
  throw new Error(`Unknown activation "${activation}"`);
}

function transpose(x: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = x[i * cols + j];
  return out;
}

blasTest("BLAS matmuls and their gradients equal the wasm kernels they replace", async () => {
  await initBackend("wasm", { quiet: true, threads: 1 });
  for (const c of SHAPES) {
    for (const ta of [false, true]) {
      for (const tb of [false, true]) {
        compare(label(c, ta, tb), () => productAndGrads(c, ta, tb));
      }
    }
  }
});

blasTest("BLAS fused matmul equals the wasm kernel with bias and each activation", async () => {
  await initBackend("wasm", { quiet: true, threads: 1 });
  const activations = ["linear", "relu", "relu6", "elu", "sigmoid", "leakyrelu", "prelu"];
  // wasm's own kernel takes rank-1 biases only: the others are checked against unfused ops.
  const biases: (number[] | null)[] = [null, [5], [1, 5], []];
  for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
    for (const activation of activations) {
      for (const biasShape of biases) {
        const name = `fused [7,13]${ta ? "^T" : ""}@[13,5]${tb ? "^T" : ""}, ` +
          `bias ${biasShape ? `[${biasShape}]` : "none"}, ${activation}`;
        const inputs = () => ({
          a: tensor(transposed([7, 13], ta), 1) as tf.Tensor2D,
          b: tensor(transposed([13, 5], tb), 2) as tf.Tensor2D,
          bias: biasShape ? tensor(biasShape, 4) : undefined,
          alpha: activation === "prelu" ? tensor([5], 5) : undefined,
        });
        const fused = () => {
          const { a, b, bias, alpha } = inputs();
          const y = tf.fused.matMul({
            a,
            b,
            transposeA: ta,
            transposeB: tb,
            bias,
            activation: activation as tf.fused.Activation,
            preluActivationWeights: alpha,
            leakyreluAlpha: 0.3,
          });
          return [y];
        };
        const unfused = () => {
          const { a, b, bias, alpha } = inputs();
          const y = tf.matMul(a, b, ta, tb);
          return [applyActivation(bias ? tf.add(y, bias) : y, activation, alpha)];
        };
        compare(name, fused, biasShape && biasShape.length !== 1 ? unfused : fused);
      }
    }
  }
  // The SAE encoder's shape, and its gradients through bias + relu (unfused under tf.grads).
  compare("SAE encoder [64,512]@[512,300] + b, relu, with gradients", () => {
    const x = tensor([64, 512], 1), w = tensor([512, 300], 2), b = tensor([300], 3);
    const f = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) =>
      tf.sum(
        tf.fused.matMul({
          a: x as tf.Tensor2D,
          b: w as tf.Tensor2D,
          bias: b,
          activation: "relu",
        }),
      );
    return [
      tf.fused.matMul({ a: x as tf.Tensor2D, b: w as tf.Tensor2D, bias: b, activation: "relu" }),
      ...tf.grads(f)([x, w, b]),
    ];
  });
});

blasTest(
  "repeated BLAS matmuls, fused ones and gradients leave tensor and buffer counts level",
  async () => {
    await initBackend("wasm", { quiet: true, threads: 1 });
    enableBlas("wasm", QUIET);
    const a = tensor([66, 17], 1), b = tensor([17, 9], 2), bias = tensor([9], 3);
    const step = () =>
      tf.tidy(() => {
        const f = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.matMul(x, y, true, true));
        const [ga, gb] = tf.grads(f)([tf.transpose(a), tf.transpose(b)]);
        const y = tf.fused.matMul({
          a: a as tf.Tensor2D,
          b: b as tf.Tensor2D,
          bias,
          activation: "relu",
        });
        return tf.addN([tf.sum(ga), tf.sum(gb), tf.sum(y)]);
      }).dispose();
    step();
    const tensors = tf.memory().numTensors, buffers = wasmDataIds();
    for (let i = 0; i < 5; i++) step();
    assertEquals(tf.memory().numTensors, tensors);
    assertEquals(wasmDataIds(), buffers);
    tf.dispose([a, b, bias]);
  },
);

blasTest("a BLAS product whose output grows the wasm heap is still right", async () => {
  await initBackend("wasm", { quiet: true, threads: 1 });
  compare("warm-up", () => [tf.matMul(tensor([8, 8], 1), tensor([8, 8], 2))]);
  const heap = wasmHeapBytes()!;
  // An output bigger than the whole heap forces malloc to grow it inside makeOutput.
  const rows = Math.ceil((heap + (8 << 20)) / 4 / 1024);
  if (rows > 200_000) {
    console.error(`blas_test: heap already ${heap} bytes, growth not tested`);
    return;
  }
  enableBlas("wasm", QUIET);
  const a = tensor([rows, 3], 1), b = tensor([3, 1024], 2);
  const y = tf.matMul(a, b);
  assert(wasmHeapBytes()! > heap, "the heap grew");
  const got = y.dataSync(), av = a.dataSync(), bv = b.dataSync();
  for (const i of [0, 1, rows >> 1, rows - 1]) {
    for (const j of [0, 511, 1023]) {
      const want = av[i * 3] * bv[j] + av[i * 3 + 1] * bv[1024 + j] +
        av[i * 3 + 2] * bv[2048 + j];
      assertAllClose([got[i * 1024 + j]], [want], 1e-5, `row ${i}, column ${j}`);
    }
  }
  tf.dispose([a, b, y]);
});

blasTest(
  "BLAS kernels work on the threaded wasm heap (SharedArrayBuffer) and survive re-init",
  async () => {
    await initBackend("wasm", { quiet: true, threads: 1 });
    enableBlas("wasm", QUIET);
    // Re-initialising wasm with another thread count keeps the registered kernels.
    await initBackend("wasm", { quiet: true, threads: 2 });
    const backend = tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } };
    assert(backend.wasm.HEAPU8.buffer instanceof SharedArrayBuffer, "the threaded heap is shared");
    const before = blasCallCounts().blas;
    tf.tidy(() => tf.matMul(tensor([3, 4], 1), tensor([4, 2], 2)).dataSync());
    assertEquals(blasCallCounts().blas, before + 1, "enableBlas survived the re-init");
    for (const c of [SHAPES[2], SHAPES[4], SHAPES[6]]) {
      compare(`threaded ${label(c, true, false)}`, () => productAndGrads(c, true, false));
    }
    shutdownBackend();
  },
);

blasTest(
  "disableBlas puts the previous kernels back and enableBlas reports the library",
  async () => {
    await initBackend("wasm", { quiet: true, threads: 1 });
    disableBlas(); // initBackend enables BLAS where it loads: start from the XNNPACK kernels
    const previous = tf.getKernel("BatchMatMul", "wasm")!.kernelFunc;
    const s = enableBlas("wasm", { quiet: true, threads: 1 });
    assertEquals(s.enabled, true);
    assertEquals(s.library, probe.blas!.path);
    if (probe.blas!.openblas) assertEquals(s.threads, 1);
    assert(tf.getKernel("BatchMatMul", "wasm")!.kernelFunc !== previous, "ours is registered");
    enableBlas("wasm", QUIET); // twice: still one layer over the previous kernel
    disableBlas();
    assert(tf.getKernel("BatchMatMul", "wasm")!.kernelFunc === previous, "the previous is back");
    assertEquals(blasStatus().enabled, false);
  },
);
