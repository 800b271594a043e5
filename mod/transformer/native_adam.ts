/**
 * The transformer's clip + AdamW update on the project's native kernels
 * (mod/backend/native/adamw.c), for train.ts's trainStepStats: the global gradient norm from one
 * threaded pass per gradient, then one pass per parameter that updates it and its two moments in
 * place in the wasm heap. Same math as Adam.step on the gradients scaled by
 * min(1, clip / (norm + 1e-6)) (tests/native_adam_test.ts compares them); tfjs runs about a dozen
 * single-threaded elementwise kernels per parameter for it.
 *
 *   const r = nativeAdamW();                // null + reason where it cannot run
 *   if (r.adamw) norm = r.adamw.step(adam, grads, { lr, clipNorm: 1 });
 *
 * It needs the wasm backend and the built library (mod/backend/native.ts); not OpenBLAS. The
 * parameters and moments stay tfjs variables, each first given data of its own (see ownData).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  heapPointer,
  loadNative,
  type Native,
  nativeThreads,
  ownData,
  wasmBackend,
} from "../backend/mod.ts";
import type { Adam } from "./adam.ts";

export class NativeAdamW {
  readonly threads: number;
  #native: Native;

  constructor(native: Native, threads: number) {
    this.#native = native;
    this.threads = threads;
  }

  /** √(Σ over every gradient of Σ g²). */
  globalNorm(grads: tf.Tensor[]): number {
    let sum = 0;
    for (const g of grads) {
      sum += this.#native.symbols.rtd_sumsq(
        this.threads,
        heapPointer(g, "gradient"),
        BigInt(g.size),
      );
    }
    return Math.sqrt(sum);
  }

  /**
   * Clips the gradients to a global norm of `clipNorm` (0 or Infinity: no clip) and applies one
   * Adam(W) update at `lr` (adam.t advances by one, as in Adam.step). Returns the norm before
   * clipping. The caller still owns the gradients.
   */
  step(adam: Adam, grads: Record<string, tf.Tensor>, o: { lr: number; clipNorm: number }): number {
    const names = Object.keys(grads);
    for (const name of names) {
      const p = adam.params[name];
      if (!p) throw new Error(`native AdamW: unknown parameter "${name}"`);
      if (grads[name].size !== p.size) {
        throw new Error(`native AdamW: gradient of "${name}" has ${grads[name].size} values`);
      }
      for (const v of [p, adam.m[name], adam.v[name]]) ownData(v); // may allocate: pointers after
    }
    const norm = this.globalNorm(names.map((n) => grads[n]));
    const clip = o.clipNorm;
    const scale = clip > 0 && Number.isFinite(clip) ? Math.min(1, clip / (norm + 1e-6)) : 1;
    const stepSize = adam.nextStepSize(o.lr);
    for (const name of names) {
      const p = adam.params[name];
      const decay = adam.weightDecay > 0 && adam.decay.has(name) ? o.lr * adam.weightDecay : 0;
      this.#native.symbols.rtd_adamw(
        this.threads,
        BigInt(p.size),
        heapPointer(p, name),
        heapPointer(grads[name], `gradient of ${name}`),
        heapPointer(adam.m[name], `m of ${name}`),
        heapPointer(adam.v[name], `v of ${name}`),
        scale,
        stepSize,
        adam.beta1,
        adam.beta2,
        adam.eps,
        decay,
      );
    }
    return norm;
  }
}

/** The native update where it can run (wasm backend, library built), else null and the reason. */
export function nativeAdamW(): { adamw: NativeAdamW; reason?: undefined } | {
  adamw: null;
  reason: string;
} {
  if (!wasmBackend()) return { adamw: null, reason: `backend ${tf.getBackend()}, not wasm` };
  const r = loadNative();
  if (!r.native) return { adamw: null, reason: r.reason };
  return { adamw: new NativeAdamW(r.native, nativeThreads()) };
}
