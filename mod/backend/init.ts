/**
 * Picks and starts the TensorFlow.js backend that every stage computes on.
 *
 *   const info = await initBackend();              // TFJS_BACKEND, else "auto"
 *   const info = await initBackend("wasm", { threads: 2 });
 *
 * Choices: node-gpu, node (tfjs-node: tried through a dynamic import, never required, since
 * their install downloads libtensorflow), webgpu (Deno's navigator.gpu), wasm (with the fixes in
 * backend_wasm.ts: binaries from node_modules, transpose-first matmul, real threads), cpu (plain
 * JavaScript). `auto` tries node-gpu, node, webgpu on a real GPU, then wasm, then cpu: measured
 * on this 2-core machine, wasm (fixed, 1 thread) runs an SAE step and an unembedding step at
 * about 10 GFLOP/s against cpu's 0.5, so wasm comes before cpu (tests/bench/backend_bench.ts).
 * One line on stderr says which backend ran, and one per backend tried and skipped says why.
 *
 * Permissions: wasm reads node_modules (--allow-read); TFJS_BACKEND is read only where env access
 * to it is granted; tfjs-node needs --allow-ffi. Threaded wasm does not keep the process alive;
 * shutdownBackend() stops its threads and frees its heap where a long process wants that.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { BACKEND_CHOICES, pinnedDependencies } from "../run/mod.ts";
import { enableBlas } from "./blas_kernels.ts";
import { BLAS_FIX } from "./blas.ts";
import { initWasm, MAX_WASM_THREADS, shutdownWasm, wasmHeapBytes } from "./wasm.ts";
import {
  checkTensorFits,
  initWebGPU,
  probeWebGPU,
  shutdownWebGPU,
  webgpuLimits,
} from "./webgpu.ts";

export { checkTensorFits };
export type { WebGPULimits } from "./webgpu.ts";

export interface BackendInfo {
  /** The backend that runs: node-gpu, node, webgpu, wasm or cpu. */
  name: string;
  /** CPU threads it computes with (wasm: as the runtime reports; cpu and webgpu: 1). */
  threads: number;
  /** Backends tried before it and why each was passed over. */
  skipped: { name: string; reason: string }[];
  /** wasm only: whether the SIMD binary runs. */
  simd?: boolean;
  /** webgpu only: the adapter's description. */
  adapter?: string;
  /** wasm only: the native BLAS its matmuls run on ("OpenBLAS 0.3.21 (path)"), if any. */
  blas?: string;
  /** wasm only: why matmuls stay on XNNPACK. */
  blasReason?: string;
}

export interface BackendOptions {
  /** wasm threads (1 to 8); default: the number of cores. */
  threads?: number;
  /** No lines on stderr. */
  quiet?: boolean;
}

const NODE_PACKAGES: Record<string, string> = {
  "node-gpu": "@tensorflow/tfjs-node-gpu",
  "node": "@tensorflow/tfjs-node",
};
const AUTO_ORDER = ["node-gpu", "node", "webgpu", "wasm", "cpu"];

/** A reason to pass over a backend (not a failure of the program). */
class Skip extends Error {}

let current: { key: string; info: BackendInfo } | null = null;

function envChoice(): string | undefined {
  const perm = Deno.permissions.querySync({ name: "env", variable: "TFJS_BACKEND" });
  if (perm.state !== "granted") return undefined;
  return Deno.env.get("TFJS_BACKEND") || undefined;
}

function defaultThreads(): number {
  return Math.max(1, Math.min(MAX_WASM_THREADS, navigator.hardwareConcurrency || 1));
}

/** tfjs's name for a backend of ours. */
function tfName(name: string): string {
  return name === "node" || name === "node-gpu" ? "tensorflow" : name;
}

/**
 * Starts the chosen backend (a name; else, for "auto" or none, $TFJS_BACKEND; else "auto") and
 * makes it tfjs's active
 * one. Calling it again with the same choice and threads does nothing and returns the same info.
 */
export async function initBackend(
  choice?: string,
  opts: BackendOptions = {},
): Promise<BackendInfo> {
  // A named choice (--backend, --set backend=NAME) wins; "auto", the presets' value, defers to
  // $TFJS_BACKEND where it is set and readable.
  const wanted = (choice && choice !== "auto" ? choice : undefined) ?? envChoice() ?? "auto";
  if (!(BACKEND_CHOICES as readonly string[]).includes(wanted)) {
    throw new Error(`Unknown backend "${wanted}": expected one of ${BACKEND_CHOICES.join(", ")}`);
  }
  const threads = opts.threads ?? defaultThreads();
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_WASM_THREADS) {
    throw new Error(`Thread count ${threads} is not an integer from 1 to ${MAX_WASM_THREADS}`);
  }
  const key = `${wanted}|${threads}`;
  if (current?.key === key && tf.getBackend() === tfName(current.info.name)) return current.info;

  const log = opts.quiet ? () => {} : (line: string) => console.error(`backend: ${line}`);
  const skipped: BackendInfo["skipped"] = [];
  const candidates = wanted === "auto" ? AUTO_ORDER : [wanted];
  for (const name of candidates) {
    try {
      const info = await start(name, { threads, explicit: wanted !== "auto", log });
      const full: BackendInfo = { ...info, skipped };
      current = { key, info: full };
      log(describe(full));
      return full;
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      if (wanted !== "auto" && e instanceof Skip) {
        throw new Error(`Backend "${name}" is not available: ${reason}`);
      }
      if (wanted !== "auto" || name === "cpu") throw e;
      skipped.push({ name, reason });
      log(`skipped ${name} (${reason})`);
    }
  }
  throw new Error(`No backend could start: ${skipped.map((s) => s.name).join(", ")} all failed`);
}

interface StartOptions {
  threads: number;
  explicit: boolean;
  log: (line: string) => void;
}

async function start(name: string, o: StartOptions): Promise<Omit<BackendInfo, "skipped">> {
  switch (name) {
    case "node-gpu":
    case "node":
      return await startNode(name);
    case "webgpu": {
      const probe = await probeWebGPU();
      if (!probe.adapter) throw new Skip(probe.reason ?? "no adapter");
      if (probe.software) {
        const why = `adapter "${probe.description}" is a CPU rasteriser, not a GPU`;
        if (!o.explicit) throw new Skip(`${why}: wasm is faster`);
        o.log(`${why}; using it because webgpu was asked for by name`);
      }
      await initWebGPU(probe.adapter);
      return { name, threads: 1, adapter: probe.description };
    }
    case "wasm": {
      const w = await initWasm(o.threads);
      if (w.threads < o.threads) {
        o.log(`wasm was asked for ${o.threads} threads and runs ${w.threads}`);
      }
      // Matmuls on a native BLAS through FFI where one loads (3-4x XNNPACK here); else XNNPACK.
      const b = enableBlas("wasm", { threads: o.threads, quiet: true });
      return {
        name,
        threads: w.threads,
        simd: w.simd,
        ...(b.enabled
          ? { blas: `${b.config?.split(" ").slice(0, 2).join(" ") ?? "BLAS"} (${b.library})` }
          : { blasReason: b.reason }),
      };
    }
    case "cpu": {
      if (!(await tf.setBackend("cpu"))) throw new Error("Cannot activate the cpu backend");
      // The cpu backend prints a "looks like you are running TensorFlow.js in Node.js" banner on
      // its first tensor; it only advertises tfjs-node, which the line above already covers.
      (tf.backend() as unknown as { firstUse: boolean }).firstUse = false;
      return { name, threads: 1 };
    }
  }
  throw new Error(`Unknown backend "${name}"`);
}

async function startNode(name: string): Promise<Omit<BackendInfo, "skipped">> {
  const pkg = NODE_PACKAGES[name];
  // Only a package that deno.json maps (and deno.lock pins) is imported: importing an unlisted
  // npm: specifier under a frozen lockfile aborts the whole process, and would reach the network.
  if (!(pkg in (await pinnedDependencies()))) {
    throw new Skip(`${pkg} is not installed: its install downloads libtensorflow, see README`);
  }
  // A non-literal specifier: deno check and the module graph must not try to resolve it.
  const spec = [pkg][0];
  try {
    await import(spec);
  } catch (e) {
    throw new Skip(nodeImportReason(pkg, e));
  }
  if (!(await tf.setBackend("tensorflow"))) {
    throw new Skip(`${pkg} loaded but its "tensorflow" backend did not start`);
  }
  return { name, threads: navigator.hardwareConcurrency || 1 };
}

/** One line from the (long, coloured) error of a failed tfjs-node import. */
export function nodeImportReason(pkg: string, e: unknown): string {
  // deno-lint-ignore no-control-regex
  const msg = (e instanceof Error ? e.message : String(e)).replace(/\x1b\[[0-9;]*m/g, "");
  if (
    /lockfile is out of date|not found|Cannot find|Could not find|ERR_MODULE_NOT_FOUND/i.test(msg)
  ) {
    return `${pkg} is not installed: its install downloads libtensorflow, see README`;
  }
  if (/ffi/i.test(msg)) return `${pkg} needs --allow-ffi to load its native addon`;
  const first = msg.split("\n")[0].trim();
  return `${pkg} failed to load: ${first.length > 200 ? first.slice(0, 200) + "..." : first}`;
}

/**
 * What running without a native BLAS costs and the command that fixes it, for a library that is
 * missing (not one turned off on purpose or kept out by permissions).
 */
export function blasHint(reason: string | undefined): string {
  if (!reason || !/not found/.test(reason)) return "";
  return "; tensor stages run about 2x slower without it (demo sweep: 52 min against 29 on 2 " +
    `cores); fix: ${BLAS_FIX}`;
}

function describe(info: BackendInfo): string {
  switch (info.name) {
    case "wasm":
      return `wasm (${info.threads} thread${info.threads === 1 ? "" : "s"}, ` +
        `${info.simd ? "SIMD" : "no SIMD"}, ` +
        (info.blas
          ? `matmuls on ${info.blas})`
          : `matmuls on XNNPACK; no native BLAS: ${info.blasReason})${blasHint(info.blasReason)}`);
    case "webgpu": {
      const l = webgpuLimits();
      const limit = l
        ? `, maxStorageBufferBindingSize ${l.maxStorageBufferBindingSize.toLocaleString("en-US")}`
        : "";
      return `webgpu (adapter "${info.adapter}"${limit})`;
    }
    default:
      return info.name;
  }
}

/** The active backend under this module's names (node-gpu, node, webgpu, wasm, cpu), or "none". */
export function backendName(): string {
  const n = tf.getBackend();
  if (!n) return "none";
  if (n === "tensorflow") return current?.info.name === "node-gpu" ? "node-gpu" : "node";
  return n;
}

export interface MemoryReport {
  backend: string;
  numTensors: number;
  numDataBuffers: number;
  /** Bytes held by live tensors. */
  numBytes: number;
  /** wasm: the heap's size (it grows up to 4 GiB and never shrinks). */
  heapBytes?: number;
  /** webgpu: bytes in GPU buffers, including tfjs's buffer pool. */
  gpuBytes?: number;
  /** One line for logs. */
  text: string;
}

const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

/** tf.memory() summarised, with the backend-specific figures that matter for running out. */
export function memoryReport(): MemoryReport {
  const m = tf.memory() as tf.MemoryInfo & { numBytesAllocatedInGPU?: number };
  const report: MemoryReport = {
    backend: backendName(),
    numTensors: m.numTensors,
    numDataBuffers: m.numDataBuffers,
    numBytes: m.numBytes,
  } as MemoryReport;
  let text = `${report.backend}: ${m.numTensors} tensors, ${mib(m.numBytes)}`;
  if (report.backend === "wasm") {
    report.heapBytes = wasmHeapBytes() ?? 0;
    text += `, wasm heap ${mib(report.heapBytes)} of 4096 MiB`;
  }
  if (report.backend === "webgpu" && m.numBytesAllocatedInGPU !== undefined) {
    report.gpuBytes = m.numBytesAllocatedInGPU;
    text += `, GPU buffers ${mib(report.gpuBytes)}`;
  }
  report.text = text;
  return report;
}

/**
 * Disposes the wasm and webgpu backends (stopping wasm's threads, freeing its heap) and forgets
 * the choice; the next initBackend starts afresh. Tensors on those backends become invalid.
 */
export function shutdownBackend(): void {
  shutdownWasm();
  shutdownWebGPU();
  current = null;
}
