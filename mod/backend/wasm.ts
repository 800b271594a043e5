/**
 * The tfjs wasm backend, loaded so that it works well under Deno:
 *
 * - its .wasm binaries are read from the project's node_modules (setWasmPaths with a file: URL and
 *   the platform fetch; reading them needs --allow-read on node_modules);
 * - it is loaded from the package's ESM build, with `process` hidden while it initialises, so that
 *   the Emscripten runtime does not take its CommonJS-only Node path;
 * - threads > 1 loads the threaded SIMD binary and starts real threads (backend_wasm_threads.ts);
 *   threads = 1 loads the single-threaded SIMD binary, which starts no workers at all;
 * - BatchMatMul and _FusedMatMul are re-registered so that a transposed operand is first
 *   transposed by the (fast) Transpose kernel and the product then runs on XNNPACK's
 *   non-transposed path. As shipped, any transpose flag falls into a scalar loop (about 1 GFLOP/s
 *   against 25-40), and every matmul gradient sets one.
 *
 * Re-initialising with another thread count replaces the backend: tensors held on the old one
 * become invalid. Import the wasm backend only through this module (importing the package
 * elsewhere registers a second copy of every kernel).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
// @ts-types="@tensorflow/tfjs-backend-wasm/dist/index.d.ts"
import * as wasmPkg from "@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.fesm.js";
import { wasmWorkerCount, withThreadedInit } from "./wasm_threads.ts";
import { errorText } from "../io/mod.ts";

/** Where the binaries live, relative to this file (mod/backend/ is two levels below node_modules/). */
export const WASM_DIST_URL = new URL(
  "../../node_modules/@tensorflow/tfjs-backend-wasm/dist/",
  import.meta.url,
);
const WASM_FILES = [
  "tfjs-backend-wasm.wasm",
  "tfjs-backend-wasm-simd.wasm",
  "tfjs-backend-wasm-threaded-simd.wasm",
];
/** Emscripten pre-spawns 8 workers; more would need Workers created after initialisation. */
export const MAX_WASM_THREADS = 8;

export interface WasmInfo {
  threads: number;
  simd: boolean;
  workers: number;
}

/** The parts of tfjs-backend-wasm's BackendWasm that this project reads. */
interface WasmBackendLike {
  wasm: { HEAPU8: Uint8Array } | null;
  disposeData(dataId: object): boolean;
  numDataIds(): number;
}

interface FactoryEntry {
  factory: () => tf.KernelBackend | Promise<tf.KernelBackend>;
  priority: number;
}

let loadedThreads = 0;
const shippedKernels = new Map<string, tf.KernelConfig>();
let matMulFixed = false;

interface EngineInternals {
  registry: Record<string, tf.KernelBackend | undefined>;
  registryFactory: Record<string, FactoryEntry | undefined>;
}
// deno-lint-ignore no-explicit-any
const engineInternals = () => tf.engine() as any as EngineInternals;

/**
 * The package registers its factory on import (priority 2, above cpu); left there, the first op
 * run before any setBackend would initialise it the shipped way (and fail under Deno). Keep it
 * here instead and register an initialised instance only when asked.
 */
const shippedFactory: FactoryEntry = (() => {
  const entry = engineInternals().registryFactory["wasm"];
  if (!entry) throw new Error("The tfjs wasm backend did not register itself");
  tf.removeBackend("wasm");
  return { factory: entry.factory, priority: entry.priority };
})();

/** The live wasm backend instance, if one was initialised (never triggers initialisation). */
function wasmInstance(): WasmBackendLike | null {
  const b = engineInternals().registry["wasm"];
  return b ? b as unknown as WasmBackendLike : null;
}

/** Throws a clear error when the binaries are missing or unreadable (fetch would crash later). */
function checkBinaries(): void {
  for (const name of WASM_FILES) {
    const url = new URL(name, WASM_DIST_URL);
    const state = Deno.permissions.querySync({ name: "read", path: url }).state;
    if (state !== "granted") {
      throw new Error(
        `Cannot read the wasm binary "${url.pathname}": run with --allow-read (node_modules at least)`,
      );
    }
    try {
      Deno.statSync(url);
    } catch {
      throw new Error(
        `Cannot find the wasm binary "${url.pathname}": run \`deno install\` to populate node_modules`,
      );
    }
  }
}

async function withProcessHidden<T>(fn: () => Promise<T>): Promise<T> {
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  const saved = g.process;
  delete g.process;
  try {
    return await fn();
  } finally {
    g.process = saved;
  }
}

/**
 * Makes wasm the active backend with `threads` threads (1 to 8), loading it if needed. Returns
 * the thread count the runtime reports, which can be lower than asked where threads cannot start.
 */
export async function initWasm(threads: number): Promise<WasmInfo> {
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_WASM_THREADS) {
    throw new Error(`Wasm thread count ${threads} is not an integer from 1 to ${MAX_WASM_THREADS}`);
  }
  const simd = Boolean(await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT"));
  if (loadedThreads === threads && wasmInstance() !== null) {
    if (tf.getBackend() !== "wasm") await tf.setBackend("wasm");
    return { threads: wasmPkg.getThreadsCount(), simd, workers: wasmWorkerCount() };
  }
  checkBinaries();
  shutdownWasm(); // another thread count: the old instance and its threads go
  wasmPkg.setWasmPaths(WASM_DIST_URL.href, true);
  wasmPkg.setThreadsCount(threads);
  tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", threads > 1);

  // Run the factory ourselves: tf.setBackend would swallow the error and print a stack.
  const make = shippedFactory.factory;
  let instance: tf.KernelBackend;
  try {
    instance = threads > 1
      ? await withThreadedInit(threads, async () => await make())
      : await withProcessHidden(async () => await make());
  } catch (e) {
    throw new Error(`Cannot initialise the wasm backend: ${errorText(e)}`);
  }
  tf.registerBackend("wasm", () => instance, shippedFactory.priority);
  if (!(await tf.setBackend("wasm"))) throw new Error("Cannot activate the wasm backend");
  loadedThreads = threads;
  setWasmMatMulFix(true);
  return { threads: wasmPkg.getThreadsCount(), simd, workers: wasmWorkerCount() };
}

/**
 * Turns the transpose-first BatchMatMul/_FusedMatMul kernels on (default) or off (the kernels as
 * shipped, for benchmarks).
 */
export function setWasmMatMulFix(enabled: boolean): void {
  if (enabled === matMulFixed) return;
  for (const name of ["BatchMatMul", "_FusedMatMul"]) {
    let shipped = shippedKernels.get(name);
    if (shipped === undefined) {
      shipped = tf.getKernel(name, "wasm");
      if (shipped === undefined) throw new Error(`The wasm backend has no "${name}" kernel`);
      shippedKernels.set(name, shipped);
    }
    tf.unregisterKernel(name, "wasm");
    tf.registerKernel(
      enabled ? { ...shipped, kernelFunc: transposeFirst(shipped.kernelFunc) } : shipped,
    );
  }
  matMulFixed = enabled;
}

/** Whether the transpose-first matmul kernels are registered. */
export function wasmMatMulFixEnabled(): boolean {
  return matMulFixed;
}

/** Wraps a matmul kernel: transposed operands are materialised first, then the flags cleared. */
function transposeFirst(kernelFunc: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const attrs = args.attrs as { transposeA?: boolean; transposeB?: boolean };
    if (!attrs.transposeA && !attrs.transposeB) return kernelFunc(args);
    const backend = args.backend as unknown as WasmBackendLike;
    const transpose = tf.getKernel("Transpose", "wasm")!.kernelFunc;
    const temps: tf.TensorInfo[] = [];
    const swapLastTwo = (x: tf.TensorInfo): tf.TensorInfo => {
      const perm = x.shape.map((_, i) => i);
      const r = perm.length;
      [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
      const out = transpose({ inputs: { x }, backend: args.backend, attrs: { perm } });
      temps.push(out as tf.TensorInfo);
      return out as tf.TensorInfo;
    };
    const inputs = { ...args.inputs } as Record<string, tf.TensorInfo>;
    if (attrs.transposeA) inputs.a = swapLastTwo(inputs.a);
    if (attrs.transposeB) inputs.b = swapLastTwo(inputs.b);
    try {
      return kernelFunc({
        inputs,
        backend: args.backend,
        attrs: { ...args.attrs, transposeA: false, transposeB: false },
      });
    } finally {
      for (const t of temps) backend.disposeData(t.dataId);
    }
  };
}

/** Bytes of the wasm heap (it grows to at most 4 GiB and never shrinks), or null when not wasm. */
export function wasmHeapBytes(): number | null {
  const b = wasmInstance();
  return b?.wasm ? b.wasm.HEAPU8.buffer.byteLength : null;
}

/** Tensor buffers the wasm backend holds (catches leaks inside kernels that tf.memory misses). */
export function wasmDataIds(): number | null {
  return wasmInstance()?.numDataIds() ?? null;
}

/** Disposes the wasm backend (and stops its threads); the next initWasm loads a fresh one. */
export function shutdownWasm(): void {
  if (engineInternals().registryFactory["wasm"]) tf.removeBackend("wasm");
  loadedThreads = 0;
}
