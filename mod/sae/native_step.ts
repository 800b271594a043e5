/**
 * The SAE training step on the project's native kernels (mod/backend/native/sae_step.c), for
 * ReLU, TopK and BatchTopK SAEs (runsNative): the gradients of each micro-batch and the whole
 * update (decoder-row projection, Adam, row renormalisation, "last fired" bookkeeping) run on
 * pointers into the wasm heap, split over the cores, with the encoder's product on OpenBLAS. Same math as saeGrads + Adam.step +
 * normaliseRows in mod/sae/trainer.ts (tests/native_sae_test.ts compares them).
 *
 *   const native = nativeSaeStep({ threads: 2 });    // null + reason where it cannot run
 *   const trainer = new SweepTrainer(configs, { dIn, nativeStep: native.step });
 *
 * It needs the wasm backend, OpenBLAS enabled on it (mod/backend/blas_kernels.ts) and the built
 * library (mod/backend/native.ts). The parameters, the Adam moments and the "last fired" steps stay
 * tfjs variables, written in place (each is first given data of its own, see ownData).
 *
 * Path per micro-batch: sparse (work ∝ the nonzeros of f) while at most `denseAbove` of f's
 * entries are nonzero, else the dense products on BLAS (a fresh SAE fires on about half its
 * features). The default crossover is measured by tests/bench/sae_bench.ts.
 *
 * Shape key: M micro-batch rows, D input width, F features.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  blasStatus,
  heapPointer,
  loadNative,
  type Native,
  ownData,
  wasmBackend,
} from "../backend/mod.ts";
import type { Adam } from "../transformer/mod.ts";
import { checkInput, type Sae, type SaeConfig } from "./sae.ts";
import { runsNative } from "./architectures.ts";

function describe(cfg: SaeConfig): string {
  return `${cfg.architecture}${(cfg.auxkCoefficient ?? 0) > 0 ? " + AuxK" : ""}`;
}

/**
 * Share of nonzero f entries above which a micro-batch takes the dense path. Measured here (2
 * cores, OpenBLAS, B 4,096, d_in 512; `deno run -A tests/bench/sae_bench.ts --crossover
 * 0.015,0.03,0.06,0.12`, a busy machine): at F 16,384 sparse 1.8 s against dense 5.0 s at density 1.4%, 4.2 against 4.7 at
 * 5.8%, 7.4 against 4.8 at 11.9%; at F 4,096 sparse was still ahead at 12% (0.66 against 0.76 s).
 */
export const DEFAULT_DENSE_ABOVE = 0.08;

/** The phases rtd_sae_timings reports, in its order. */
export const NATIVE_PHASES = [
  "encoder product (BLAS)",
  "ReLU/TopK + sparse rows",
  "decoder forward + d/d pre (rows)",
  "sort by feature",
  "W_dec, W_enc, b_enc gradients (features)",
  "dense path (4 products on BLAS)",
  "update (projection, Adam, renormalise)",
] as const;

export interface NativeStepOptions {
  threads: number;
  /** See DEFAULT_DENSE_ABOVE; 1: always sparse, 0: always dense. */
  denseAbove?: number;
}

/** A batch of activations in compressed sparse rows. */
export interface SparseRows {
  /** M + 1 offsets into col and val. */
  rowPtr: Int32Array;
  col: Int32Array;
  val: Float32Array;
}

/** Loss parts of one micro-batch, as sums over its rows. */
export interface NativeGradSums {
  sse: number;
  l1: number;
  nnz: number;
  dense: boolean;
  /** batchtopk: the smallest nonzero f of the micro-batch (Infinity when none, or not batchtopk). */
  minActive: number;
}

export class NativeSaeStep {
  readonly threads: number;
  readonly denseAbove: number;
  /** Micro-batches that took the dense path, and all of them. */
  denseCalls = 0;
  calls = 0;
  #native: Native;
  #ws: Deno.PointerValue;
  #out = new Float64Array(5);

  constructor(native: Native, opts: NativeStepOptions) {
    this.#native = native;
    this.threads = opts.threads;
    this.denseAbove = opts.denseAbove ?? DEFAULT_DENSE_ABOVE;
    this.#ws = native.symbols.rtd_ws_new();
    if (this.#ws === null) throw new Error("native SAE step: out of memory");
  }

  /**
   * Adds one micro-batch's gradients (divided by normBatch) to the accumulators. ReLU, TopK and
   * BatchTopK (its k·M largest over the micro-batch's M rows), without AuxK (runsNative).
   */
  grads(sae: Sae, xMD: tf.Tensor2D, normBatch: number, first: boolean): NativeGradSums {
    checkInput(sae, xMD);
    if (!runsNative(sae.cfg)) {
      throw new Error(`native SAE step: cannot train a ${describe(sae.cfg)} SAE`);
    }
    const { dIn: D, dSae: F, l1Coefficient: lambda, architecture, k } = sae.cfg;
    const M = xMD.shape[0];
    const topK = architecture === "topk" ? k ?? 0 : 0;
    const batchK = architecture === "batchtopk" ? BigInt(Math.min(k! * M, M * F)) : 0n;
    const rc = this.#native.symbols.rtd_sae_grads(
      this.#ws,
      this.threads,
      M,
      D,
      F,
      topK,
      batchK,
      normBatch,
      lambda,
      first ? 1 : 0,
      heapPointer(xMD, "SAE input"),
      heapPointer(sae.wEncDF, "W_enc"),
      heapPointer(sae.bEncF, "b_enc"),
      heapPointer(sae.wDecFD, "W_dec"),
      heapPointer(sae.bDecD, "b_dec"),
      this.denseAbove,
      this.#out,
    );
    check(rc, "gradients");
    const [sse, l1, nnz, dense, minActive] = this.#out;
    this.calls++;
    if (dense) this.denseCalls++;
    return { sse, l1, nnz, dense: dense === 1, minActive };
  }

  /**
   * The update from the accumulated gradients: Adam at `lr` (adam.t advances by one, as in
   * Adam.step), decoder rows renormalised, lastFiredF[i] = step where feature i fired.
   */
  update(sae: Sae, adam: Adam, lr: number, step: number, lastFiredF: tf.Variable): void {
    const { dIn: D, dSae: F } = sae.cfg;
    const names = ["W_enc", "b_enc", "W_dec", "b_dec"] as const;
    const vars = [
      sae.wEncDF,
      sae.bEncF,
      sae.wDecFD,
      sae.bDecD,
      ...names.flatMap((n) => [adam.m[n], adam.v[n]]),
      lastFiredF,
    ];
    for (const v of vars) ownData(v); // may allocate: before any pointer is taken
    const p = vars.map((v) => heapPointer(v, v.name));
    const stepSize = adam.nextStepSize(lr);
    const rc = this.#native.symbols.rtd_sae_update(
      this.#ws,
      this.threads,
      D,
      F,
      p[0],
      p[1],
      p[2],
      p[3],
      p[4],
      p[5],
      p[6],
      p[7],
      p[8],
      p[9],
      p[10],
      p[11],
      stepSize,
      adam.beta1,
      adam.beta2,
      adam.eps,
      step,
      p[12],
    );
    check(rc, "update");
  }

  /**
   * f = the SAE's activations of the rows of xMD as compressed sparse rows (copied out of the
   * native workspace): row b's features are col[rowPtr[b] .. rowPtr[b+1]), values in val. Every
   * architecture, in its inference form (encode() in mod/sae/sae.ts): BatchTopK by its learnt
   * threshold, JumpReLU by its per-feature thresholds, gated through its magnitude path.
   */
  encode(sae: Sae, xMD: tf.Tensor2D): SparseRows {
    checkInput(sae, xMD);
    const { dIn: D, dSae: F, architecture, k } = sae.cfg;
    const M = xMD.shape[0];
    // Per-architecture inputs: tensors made here are disposed after the call.
    const made: tf.Tensor[] = [];
    let thr: Deno.PointerValue = null, thrAll = 0;
    let magS: Deno.PointerValue = null, magB: Deno.PointerValue = null;
    if (architecture === "batchtopk") {
      thrAll = Math.max(0, sae.extra.threshold.dataSync()[0]);
    } else if (architecture === "jumprelu") {
      made.push(tf.exp(sae.extra.log_threshold));
      thr = heapPointer(made[0], "JumpReLU threshold");
    } else if (architecture === "gated") {
      made.push(tf.exp(sae.extra.r_mag));
      magS = heapPointer(made[0], "exp(r_mag)");
      magB = heapPointer(sae.extra.b_mag, "b_mag");
    }
    let nnz: number;
    try {
      nnz = Number(this.#native.symbols.rtd_sae_encode(
        this.#ws,
        this.threads,
        M,
        D,
        F,
        architecture === "topk" ? k ?? 0 : 0,
        heapPointer(xMD, "SAE input"),
        heapPointer(sae.wEncDF, "W_enc"),
        heapPointer(sae.bEncF, "b_enc"),
        heapPointer(sae.bDecD, "b_dec"),
        thr,
        thrAll,
        magS,
        magB,
      ));
    } finally {
      tf.dispose(made);
    }
    if (nnz < 0) check(nnz, "encode");
    const ptrs = new BigUint64Array(3);
    this.#native.symbols.rtd_ws_csr(this.#ws, ptrs);
    const view = (i: number, bytes: number) =>
      Deno.UnsafePointerView.getArrayBuffer(Deno.UnsafePointer.create(ptrs[i])!, bytes).slice(0);
    return {
      rowPtr: new Int32Array(view(0, 4 * (M + 1))),
      col: new Int32Array(nnz > 0 ? view(1, 4 * nnz) : new ArrayBuffer(0)),
      val: new Float32Array(nnz > 0 ? view(2, 4 * nnz) : new ArrayBuffer(0)),
    };
  }

  /**
   * encode(), and Σ‖x − x̂‖² over the rows, x̂ = b_dec + Σ f_i W_dec[i] from the sparse f
   * (held-out evaluation: nnz·D multiply-adds instead of the dense M×F×D decode).
   */
  encodeWithError(sae: Sae, xMD: tf.Tensor2D): { f: SparseRows; sse: number } {
    const f = this.encode(sae, xMD);
    const out = new Float64Array(1);
    const rc = this.#native.symbols.rtd_sae_sse(
      this.#ws,
      this.threads,
      xMD.shape[0],
      sae.cfg.dIn,
      heapPointer(xMD, "SAE input"),
      heapPointer(sae.wDecFD, "W_dec"),
      heapPointer(sae.bDecD, "b_dec"),
      out,
    );
    check(rc, "reconstruction error");
    return { f, sse: out[0] };
  }

  /** Seconds per phase of the native kernels since the last call (process-wide), then reset. */
  timings(): Record<(typeof NATIVE_PHASES)[number], number> {
    const out = new Float64Array(NATIVE_PHASES.length);
    this.#native.symbols.rtd_sae_timings(out);
    return Object.fromEntries(NATIVE_PHASES.map((p, i) => [p, out[i]])) as Record<
      (typeof NATIVE_PHASES)[number],
      number
    >;
  }

  dispose(): void {
    if (this.#ws !== null) this.#native.symbols.rtd_ws_free(this.#ws);
    this.#ws = null;
  }
}

function check(rc: number, what: string): void {
  if (rc === -1) throw new Error(`native SAE ${what}: out of memory`);
  if (rc === -2) throw new Error(`native SAE ${what}: no BLAS bound (enable OpenBLAS first)`);
  if (rc !== 0) throw new Error(`native SAE ${what}: error code ${rc}`);
}

/**
 * The native step where it can run (wasm backend, OpenBLAS enabled, library built), else null
 * and the reason.
 */
export function nativeSaeStep(
  opts: NativeStepOptions,
): { step: NativeSaeStep; reason?: undefined } | { step: null; reason: string } {
  if (!wasmBackend()) return { step: null, reason: `backend ${tf.getBackend()}, not wasm` };
  const blas = blasStatus();
  if (!blas.enabled || !blas.library) {
    return { step: null, reason: `no native BLAS (${blas.reason ?? "not enabled"})` };
  }
  const r = loadNative();
  if (!r.native) return { step: null, reason: r.reason };
  const path = new TextEncoder().encode(blas.library + "\0");
  if (r.native.symbols.rtd_bind_sgemm(path) !== 1) {
    return { step: null, reason: `cannot bind cblas_sgemm from ${blas.library}` };
  }
  return { step: new NativeSaeStep(r.native, opts) };
}
