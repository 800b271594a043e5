/**
 * Configuration of SweepTrainer (mod/sae/trainer.ts): one SaeTrainConfig per dictionary of the
 * sweep, one SweepOptions for the stream, and the validation that fills in defaults and names the
 * value that is wrong; the learning-rate schedule (lrAt) and the per-SAE seed (slotSeed).
 *
 * Learning-rate warm-up (dictionary_learning's StandardTrainer restarts it at every resample step):
 * with W = warmupSteps and r the latest restart point before step s (0, or a resample step < s),
 *   lr(s) = lr · min(1, (s − r) / W)        (s 1-based; W = 0: lr(s) = lr)
 * so the first update after a resample at step R (step R + 1) uses lr / W. A resample happens after
 * its step's update, and the warm-up restarts at every configured resample step, whether or not a
 * feature was dead there, so the schedule is a function of the step alone and a resumed run needs
 * no extra state. Adam's moments of the resampled parameters are zeroed by the resample itself.
 *
 * @module
 */
import { SAE_INITS, type SaeInit } from "../run/mod.ts";
import type { SaeArchitecture } from "./sae.ts";
import type { NativeSaeStep } from "./native_step.ts";
import type { SaeGradsFn } from "./grads.ts";

export interface SaeTrainConfig {
  /** Label in logs and checkpoints; default `f<dSae>` (plus `-topk<k>` for TopK). */
  name?: string;
  dSae: number;
  architecture?: SaeArchitecture;
  k?: number;
  l1Coefficient: number;
  /** jumprelu: λ₀ of the L0 penalty, kernel bandwidth ε and initial threshold (mod/sae/jumprelu.ts). */
  l0Coefficient?: number;
  bandwidth?: number;
  initThreshold?: number;
  /** topk, batchtopk: α of the AuxK loss (0 / absent = off) and k_aux (mod/sae/auxk.ts). */
  auxkCoefficient?: number;
  auxK?: number;
  /** batchtopk: rate of the threshold's running average (mod/sae/batchtopk.ts). */
  thresholdRate?: number;
  lr: number;
  beta1?: number;
  beta2?: number;
  /** Steps (1-based, after that step's update) at which dead features are resampled. */
  resampleSteps?: number[];
  /** Steps without firing after which a feature counts as dead. */
  deadWindow?: number;
  /** Seeds the weight init and the resampling draws; default opts.seed + index. */
  seed?: number;
  /** "independent" (2023, default) or "parallel" (W_enc = W_decᵀ, 2024); see mod/sae/sae.ts. */
  init?: SaeInit;
  /** Linear lr warm-up steps at the start and after each resample step; 0 (default) = none. */
  warmupSteps?: number;
}

export interface SweepOptions {
  dIn: number;
  /** Rows per gradient pass; larger batches are split and their gradients summed. */
  microBatch?: number;
  /** step() returns metrics every logEvery steps. */
  logEvery?: number;
  /** Rows kept in the reservoir that resampling draws from. */
  resampleInputs?: number;
  /** Rows of the first batch used for the geometric median that initialises b_dec. */
  medianSample?: number;
  /** Use this b_dec for every SAE instead of the geometric median. */
  bDecInit?: Float32Array;
  seed?: number;
  /** Replacement for saeGrads (e.g. a sparse-aware kernel). */
  gradsFn?: SaeGradsFn;
  /**
   * The native step (mod/sae/native_step.ts): gradients and update in native kernels. Takes
   * precedence over gradsFn. The trainer does not own it (the caller disposes it).
   */
  nativeStep?: NativeSaeStep;
}

/** Architecture-specific settings, passed through to the SAE's config as given. */
type ArchitectureSettings =
  | "k"
  | "l0Coefficient"
  | "bandwidth"
  | "initThreshold"
  | "auxkCoefficient"
  | "auxK"
  | "thresholdRate";

/** A config with every default filled in. */
export type ResolvedTrainConfig =
  & Required<Omit<SaeTrainConfig, "name" | ArchitectureSettings>>
  & Pick<SaeTrainConfig, ArchitectureSettings>;

/** Validates one SAE's training config and fills its defaults (deadWindow 1000, Adam betas). */
export function resolveTrainConfig(
  c: SaeTrainConfig,
  defaultSeed: number,
): { name: string; cfg: ResolvedTrainConfig } {
  const architecture = c.architecture ?? "standard";
  const name = c.name ??
    (architecture === "standard"
      ? `f${c.dSae}`
      : `f${c.dSae}-${architecture}${architecture.endsWith("topk") ? c.k ?? "" : ""}`);
  if (!(c.lr > 0)) throw new Error(`SAE "${name}" lr "${c.lr}" must be positive`);
  const init = c.init ?? "independent";
  if (!SAE_INITS.includes(init)) {
    throw new Error(`SAE "${name}" init "${init}" must be one of ${SAE_INITS.join(", ")}`);
  }
  const warmupSteps = c.warmupSteps ?? 0;
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0) {
    throw new Error(`SAE "${name}" warmupSteps "${warmupSteps}" must be a non-negative integer`);
  }
  const resampleSteps = [...(c.resampleSteps ?? [])];
  const deadWindow = c.deadWindow ?? 1000;
  if (!Number.isInteger(deadWindow) || deadWindow < 1) {
    throw new Error(`SAE "${name}" deadWindow "${deadWindow}" must be a positive integer`);
  }
  resampleSteps.forEach((s, i) => {
    if (!Number.isInteger(s) || s < 1 || (i > 0 && s <= resampleSteps[i - 1])) {
      throw new Error(
        `SAE "${name}" resampleSteps [${resampleSteps}] must be increasing positive integers`,
      );
    }
  });
  if (resampleSteps.length > 0 && resampleSteps[0] < deadWindow) {
    throw new Error(
      `SAE "${name}" first resample step ${resampleSteps[0]} comes before deadWindow ` +
        `${deadWindow} steps have passed, so no feature could count as dead`,
    );
  }
  const cfg: ResolvedTrainConfig = {
    dSae: c.dSae,
    architecture,
    k: c.k,
    l1Coefficient: c.l1Coefficient,
    l0Coefficient: c.l0Coefficient,
    bandwidth: c.bandwidth,
    initThreshold: c.initThreshold,
    auxkCoefficient: c.auxkCoefficient,
    auxK: c.auxK,
    thresholdRate: c.thresholdRate,
    lr: c.lr,
    beta1: c.beta1 ?? 0.9,
    beta2: c.beta2 ?? 0.999,
    resampleSteps,
    deadWindow,
    seed: c.seed ?? defaultSeed,
    init,
    warmupSteps,
  };
  return { name, cfg };
}

/** The learning rate of the update at 1-based `step` (the schedule in the module header). */
export function lrAt(
  step: number,
  cfg: { lr: number; warmupSteps: number; resampleSteps: readonly number[] },
): number {
  if (cfg.warmupSteps === 0) return cfg.lr;
  let restart = 0;
  for (const r of cfg.resampleSteps) if (r < step) restart = Math.max(restart, r);
  return cfg.lr * Math.min(1, (step - restart) / cfg.warmupSteps);
}

/**
 * The seed of one SAE of a sweep, from the run's seed, its init, size and replicate: a 32-bit
 * FNV-1a hash of the four, finished with a murmur3 mix, in [0, 2³¹) (so it fits an int32 column).
 * Deterministic; distinct slots get distinct seeds except with probability ~n²/2³² (the SAE stage
 * checks).
 */
export function slotSeed(
  seed: number,
  slot: { init: string; size: number; replicate: number },
): number {
  let h = 0x811c9dc5;
  for (const ch of `${seed}|${slot.init}|${slot.size}|${slot.replicate}`) {
    h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193);
  }
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0) & 0x7fffffff;
}
