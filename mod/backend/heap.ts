/**
 * Pointers into the tfjs wasm backend's heap, for native kernels that read and write tensors
 * where they live (mod/backend/blas_kernels.ts, mod/backend/native.ts's users).
 *
 *   const p = heapPointer(t);      // t's first byte; valid until the next tfjs allocation
 *   ownData(variable);             // before writing a variable in place
 *
 * The heap's base address is re-read on every call, because a tfjs allocation may grow the
 * memory (which detaches a non-shared heap's views and can move it). Native code that writes in
 * place must only write tensors whose data no other tensor shares (reshape, clone and
 * tf.variable(t) share it): ownData() gives a variable a private copy first where needed.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

interface TensorData {
  memoryOffset: number;
  refCount: number;
}

/** The parts of tfjs-backend-wasm's BackendWasm used here and in blas_kernels.ts. */
export interface WasmBackend {
  wasm: {
    HEAPU8: Uint8Array;
    wasmMemory?: WebAssembly.Memory;
    asm?: { memory?: WebAssembly.Memory };
  } | null;
  dataIdMap: { get(dataId: unknown): TensorData | undefined };
  makeOutput(shape: number[], dtype: "float32"): tf.TensorInfo;
  disposeData(dataId: unknown): boolean;
}

/** The wasm backend, or null when the active backend is another. */
export function wasmBackend(): WasmBackend | null {
  if (tf.getBackend() !== "wasm") return null;
  const b = tf.backend() as unknown as WasmBackend;
  return b.wasm && b.dataIdMap ? b : null;
}

/** The heap's current buffer. */
export function heapBuffer(backend: WasmBackend): ArrayBufferLike {
  const w = backend.wasm!;
  return w.wasmMemory?.buffer ?? w.asm?.memory?.buffer ?? w.HEAPU8.buffer;
}

let baseBuffer: ArrayBufferLike | null = null;
let basePtr: Deno.PointerValue = null;

/** The address of the heap's first byte (cached per buffer). */
export function heapBase(heap: ArrayBufferLike): Deno.PointerValue {
  if (heap !== baseBuffer) {
    basePtr = Deno.UnsafePointer.of(new Uint8Array(heap));
    baseBuffer = heap;
  }
  return basePtr;
}

function dataOf(backend: WasmBackend, t: tf.TensorInfo, what: string): TensorData {
  const d = backend.dataIdMap.get(t.dataId);
  if (!d) throw new Error(`${what}: tensor is disposed or not on the wasm backend`);
  return d;
}

/** A float32 (or, where asked, int32) tensor's address in the heap (wasm backend only). */
export function heapPointer(
  t: tf.Tensor,
  what = "tensor",
  dtype: "float32" | "int32" = "float32",
): Deno.PointerValue {
  const backend = wasmBackend();
  if (!backend) throw new Error(`${what}: native kernels need the wasm backend`);
  if (t.dtype !== dtype) throw new Error(`${what}: dtype ${t.dtype}, ${dtype} expected`);
  const d = dataOf(backend, t, what);
  const heap = heapBuffer(backend);
  if (d.memoryOffset + 4 * t.size > heap.byteLength) {
    throw new Error(`${what} at ${d.memoryOffset} lies outside the ${heap.byteLength}-byte heap`);
  }
  return Deno.UnsafePointer.offset(heapBase(heap)!, d.memoryOffset);
}

/** Gives `v` data of its own where another tensor shares it, so it can be written in place. */
export function ownData(v: tf.Variable): void {
  const backend = wasmBackend();
  if (!backend) return;
  if (dataOf(backend, v, v.name).refCount === 1) return;
  tf.tidy(() => v.assign(tf.add(v, 0))); // a kernel output: fresh memory
}
