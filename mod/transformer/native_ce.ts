/**
 * The unembedding + softmax cross-entropy on the project's native kernel
 * (mod/backend/native/ce.c), for ops.ts's fusedCrossEntropy and chunkedTokenLosses: the logits on
 * OpenBLAS (cblas_sgemm called from C, transposes as flags), the max / exp / sum / log-sum-exp
 * in one threaded, vectorised pass per row, and the backward's dL/dlogits = (softmax − onehot) ·
 * dy / N formed in place with db's column sums in the same pass. Same math as ops.ts's tfjs path
 * (tests/native_ce_test.ts compares them); tfjs sees one op with a custom gradient.
 *
 *   const r = nativeCe();                 // null + reason where it cannot run
 *   if (r.ce) loss = r.ce.loss(xND, wUDV, bUV, targetsN, { store: true, rows: 334 });
 *
 * It needs the wasm backend, OpenBLAS enabled on it (mod/backend/blas_kernels.ts) and the built
 * library (mod/backend/native.ts). Outputs are allocated uninitialised in the wasm heap and written
 * by the kernel; every pointer is taken after the last allocation (an allocation may grow the
 * heap). Threads: OpenBLAS's count, which initBackend sets to the backend's.
 *
 * Shape key: N rows (tokens), D model width, V vocabulary.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  blasStatus,
  heapPointer,
  loadNative,
  type Native,
  nativeThreads,
  wasmBackend,
} from "../backend/mod.ts";

export interface NativeCeOptions {
  /** Keep the forward's [N, V] exp(logit − row max) for the backward (else recompute by blocks). */
  store: boolean;
  /** Rows per block when recomputing (the [rows, V] scratch); the whole of N when storing. */
  rows: number;
}

/** An uninitialised float32 tensor in the wasm heap, for a kernel to fill. */
function empty(shape: number[]): tf.Tensor {
  return tf.engine().makeTensorFromTensorInfo(wasmBackend()!.makeOutput(shape, "float32"));
}

/** The phases rtd_ce_timings reports, in its order. */
export const NATIVE_CE_PHASES = [
  "logits (sgemm)",
  "forward rows (max, exp, sum)",
  "backward rows (dL/dlogits, db)",
  "dx (sgemm)",
  "dW (sgemm)",
] as const;

function check(rc: number, what: string): void {
  if (rc === -2) throw new Error(`native cross-entropy ${what}: no BLAS bound`);
  if (rc === -3) {
    throw new Error(`native cross-entropy ${what}: a target is outside the vocabulary`);
  }
  if (rc !== 0) throw new Error(`native cross-entropy ${what}: error code ${rc}`);
}

export class NativeCe {
  readonly threads: number;
  #native: Native;

  constructor(native: Native, threads: number) {
    this.#native = native;
    this.threads = threads;
  }

  /**
   * Per-row losses [N] and aux [N] (1 / Σ exp when storing, else the log-sum-exp); `block` keeps
   * exp(logit − row max) [N, V] (store) or is scratch.
   */
  #forward(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D, t: tf.Tensor1D, o: NativeCeOptions) {
    const [n, d] = x.shape, v = w.shape[1];
    const rows = o.store ? n : Math.min(n, o.rows);
    const lossN = empty([n]), auxN = empty([n]), block = empty([rows, v]);
    const rc = this.#native.symbols.rtd_ce_forward(
      this.threads,
      n,
      d,
      v,
      rows,
      heapPointer(x, "CE input"),
      heapPointer(w, "W_U"),
      heapPointer(b, "b_U"),
      heapPointer(t, "CE targets", "int32"),
      heapPointer(lossN, "CE losses"),
      heapPointer(auxN, "CE row aux"),
      heapPointer(block, "CE block"),
      o.store ? 1 : 0,
    );
    if (rc !== 0) tf.dispose([lossN, auxN, block]);
    check(rc, "forward");
    return { lossN: lossN as tf.Tensor1D, auxN: auxN as tf.Tensor1D, block, rows };
  }

  /** Seconds per phase of the kernel since the last call (process-wide), then reset. */
  timings(): Record<(typeof NATIVE_CE_PHASES)[number], number> {
    const out = new Float64Array(NATIVE_CE_PHASES.length);
    this.#native.symbols.rtd_ce_timings(out);
    return Object.fromEntries(NATIVE_CE_PHASES.map((p, i) => [p, out[i]])) as Record<
      (typeof NATIVE_CE_PHASES)[number],
      number
    >;
  }

  /** Per-token losses [N], without gradients. */
  tokenLosses(
    xND: tf.Tensor2D,
    wUDV: tf.Tensor2D,
    bUV: tf.Tensor1D,
    targetsN: tf.Tensor1D,
    rows: number,
  ): tf.Tensor1D {
    const { lossN, auxN, block } = this.#forward(xND, wUDV, bUV, targetsN, { store: false, rows });
    tf.dispose([auxN, block]);
    return lossN;
  }

  /** Mean cross-entropy, differentiable in x, W_U and b_U (one custom-gradient op). */
  loss(
    xND: tf.Tensor2D,
    wUDV: tf.Tensor2D,
    bUV: tf.Tensor1D,
    targetsN: tf.Tensor1D,
    opts: NativeCeOptions,
  ): tf.Scalar {
    const op = tf.customGrad((x, w, b, save) => {
      const [xN, wU, bU] = [x as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D];
      const { lossN, auxN, block, rows } = this.#forward(xN, wU, bU, targetsN, opts);
      // The backward overwrites the stored block: it runs once per forward, as tfjs's tape does.
      // Saved, not captured: the caller may dispose its targets before the backward runs.
      const keep = [xN, wU, bU, targetsN, auxN];
      (save as tf.GradSaveFunc)(opts.store ? [...keep, block] : keep);
      if (!opts.store) block.dispose();
      return {
        value: tf.mean(lossN),
        gradFunc: (dy, saved) => this.#backward(dy as tf.Scalar, saved, rows, opts),
      };
    });
    return op(xND, wUDV, bUV) as tf.Scalar;
  }

  #backward(
    dy: tf.Scalar,
    saved: tf.Tensor[],
    rows: number,
    o: NativeCeOptions,
  ): tf.Tensor[] {
    const [x, w, b, targetsN, auxN] = saved, [n, d] = x.shape, v = w.shape[1]!;
    const block = o.store ? saved[5] : empty([rows, v]);
    const colsum = empty([this.threads, v]);
    const dx = empty([n, d!]), dw = empty([d!, v]), db = empty([v]);
    const rc = this.#native.symbols.rtd_ce_backward(
      this.threads,
      n,
      d!,
      v,
      rows,
      heapPointer(x, "CE input"),
      heapPointer(w, "W_U"),
      heapPointer(b, "b_U"),
      heapPointer(targetsN, "CE targets", "int32"),
      heapPointer(auxN, "CE row aux"),
      heapPointer(dy, "CE dy"),
      heapPointer(block, "CE block"),
      o.store ? 1 : 0,
      heapPointer(colsum, "CE column sums"),
      heapPointer(dx, "CE dx"),
      heapPointer(dw, "CE dW"),
      heapPointer(db, "CE db"),
    );
    tf.dispose(o.store ? [colsum] : [colsum, block]);
    if (rc !== 0) tf.dispose([dx, dw, db]);
    check(rc, "backward");
    return [dx, dw, db];
  }
}

let cached: { ce: NativeCe; reason?: undefined } | { ce: null; reason: string } | null = null;
let cachedFor = "";

/**
 * The native cross-entropy where it can run (wasm backend, OpenBLAS enabled, library built), else
 * null and the reason. Cheap to call per step: the answer is kept while the backend and BLAS
 * library stay the same.
 */
export function nativeCe(): { ce: NativeCe; reason?: undefined } | { ce: null; reason: string } {
  if (!wasmBackend()) return { ce: null, reason: `backend ${tf.getBackend()}, not wasm` };
  const blas = blasStatus();
  if (!blas.enabled || !blas.library) {
    return { ce: null, reason: `no native BLAS (${blas.reason ?? "not enabled"})` };
  }
  const key = `${blas.library}|${blas.threads}`;
  if (cached && cachedFor === key) return cached;
  cachedFor = key;
  cached = bind(blas.library, nativeThreads());
  return cached;
}

function bind(library: string, threads: number) {
  const r = loadNative();
  if (!r.native) return { ce: null, reason: r.reason };
  if (r.native.symbols.rtd_bind_sgemm(new TextEncoder().encode(library + "\0")) !== 1) {
    return { ce: null, reason: `cannot bind cblas_sgemm from ${library}` };
  }
  return { ce: new NativeCe(r.native, threads) };
}
