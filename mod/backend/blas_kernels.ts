/**
 * TensorFlow.js matmuls on a native BLAS (mod/backend/blas.ts) for the wasm backend: BatchMatMul and
 * _FusedMatMul are re-registered so that sgemm reads the operands where they live, inside the
 * wasm heap, and writes the product straight into a tensor allocated there. Transpose flags go to
 * sgemm as flags (no transposed copies); batch dims broadcast as in TensorFlow; a batched left
 * operand against one right matrix is a single tall sgemm. Everything else (elementwise, softmax)
 * stays on wasm. Optional: without the library, or without --allow-ffi, nothing changes.
 *
 *   await initBackend("wasm");
 *   const s = enableBlas("wasm");   // { enabled: true, library: "/usr/lib/.../libopenblas.so.0" }
 *   // or { enabled: false, reason: "OpenBLAS not found (libopenblas.so.0)" }
 *
 * What is delegated to the kernel registered before (the transpose-first XNNPACK kernel of
 * backend_wasm.ts): non-float32 operands, empty products, shapes tfjs itself rejects (so that
 * its error messages stay), products under `minFlops`, and _FusedMatMul with a bias that is
 * neither a scalar nor a row vector. Fused activations run as the backend's own kernel (Relu,
 * Relu6, Elu, Sigmoid, LeakyRelu, Prelu) on the product.
 *
 * Heap pointers: the heap's base address is read on every call after the output is allocated,
 * because malloc may grow the memory (which detaches a non-shared heap's old views). This works
 * for the single-threaded heap (ArrayBuffer) and the threaded one (SharedArrayBuffer). sgemm
 * blocks the JS thread, and wasm's own threads only run inside wasm calls made from it, so no one
 * else touches the heap during a product.
 *
 * Order: call enableBlas() after initBackend(). backend_wasm.ts's setWasmMatMulFix() re-registers
 * its own kernels over these (benchmarks that toggle it must call enableBlas again).
 *
 * Permissions: --allow-ffi, unscoped (heap pointers need it; --allow-ffi=<library> is not
 * enough); --allow-read to skip missing candidate paths cheaply; --allow-env=RTD_BLAS_LIB to
 * honour that variable (see mod/backend/blas.ts).
 *
 * Shape key (sgemm's names): M rows of the product, N its columns, K the inner width.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type Blas, loadBlas } from "./blas.ts";
import { heapBase, heapBuffer, type WasmBackend } from "./heap.ts";

export interface BlasStatus {
  enabled: boolean;
  /** The library's path, when enabled. */
  library?: string;
  /** OpenBLAS's configuration string ("OpenBLAS 0.3.21 ... Haswell ..."), when enabled. */
  config?: string;
  /** BLAS threads, when the library reports them. */
  threads?: number;
  /** Why it is not enabled. */
  reason?: string;
}

export interface EnableBlasOptions {
  /** OpenBLAS threads (default: the number of cores). */
  threads?: number;
  /** No line on stderr. */
  quiet?: boolean;
  /** Open this library instead of searching (see mod/backend/blas.ts). */
  path?: string;
  /**
   * Products below this many floating-point operations (2·M·N·K summed over the batch) stay on
   * the previous kernel. Default 0: measured on 2 cores, BLAS was not slower at any size.
   */
  minFlops?: number;
}

const KERNELS = ["BatchMatMul", "_FusedMatMul"] as const;
/** tfjs's fused activation name → the kernel that applies it. */
const ACTIVATION_KERNELS: Record<string, string> = {
  relu: "Relu",
  relu6: "Relu6",
  elu: "Elu",
  sigmoid: "Sigmoid",
  leakyrelu: "LeakyRelu",
  prelu: "Prelu",
};

interface Installed {
  previous: Map<string, tf.KernelConfig>;
  ours: Map<string, tf.KernelFunc>;
}

const installed = new Map<string, Installed>();
let state: { blas: Blas; minFlops: number; status: BlasStatus } | null = null;
const counts = { blas: 0, delegated: 0 };

/**
 * Routes `backendName`'s matmuls to the BLAS library when it loads; otherwise changes nothing
 * and returns the reason. Calling it again updates the options. Prints one line on stderr
 * unless `quiet`.
 */
export function enableBlas(backendName: string, opts: EnableBlasOptions = {}): BlasStatus {
  const log = opts.quiet ? () => {} : (line: string) => console.error(`backend: ${line}`);
  const fail = (reason: string): BlasStatus => {
    const where = backendName === "wasm" ? "XNNPACK" : `the ${backendName} backend`;
    log(`${reason}: matmuls stay on ${where}`);
    return { enabled: false, reason };
  };
  if (backendName !== "wasm") return fail(`BLAS kernels exist for wasm only, not "${backendName}"`);
  const threads = opts.threads ?? (navigator.hardwareConcurrency || 1);
  if (!Number.isInteger(threads) || threads < 1) {
    throw new Error(`BLAS thread count ${threads} is not a positive integer`);
  }
  const minFlops = opts.minFlops ?? 0;
  if (!(minFlops >= 0)) throw new Error(`minFlops ${minFlops} is not a non-negative number`);
  const load = loadBlas({ path: opts.path });
  if (!load.blas) return fail(load.reason);
  const blas = load.blas;
  // deno-lint-ignore no-explicit-any
  if (!(tf.engine() as any).registry[backendName]) {
    // Before initBackend, backend_wasm.ts would later wrap these kernels instead of the reverse.
    throw new Error(
      `enableBlas("${backendName}") before the backend started: call initBackend first`,
    );
  }
  for (const name of KERNELS) {
    if (!tf.getKernel(name, backendName)) return fail(`the ${backendName} backend has no ${name}`);
  }
  blas.setThreads(threads);
  install(backendName);
  const status: BlasStatus = {
    enabled: true,
    library: blas.path,
    config: blas.config,
    threads: blas.threads() ?? undefined,
  };
  state = { blas, minFlops, status };
  log(
    `matmuls on ${blas.config.split(" ").slice(0, 2).join(" ")} (${blas.path}, ` +
      `${status.threads ?? "?"} thread${status.threads === 1 ? "" : "s"})`,
  );
  return status;
}

/** Puts back the kernels that enableBlas replaced (where no one has replaced ours since). */
export function disableBlas(): void {
  for (const [backendName, inst] of installed) {
    for (const name of KERNELS) {
      const current = tf.getKernel(name, backendName);
      if (current && current.kernelFunc !== inst.ours.get(name)) continue;
      if (current) tf.unregisterKernel(name, backendName);
      tf.registerKernel(inst.previous.get(name)!);
    }
  }
  installed.clear();
  state = null;
}

/** What enableBlas last set up, or { enabled: false } after disableBlas or before any call. */
export function blasStatus(): BlasStatus {
  return state ? { ...state.status } : { enabled: false, reason: "not enabled" };
}

/** Matmuls run on BLAS and handed to the previous kernel since the start (for tests). */
export function blasCallCounts(): { blas: number; delegated: number } {
  return { ...counts };
}

function install(backendName: string): void {
  const existing = installed.get(backendName);
  const inst: Installed = existing ?? { previous: new Map(), ours: new Map() };
  for (const name of KERNELS) {
    const current = tf.getKernel(name, backendName)!;
    if (current.kernelFunc === inst.ours.get(name)) continue;
    // Someone registered a new kernel over ours (or this is the first call): wrap that one.
    inst.previous.set(name, current);
    const delegate = current.kernelFunc;
    const fused = name === "_FusedMatMul";
    const ours: tf.KernelFunc = (args) => matMulKernel(args, { backendName, delegate, fused });
    inst.ours.set(name, ours);
    tf.unregisterKernel(name, backendName);
    // Keep setupFunc: a re-initialised backend sets the previous kernel up through it.
    tf.registerKernel({ ...current, kernelFunc: ours });
  }
  installed.set(backendName, inst);
}

interface MatMulAttrs {
  transposeA?: boolean;
  transposeB?: boolean;
  activation?: string;
  leakyreluAlpha?: number;
}

/** Broadcast of two batch shapes (TensorFlow's rules), or null where they do not broadcast. */
export function broadcastBatch(a: number[], b: number[]): number[] | null {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) return null;
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** For each output batch index, the flat batch index of an operand of batch shape `dims`. */
export function batchIndices(outDims: number[], dims: number[]): Int32Array {
  const total = outDims.reduce((p, d) => p * d, 1);
  const idx = new Int32Array(total);
  const shift = outDims.length - dims.length;
  for (let o = 0; o < total; o++) {
    let rest = o, flat = 0, stride = 1;
    for (let i = outDims.length - 1; i >= 0; i--) {
      const coord = rest % outDims[i];
      rest = Math.floor(rest / outDims[i]);
      const j = i - shift;
      if (j >= 0) {
        if (dims[j] !== 1) flat += coord * stride;
        stride *= dims[j];
      }
    }
    idx[o] = flat;
  }
  return idx;
}

interface KernelContext {
  backendName: string;
  /** The kernel registered before ours. */
  delegate: tf.KernelFunc;
  fused: boolean;
}

function matMulKernel(
  args: Parameters<tf.KernelFunc>[0],
  { backendName, delegate, fused }: KernelContext,
): tf.TensorInfo | tf.TensorInfo[] {
  const pass = () => {
    counts.delegated++;
    return delegate(args);
  };
  const backend = args.backend as unknown as WasmBackend;
  const { a, b, bias, preluActivationWeights } = args.inputs as Record<string, tf.TensorInfo>;
  const attrs = args.attrs as MatMulAttrs;
  if (state === null || !backend.wasm || !backend.dataIdMap) return pass();
  if (a.dtype !== "float32" || b.dtype !== "float32") return pass();
  const ta = Boolean(attrs.transposeA), tb = Boolean(attrs.transposeB);
  const ra = a.shape.length, rb = b.shape.length;
  if (ra < 2 || rb < 2) return pass();
  const m = ta ? a.shape[ra - 1] : a.shape[ra - 2];
  const k = ta ? a.shape[ra - 2] : a.shape[ra - 1];
  const n = tb ? b.shape[rb - 2] : b.shape[rb - 1];
  if ((tb ? b.shape[rb - 1] : b.shape[rb - 2]) !== k) return pass(); // tfjs's error message
  const batchA = a.shape.slice(0, -2), batchB = b.shape.slice(0, -2);
  const outBatch = broadcastBatch(batchA, batchB);
  if (outBatch === null) return pass();
  const batch = outBatch.reduce((p, d) => p * d, 1);
  if (m * n * k * batch === 0) return pass();
  if (2 * m * n * k * batch < state.minFlops) return pass();

  const activation = fused ? attrs.activation ?? "linear" : "linear";
  let actKernel: tf.KernelFunc | null = null;
  if (activation !== "linear") {
    const name = ACTIVATION_KERNELS[activation];
    const cfg = name ? tf.getKernel(name, backendName) : undefined;
    if (!cfg) return pass();
    actKernel = cfg.kernelFunc;
  }
  const biasSize = fused && bias ? bias.shape.reduce((p, d) => p * d, 1) : 0;
  if (fused && bias) {
    const rowVector = bias.shape.every((d, i) => d === 1 || i === bias.shape.length - 1) &&
      biasSize === n;
    if (bias.dtype !== "float32" || !(biasSize === 1 || rowVector)) return pass();
  }

  const out = backend.makeOutput([...outBatch, m, n], "float32");
  const offA = backend.dataIdMap.get(a.dataId)!.memoryOffset;
  const offB = backend.dataIdMap.get(b.dataId)!.memoryOffset;
  const offC = backend.dataIdMap.get(out.dataId)!.memoryOffset;
  const heap = heapBuffer(backend); // after makeOutput: its malloc may have grown the heap
  const total = batch * m * n;
  const sizeA = m * k, sizeB = k * n;
  const batchSizeA = batchA.reduce((p, d) => p * d, 1);
  const batchSizeB = batchB.reduce((p, d) => p * d, 1);
  for (
    const [what, off, floats] of [
      ["left operand", offA, batchSizeA * sizeA],
      ["right operand", offB, batchSizeB * sizeB],
      ["output", offC, total],
    ] as const
  ) {
    if (off + 4 * floats > heap.byteLength) {
      backend.disposeData(out.dataId);
      throw new Error(
        `BLAS matmul ${what} at ${off} (+${4 * floats} bytes) lies outside the ` +
          `${heap.byteLength}-byte wasm heap`,
      );
    }
  }
  let beta = 0;
  if (fused && bias) {
    // C starts as the bias broadcast over rows; sgemm then adds the product (beta = 1).
    const c = new Float32Array(heap, offC, total);
    const offBias = backend.dataIdMap.get(bias.dataId)!.memoryOffset;
    if (biasSize === 1) {
      c.fill(new Float32Array(heap, offBias, 1)[0]);
    } else {
      c.set(new Float32Array(heap, offBias, n));
      for (let done = n; done < total; done *= 2) {
        c.copyWithin(done, 0, Math.min(done, total - done));
      }
    }
    beta = 1;
  }

  const base = heapBase(heap);
  const at = (off: number) => Deno.UnsafePointer.offset(base!, off);
  const lda = a.shape[ra - 1], ldb = b.shape[rb - 1];
  const gemm = state.blas.sgemmPtr;
  if (batchSizeB === 1 && !ta) {
    // Every left matrix meets the same right one: stack them into one tall product.
    gemm(false, tb, batch * m, n, k, 1, at(offA), lda, at(offB), ldb, beta, at(offC), n);
  } else {
    const ia = batchIndices(outBatch, batchA), ib = batchIndices(outBatch, batchB);
    for (let i = 0; i < batch; i++) {
      gemm(
        ta,
        tb,
        m,
        n,
        k,
        1,
        at(offA + 4 * sizeA * ia[i]),
        lda,
        at(offB + 4 * sizeB * ib[i]),
        ldb,
        beta,
        at(offC + 4 * m * n * i),
        n,
      );
    }
  }
  counts.blas++;
  if (actKernel === null) return out;

  const actInputs: Record<string, tf.TensorInfo> = { x: out };
  if (activation === "prelu") actInputs.alpha = preluActivationWeights;
  try {
    return actKernel({
      inputs: actInputs,
      backend: args.backend,
      attrs: activation === "leakyrelu" ? { alpha: attrs.leakyreluAlpha ?? 0.2 } : {},
    }) as tf.TensorInfo;
  } finally {
    backend.disposeData(out.dataId);
  }
}
