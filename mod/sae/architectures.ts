/**
 * Which code trains each SAE architecture: the gradients (a SaeGradsFn), whether the native step
 * (mod/sae/native_step.ts: ReLU, TopK and BatchTopK without AuxK) can run it, and what a resample
 * does to the architecture's own tensors. The trainer asks here instead of branching on names.
 *
 *   standard, topk   grads.ts saeGrads, or the sweep's kernel choice (dense, sparse, native)
 *   batchtopk        batchtopk.ts batchTopKGrads, or the native step (+ the threshold's running
 *                    average either way)
 *   jumprelu         jumprelu.ts jumpReluGrads
 *   gated            gated.ts gatedGrads
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Adam } from "../transformer/mod.ts";
import type { Sae, SaeConfig } from "./sae.ts";
import { saeGrads, type SaeGradsFn } from "./grads.ts";
import { batchTopKGrads } from "./batchtopk.ts";
import { jumpReluGrads } from "./jumprelu.ts";
import { gatedGrads } from "./gated.ts";

/** True where `kernel` (a sweep's choice for ReLU and TopK SAEs) computes this SAE's gradients. */
export function usesSweepKernel(cfg: SaeConfig): boolean {
  return (cfg.architecture === "standard" || cfg.architecture === "topk") &&
    !((cfg.auxkCoefficient ?? 0) > 0);
}

/**
 * True where the native step can train this SAE: ReLU (standard), TopK and BatchTopK without the
 * AuxK loss. (Its encoder serves every architecture.)
 */
export function runsNative(cfg: SaeConfig): boolean {
  return ["standard", "topk", "batchtopk"].includes(cfg.architecture) &&
    !((cfg.auxkCoefficient ?? 0) > 0);
}

/** The gradients of this SAE: the sweep's kernel where it applies, else the architecture's own. */
export function gradsFor(cfg: SaeConfig, kernel: SaeGradsFn): SaeGradsFn {
  if (usesSweepKernel(cfg)) return kernel;
  switch (cfg.architecture) {
    case "batchtopk":
      return batchTopKGrads;
    case "jumprelu":
      return jumpReluGrads;
    case "gated":
      return gatedGrads;
    default:
      return saeGrads; // topk with AuxK: the dense tfjs gradients hold the AuxK term
  }
}

/**
 * After resample.ts has reset a dead feature's W_enc, b_enc and W_dec: its own tensors back to
 * their init (jumprelu's threshold to initThreshold, gated's b_mag and r_mag to 0), with their Adam
 * moments zeroed. batchtopk's threshold is shared by all features and left alone.
 */
export function resetExtras(sae: Sae, adam: Adam | null, dead: number[]): void {
  const init: Record<string, number> = sae.cfg.architecture === "jumprelu"
    ? { log_threshold: Math.log(sae.cfg.initThreshold ?? 1e-3) }
    : sae.cfg.architecture === "gated"
    ? { b_mag: 0, r_mag: 0 }
    : {};
  for (const [name, value] of Object.entries(init)) {
    const v = sae.extra[name];
    const data = Float32Array.from(v.dataSync());
    for (const i of dead) data[i] = value;
    tf.tidy(() => v.assign(tf.tensor1d(data)));
    adam?.resetMoments(name, dead, 0);
  }
}
