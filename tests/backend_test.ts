/**
 * Tests of mod/backend/init.ts: choosing a backend (by name, by TFJS_BACKEND, auto), the fixed wasm
 * matmul against the cpu backend (values and gradients, every transpose combination), memory
 * staying level, wasm threads, and the WebGPU size guard (unit-tested on fake limits; on a live
 * adapter where one exists, else skipped with the reason printed).
 *
 *   deno test --allow-read --allow-env tests/backend_test.ts
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  backendName,
  checkTensorFits,
  initBackend,
  memoryReport,
  nodeImportReason,
  shutdownBackend,
} from "../mod/backend/mod.ts";
import { wasmDataIds, wasmMatMulFixEnabled } from "../mod/backend/mod.ts";
import { wasmWorkerCount } from "../mod/backend/mod.ts";
import { isSoftwareAdapter, probeWebGPU, webgpuErrors } from "../mod/backend/mod.ts";
import {
  assert,
  assertAllClose,
  assertEquals,
  assertLess,
  assertMatch,
  assertRejects,
  assertThrows,
} from "./assert.ts";
import { tensor } from "./tensors.ts";

const QUIET = { quiet: true, threads: 1 };

interface MatMulCase {
  label: string;
  aShape: number[];
  bShape: number[];
  transposeA: boolean;
  transposeB: boolean;
  /** Batch dims broadcast: tfjs's BatchMatMul gradient does not reduce them (any backend). */
  broadcast: boolean;
}

/** Every transpose combination for m x k @ k x n, unbatched, batched and batch-broadcast. */
function cases(): MatMulCase[] {
  const out: MatMulCase[] = [];
  const [m, k, n] = [7, 13, 5];
  for (const batch of [[], [3], [2, 3]]) {
    for (const transposeA of [false, true]) {
      for (const transposeB of [false, true]) {
        const aShape = [...batch, ...(transposeA ? [k, m] : [m, k])];
        // The batch-broadcast case: a rank-2 right operand against a batched left one.
        const bBatch = batch.length === 2 ? [] : batch;
        const bShape = [...bBatch, ...(transposeB ? [n, k] : [k, n])];
        out.push({
          label: `[${aShape}]${transposeA ? "^T" : ""} @ [${bShape}]${transposeB ? "^T" : ""}`,
          aShape,
          bShape,
          transposeA,
          transposeB,
          broadcast: bBatch.length !== batch.length,
        });
      }
    }
  }
  return out;
}

/**
 * The product and (unless batch dims broadcast) the gradients of sum(product * w) with respect to
 * both operands. Reads with data(): dataSync() cannot read WebGPU tensors under Deno.
 */
async function productAndGrads(c: MatMulCase): Promise<Float32Array[]> {
  const outs = tf.tidy(() => {
    const a = tensor(c.aShape, 1);
    const b = tensor(c.bShape, 2);
    const product = tf.matMul(a, b, c.transposeA, c.transposeB);
    if (c.broadcast) return [product];
    const w = tensor(product.shape, 3);
    const f = (x: tf.Tensor, y: tf.Tensor) =>
      tf.sum(tf.mul(tf.matMul(x, y, c.transposeA, c.transposeB), w));
    return [product, ...tf.grads(f)([a, b])];
  });
  const data = await Promise.all(outs.map((t) => t.data() as Promise<Float32Array>));
  tf.dispose(outs);
  return data;
}

Deno.test("initBackend('cpu') makes cpu the active backend", async () => {
  const info = await initBackend("cpu", QUIET);
  assertEquals(info.name, "cpu");
  assertEquals(tf.getBackend(), "cpu");
  assertEquals(backendName(), "cpu");
  assertEquals(info.skipped, []);
});

Deno.test("initBackend('wasm') loads wasm from node_modules with the matmul fix", async () => {
  const info = await initBackend("wasm", QUIET);
  assertEquals(info.name, "wasm");
  assertEquals(tf.getBackend(), "wasm");
  assertEquals(info.threads, 1);
  assertEquals(info.simd, true);
  assert(wasmMatMulFixEnabled(), "the transpose-first matmul kernels are registered");
  const sum = tf.sum(tf.tensor([1, 2, 3.5]));
  assertEquals(sum.dataSync()[0], 6.5);
  sum.dispose();
});

Deno.test('initBackend() with no choice or "auto" follows TFJS_BACKEND', async () => {
  const saved = Deno.env.get("TFJS_BACKEND");
  try {
    Deno.env.set("TFJS_BACKEND", "cpu");
    assertEquals((await initBackend(undefined, QUIET)).name, "cpu");
    assertEquals(tf.getBackend(), "cpu");
    Deno.env.set("TFJS_BACKEND", "wasm");
    assertEquals((await initBackend(undefined, QUIET)).name, "wasm");
    assertEquals(tf.getBackend(), "wasm");
    // "auto", the presets' value, defers to the variable; a named backend wins over it.
    Deno.env.set("TFJS_BACKEND", "cpu");
    assertEquals((await initBackend("auto", QUIET)).name, "cpu");
    assertEquals((await initBackend("wasm", QUIET)).name, "wasm");
    Deno.env.set("TFJS_BACKEND", "tpu");
    await assertRejects(() => initBackend(undefined, QUIET), /Unknown backend "tpu"/);
  } finally {
    if (saved === undefined) Deno.env.delete("TFJS_BACKEND");
    else Deno.env.set("TFJS_BACKEND", saved);
  }
});

Deno.test("initBackend rejects an unknown name with the list of choices", async () => {
  await assertRejects(
    () => initBackend("foo"),
    /^Error: Unknown backend "foo": expected one of auto, node-gpu, node, webgpu, wasm, cpu$/,
  );
});

Deno.test("initBackend rejects a thread count outside 1 to 8 before trying anything", async () => {
  for (const threads of [0, 1.5, 9]) {
    await assertRejects(
      () => initBackend("auto", { threads, quiet: true }),
      new RegExp(`^Error: Thread count ${threads} is not an integer from 1 to 8$`),
    );
  }
});

Deno.test("initBackend twice with the same choice is a no-op", async () => {
  const first = await initBackend("wasm", QUIET);
  const instance = tf.backend();
  const second = await initBackend("wasm", QUIET);
  assert(first === second, "the same info object comes back");
  assert(tf.backend() === instance, "the backend instance is untouched");
});

Deno.test("initBackend('auto') tries tfjs-node first and says why it skipped it", async () => {
  const lines: string[] = [];
  const error = console.error;
  console.error = (...args: unknown[]) => lines.push(args.join(" "));
  let info;
  try {
    info = await initBackend("auto", { threads: 1 });
  } finally {
    console.error = error;
  }
  const ours = lines.filter((l) => l.startsWith("backend: "));
  assertEquals(ours.length, info.skipped.length + 1, ours.join("\n"));
  assertEquals(
    ours[0],
    "backend: skipped node-gpu (@tensorflow/tfjs-node-gpu is not installed: its install " +
      "downloads libtensorflow, see README)",
  );
  assertMatch(ours.at(-1)!, /^backend: (webgpu|wasm) \(/);
  assert(["webgpu", "wasm"].includes(info.name), `auto chose ${info.name}`);
  assertEquals(info.skipped.slice(0, 2).map((s) => s.name), ["node-gpu", "node"]);
  for (const s of info.skipped) assert(s.reason.length > 0, `${s.name} has a reason`);
  assertMatch(info.skipped[0].reason, /@tensorflow\/tfjs-node-gpu/);
  await initBackend("wasm", QUIET);
});

Deno.test("nodeImportReason turns a frozen-lockfile failure into one line", () => {
  const e = new TypeError(
    "The lockfile is out of date. Run `deno install --frozen=false`\nchanges:\n + tfjs-node",
  );
  assertEquals(
    nodeImportReason("@tensorflow/tfjs-node", e),
    "@tensorflow/tfjs-node is not installed: its install downloads libtensorflow, see README",
  );
  assertEquals(
    nodeImportReason("@tensorflow/tfjs-node", new Error("boom\nstack")),
    "@tensorflow/tfjs-node failed to load: boom",
  );
});

Deno.test("wasm matmul and its gradients equal cpu's for every transpose combination", async () => {
  const all = cases();
  await initBackend("cpu", QUIET);
  const expected: Float32Array[][] = [];
  for (const c of all) expected.push(await productAndGrads(c));
  await initBackend("wasm", QUIET);
  for (const [i, c] of all.entries()) {
    const got = await productAndGrads(c);
    assertEquals(got.length, c.broadcast ? 1 : 3);
    got.forEach((values, j) => {
      assertAllClose(
        values,
        expected[i][j],
        1e-4,
        `${c.label} ${["product", "grad a", "grad b"][j]}`,
      );
    });
  }
});

Deno.test("wasm fused matmul (bias + relu) with transposes equals cpu's", async () => {
  const run = () =>
    [false, true].flatMap((ta) =>
      [false, true].map((tb) =>
        tf.tidy(() =>
          tf.fused.matMul({
            a: tensor(ta ? [13, 7] : [7, 13], 8),
            b: tensor(tb ? [5, 13] : [13, 5], 9),
            transposeA: ta,
            transposeB: tb,
            bias: tensor([5], 10),
            activation: "relu",
          })
        )
      )
    );
  await initBackend("cpu", QUIET);
  const expected = run();
  const want = expected.map((t) => t.dataSync() as Float32Array);
  await initBackend("wasm", QUIET);
  const got = run();
  got.forEach((t, i) => assertAllClose(t.dataSync() as Float32Array, want[i], 1e-4, `case ${i}`));
  assert(want.some((v) => v.some((x) => x === 0)) && want.some((v) => v.some((x) => x > 0)));
  tf.dispose([...expected, ...got]);
});

Deno.test("a transposed wasm matmul runs about as fast as a plain one", async () => {
  await initBackend("wasm", QUIET);
  const a = tensor([512, 512], 4);
  const b = tensor([512, 512], 5);
  const best = (ta: boolean, tb: boolean) => {
    let min = Infinity;
    for (let i = 0; i < 4; i++) {
      const t0 = performance.now();
      const c = tf.matMul(a, b, ta, tb);
      c.dataSync(); // outside any tidy: tidy would walk a returned typed array element by element
      c.dispose();
      min = Math.min(min, performance.now() - t0);
    }
    return min;
  };
  const plain = best(false, false);
  // As shipped, the transposed variants are 8-25x slower (a scalar loop); fixed, about 1-1.5x.
  for (const [ta, tb] of [[true, false], [false, true], [true, true]]) {
    assertLess(best(ta, tb), 4 * plain + 5, `transposeA=${ta} transposeB=${tb}, plain ${plain} ms`);
  }
  tf.dispose([a, b]);
});

Deno.test("repeated wasm matmul gradients leave the tensor and buffer counts level", async () => {
  await initBackend("wasm", QUIET);
  const a = tensor([64, 32], 6);
  const b = tensor([48, 32], 7);
  const step = () =>
    tf.tidy(() => {
      const f = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.relu(tf.matMul(x, y, false, true)));
      const [ga, gb] = tf.grads(f)([a, b]);
      return tf.add(tf.sum(ga), tf.sum(gb)).dataSync()[0];
    });
  step();
  const tensors = tf.memory().numTensors;
  const buffers = wasmDataIds();
  for (let i = 0; i < 20; i++) step();
  assertEquals(tf.memory().numTensors, tensors);
  // Buffers made inside the kernels (the transposed operands) are invisible to tf.memory().
  assertEquals(wasmDataIds(), buffers);
  assertMatch(memoryReport().text, /^wasm: \d+ tensors, .* MiB, wasm heap .* MiB/);
  tf.dispose([a, b]);
});

Deno.test("wasm with 2 threads starts them and matches cpu", async () => {
  await initBackend("cpu", QUIET);
  const c = cases()[7]; // batched, both transposed
  const expected = await productAndGrads(c);
  const info = await initBackend("wasm", { quiet: true, threads: 2 });
  assertEquals(info.threads, 2);
  // XNNPACK's pool: the main thread plus one worker (the other 7 pre-spawned ones stay empty).
  assertEquals(wasmWorkerCount(), 1);
  const got = await productAndGrads(c);
  for (let j = 0; j < 3; j++) assertAllClose(got[j], expected[j], 1e-4, c.label);
  shutdownBackend();
  assertEquals(wasmWorkerCount(), 0);
  assertEquals(backendName(), "none");
});

Deno.test({
  name: "a process that used wasm threads exits by itself",
  ignore: Deno.permissions.querySync({ name: "run" }).state !== "granted",
  async fn() {
    const backend = new URL("../mod/backend/init.ts", import.meta.url).href;
    const script = `const { initBackend } = await import("${backend}");
      const tf = await import("@tensorflow/tfjs");
      const info = await initBackend("wasm", { threads: 2, quiet: true });
      const a = tf.ones([256, 256]);
      console.log(info.threads, tf.matMul(a, a, true, false).dataSync()[0]);`;
    const config = new URL("../deno.json", import.meta.url).pathname;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["eval", "--config", config, script],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    const out = await child.output();
    clearTimeout(timer);
    const text = new TextDecoder().decode(out.stdout).trim();
    assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
    assertEquals(text, "2 256");
  },
});

Deno.test("checkTensorFits throws past the adapter's binding and buffer limits", () => {
  const limits = { maxStorageBufferBindingSize: 134_217_728, maxBufferSize: 268_435_456 };
  checkTensorFits([8192, 4096], "float32", limits); // exactly 128 MiB
  assertThrows(
    () => checkTensorFits([50_331_648], "float32", limits),
    /^Error: Tensor of 201,326,592 bytes exceeds this WebGPU adapter's maxStorageBufferBindingSize of 134,217,728 bytes \(shape \[50331648\], float32\)$/,
  );
  assertThrows(
    () => checkTensorFits([4097, 8192], "complex64", limits),
    /Tensor of 268,500,992 bytes exceeds .* maxStorageBufferBindingSize/,
  );
  const wideBinding = { maxStorageBufferBindingSize: 2 ** 31, maxBufferSize: 2 ** 28 };
  assertThrows(
    () => checkTensorFits([2 ** 27], "int32", wideBinding),
    /exceeds this WebGPU adapter's maxBufferSize of 268,435,456 bytes/,
  );
  checkTensorFits([2 ** 40], "float32", null); // no limits: nothing to check
});

Deno.test("isSoftwareAdapter tells CPU rasterisers from GPUs", () => {
  assert(isSoftwareAdapter({ description: "llvmpipe (LLVM 15.0.6, 256 bits)" }));
  assert(isSoftwareAdapter({ description: "SwiftShader Device (Subzero)" }));
  assert(isSoftwareAdapter({ description: "", vendor: "mesa", isFallbackAdapter: true }));
  assert(!isSoftwareAdapter({ description: "NVIDIA H100 80GB HBM3", vendor: "nvidia" }));
});

Deno.test("on a live WebGPU adapter, oversized tensors and device errors throw", async (t) => {
  const probe = await probeWebGPU();
  if (!probe.adapter) {
    console.error(`skipped: ${probe.reason}`);
    return;
  }
  const c = cases()[3];
  await initBackend("cpu", QUIET);
  const expected = await productAndGrads(c);
  const info = await initBackend("webgpu", QUIET);
  assertEquals(info.name, "webgpu");
  const device = (tf.backend() as unknown as { device: GPUDevice }).device;
  await t.step("matmul and its gradients match cpu", async () => {
    const got = await productAndGrads(c);
    for (let j = 0; j < 3; j++) assertAllClose(got[j], expected[j], 1e-4, c.label);
  });
  await t.step("an oversized tensor throws instead of reading as zeros", () => {
    const tensors = tf.memory().numTensors;
    const n = Math.floor(device.limits.maxStorageBufferBindingSize / 4) + 1;
    assertThrows(() => tf.ones([n]), /exceeds this WebGPU adapter's maxStorageBufferBindingSize/);
    const half = tf.ones([Math.floor(n / 2)]);
    assertThrows(
      () => tf.tidy(() => tf.concat([half, half, tf.ones([2])])),
      /exceeds this WebGPU adapter's maxStorageBufferBindingSize/,
    );
    tf.dispose(half);
    assertEquals(tf.memory().numTensors, tensors);
  });
  await t.step("a device error makes the next read reject", async () => {
    const before = webgpuErrors().length;
    device.createBuffer({ size: 4, usage: 0 }); // invalid usage: a validation error
    for (let i = 0; i < 100 && webgpuErrors().length === before; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert(webgpuErrors().length > before, "the uncapturederror event arrived");
    const x = tf.add(tf.scalar(1), tf.scalar(2));
    await assertRejects(() => x.data(), /WebGPU reported 1 error/);
    x.dispose();
  });
  shutdownBackend();
});
