/**
 * The tfjs WebGPU backend on Deno's navigator.gpu, with the guards tfjs lacks.
 *
 * A buffer larger than the adapter's maxStorageBufferBindingSize (128 MiB on Mesa's CPU
 * rasterisers) makes wgpu raise validation errors that tfjs never looks at: results silently
 * become zeros. So this module:
 *
 * - reads the adapter's limits and refuses, with a clear error, any kernel whose input or output
 *   tensor exceeds them (`checkTensorFits`, installed around the backend's runWebGPUProgram);
 * - listens to the device's "uncapturederror" event, prints each distinct error once, and makes
 *   the next tensor read reject instead of returning the wrong numbers;
 * - tells real GPUs from CPU rasterisers (llvmpipe, lavapipe, SwiftShader), which `auto` skips;
 * - explains the failure of dataSync(): tfjs reads GPU data synchronously through a canvas, which
 *   Deno lacks, so code that may run on WebGPU must read with `await t.data()`.
 *
 * The package is imported only when WebGPU is actually used; its registration (priority 3, above
 * wasm and cpu) is removed so that tfjs's own default choice never starts it behind our back.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** The two adapter limits that bound a single tensor's buffer. */
export interface WebGPULimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
}

export interface AdapterProbe {
  adapter: GPUAdapter | null;
  /** Human-readable adapter name ("" when there is none). */
  description: string;
  /** True for CPU rasterisers (llvmpipe, lavapipe, SwiftShader) and fallback adapters. */
  software: boolean;
  /** Why there is no adapter, when there is none. */
  reason?: string;
}

const SOFTWARE_PATTERN = /llvmpipe|lavapipe|swiftshader|softpipe|basic render|software/i;

let activeLimits: WebGPULimits | null = null;
const seenErrors: string[] = [];
/** Errors not yet surfaced by a read: the next read rejects with the first of them. */
let pendingErrors: string[] = [];

/** Bytes per element in a WebGPU storage buffer (tfjs stores bool as 32-bit). */
function gpuBytesPerElement(dtype: tf.DataType): number {
  return dtype === "complex64" ? 8 : 4;
}

const fmt = (n: number) => n.toLocaleString("en-US");

/**
 * Throws when a tensor of this shape and dtype does not fit one WebGPU storage binding or buffer.
 * `limits` defaults to those of the active WebGPU backend; with neither, it checks nothing.
 */
export function checkTensorFits(
  shape: readonly number[],
  dtype: tf.DataType,
  limits: WebGPULimits | null = activeLimits,
): void {
  if (limits === null) return;
  const bytes = shape.reduce((a, b) => a * b, 1) * gpuBytesPerElement(dtype);
  const where = `(shape [${shape.join(", ")}], ${dtype})`;
  for (const name of ["maxStorageBufferBindingSize", "maxBufferSize"] as const) {
    if (bytes > limits[name]) {
      throw new Error(
        `Tensor of ${fmt(bytes)} bytes exceeds this WebGPU adapter's ${name} of ` +
          `${fmt(limits[name])} bytes ${where}`,
      );
    }
  }
}

/** Whether adapter info describes a CPU rasteriser rather than a GPU. */
export function isSoftwareAdapter(
  info: { description?: string; vendor?: string; device?: string; isFallbackAdapter?: boolean },
): boolean {
  if (info.isFallbackAdapter) return true;
  return SOFTWARE_PATTERN.test([info.description, info.vendor, info.device].join(" "));
}

/** Asks navigator.gpu for an adapter and says what it is, without starting tfjs. */
export async function probeWebGPU(): Promise<AdapterProbe> {
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  if (!gpu) {
    return { adapter: null, description: "", software: false, reason: "navigator.gpu is absent" };
  }
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    return {
      adapter: null,
      description: "",
      software: false,
      reason: `requestAdapter failed: ${msg}`,
    };
  }
  if (!adapter) {
    return {
      adapter: null,
      description: "",
      software: false,
      reason: "no WebGPU adapter found (without a GPU, DENO_WEBGPU_BACKEND=vulkan or gl may " +
        "expose a CPU rasteriser)",
    };
  }
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const description = info.description || [info.vendor, info.device].filter(Boolean).join(" ") ||
    "unnamed adapter";
  return { adapter, description, software: isSoftwareAdapter(info) };
}

/** Errors the device reported since WebGPU started (tfjs itself ignores them). */
export function webgpuErrors(): readonly string[] {
  return seenErrors;
}

/** The limits of the active WebGPU device, or null when WebGPU was never started. */
export function webgpuLimits(): WebGPULimits | null {
  return activeLimits;
}

interface WebGPUBackendLike {
  runWebGPUProgram(
    program: { outputShape: number[] },
    inputs: tf.TensorInfo[],
    outputDtype: tf.DataType,
    ...rest: unknown[]
  ): tf.TensorInfo;
  read(dataId: object): Promise<unknown>;
  readSync(dataId: object): unknown;
  write(values: unknown, shape: number[], dtype: tf.DataType): object;
}

/**
 * Starts tfjs's WebGPU backend on `adapter` and makes it active. Returns the device limits that
 * the guard enforces.
 */
export async function initWebGPU(adapter: GPUAdapter): Promise<WebGPULimits> {
  const pkg = await import("@tensorflow/tfjs-backend-webgpu");
  // deno-lint-ignore no-explicit-any
  const engine = tf.engine() as any as {
    registry: Record<string, unknown>;
    registryFactory: Record<string, unknown>;
  };
  if (engine.registryFactory["webgpu"] && !engine.registry["webgpu"]) tf.removeBackend("webgpu");
  if (engine.registry["webgpu"]) {
    await tf.setBackend("webgpu");
    return activeLimits!;
  }
  // The same request tfjs's own factory makes, so that its kernels find the limits they expect.
  const l = adapter.limits;
  const requiredFeatures: GPUFeatureName[] = [];
  if (adapter.features.has("timestamp-query")) requiredFeatures.push("timestamp-query");
  const device = await adapter.requestDevice({
    requiredFeatures,
    requiredLimits: {
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    },
  });
  const limits: WebGPULimits = {
    maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
    maxBufferSize: device.limits.maxBufferSize,
  };
  device.addEventListener("uncapturederror", (e) => {
    const msg = (e as GPUUncapturedErrorEvent).error.message.split("\n")[0];
    if (!seenErrors.includes(msg)) console.error(`backend: WebGPU error: ${msg}`);
    seenErrors.push(msg);
    pendingErrors.push(msg);
  });
  const backend = new pkg.WebGPUBackend(device, adapter.info);
  guard(backend as unknown as WebGPUBackendLike);
  tf.registerBackend("webgpu", () => backend, 3);
  if (!(await tf.setBackend("webgpu"))) throw new Error("Cannot activate the webgpu backend");
  activeLimits = limits;
  return limits;
}

/**
 * Wraps the backend instance so that oversized tensors throw (when made and when computed on),
 * device errors surface on read, and dataSync() says why it cannot work here.
 */
function guard(backend: WebGPUBackendLike): void {
  const write = backend.write.bind(backend);
  backend.write = (values, shape, dtype) => {
    checkTensorFits(shape, dtype);
    return write(values, shape, dtype);
  };
  const readSync = backend.readSync.bind(backend);
  backend.readSync = (dataId) => {
    try {
      return readSync(dataId);
    } catch (e) {
      // tfjs reads GPU data synchronously through a canvas, which Deno does not have.
      throw new Error(
        `Cannot read a WebGPU tensor synchronously here (dataSync/arraySync): use await data() ` +
          `(${e instanceof Error ? e.message : e})`,
      );
    }
  };
  const run = backend.runWebGPUProgram.bind(backend);
  backend.runWebGPUProgram = (program, inputs, outputDtype, ...rest) => {
    for (const t of inputs) checkTensorFits(t.shape, t.dtype);
    checkTensorFits(program.outputShape, outputDtype);
    return run(program, inputs, outputDtype, ...rest);
  };
  const read = backend.read.bind(backend);
  backend.read = async (dataId) => {
    const values = await read(dataId);
    if (pendingErrors.length > 0) {
      const errors = pendingErrors;
      pendingErrors = [];
      throw new Error(
        `WebGPU reported ${errors.length} error(s) since the last read, so values computed ` +
          `since then cannot be trusted: ${errors[0]}`,
      );
    }
    return values;
  };
}

/** Disposes the WebGPU backend, if started; the size guard then checks nothing by default. */
export function shutdownWebGPU(): void {
  // deno-lint-ignore no-explicit-any
  if ((tf.engine() as any).registryFactory["webgpu"]) tf.removeBackend("webgpu");
  activeLimits = null;
}
