/**
 * Configuration of SweepTrainer (mod/sae_trainer.ts): one SaeTrainConfig per dictionary of the
 * sweep, one SweepOptions for the stream, and the validation that fills in defaults and names the
 * value that is wrong.
 *
 * @module
 */
import type { SaeArchitecture } from "./sae.ts";
import type { SaeGradsFn } from "./sae_grads.ts";

export interface SaeTrainConfig {
  /** Label in logs and checkpoints; default `f<dSae>` (plus `-topk<k>` for TopK). */
  name?: string;
  dSae: number;
  architecture?: SaeArchitecture;
  k?: number;
  l1Coefficient: number;
  lr: number;
  beta1?: number;
  beta2?: number;
  /** Steps (1-based, after that step's update) at which dead features are resampled. */
  resampleSteps?: number[];
  /** Steps without firing after which a feature counts as dead. */
  deadWindow?: number;
  /** Seeds the decoder init and the resampling draws; default opts.seed + index. */
  seed?: number;
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
}

/** A config with every default filled in. */
export type ResolvedTrainConfig = Required<Omit<SaeTrainConfig, "name" | "k">> & { k?: number };

/** Validates one SAE's training config and fills its defaults (deadWindow 1000, Adam betas). */
export function resolveTrainConfig(
  c: SaeTrainConfig,
  defaultSeed: number,
): { name: string; cfg: ResolvedTrainConfig } {
  const architecture = c.architecture ?? "standard";
  const name = c.name ?? (architecture === "topk" ? `f${c.dSae}-topk${c.k ?? ""}` : `f${c.dSae}`);
  if (!(c.lr > 0)) throw new Error(`SAE "${name}" lr "${c.lr}" must be positive`);
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
    lr: c.lr,
    beta1: c.beta1 ?? 0.9,
    beta2: c.beta2 ?? 0.999,
    resampleSteps,
    deadWindow,
    seed: c.seed ?? defaultSeed,
  };
  return { name, cfg };
}
