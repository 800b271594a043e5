/**
 * Where a run's files live, and their names: one place for every output file name (as SAELens
 * keeps `sae_weights.safetensors` and `cfg.json` in one module).
 *
 * data/<run>/      inputs and intermediate datasets (mix, tokens, activations)
 * results/<run>/   models, metrics, plots, reports
 *
 * Both roots are relative to the working directory (deno task runs from the project root) unless
 * the config's dataDir / resultsDir say otherwise (tests point them at a temporary folder).
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { join } from "node:path";

export interface RunPaths {
  data: string;
  results: string;
  mix: string;
  composition: string;
  tokens: string;
  transformerDir: string;
  activationsDir: string;
  /**
   * An SAE's folder, results/<run>/sae/<saeDirName(features, slot)>: no slot (or a slot marked
   * primary, as saeSlots() marks them) = the primary f<N>.
   */
  saeDir: (features: number, slot?: SaeSlotId) => string;
  scaling: string;
  reportDir: string;
}

export function runPaths(cfg: { run: string; dataDir: string; resultsDir: string }): RunPaths {
  const data = join(cfg.dataDir, cfg.run);
  const results = join(cfg.resultsDir, cfg.run);
  return {
    data,
    results,
    mix: join(data, "mix.parquet"),
    composition: join(data, "composition.parquet"),
    tokens: join(data, "tokens.parquet"),
    transformerDir: join(results, "transformer"),
    activationsDir: join(data, "activations"),
    saeDir: (features: number, slot?: SaeSlotId) =>
      join(results, "sae", saeDirName(features, slot)),
    scaling: join(results, "scaling.parquet"),
    reportDir: join(results, "report"),
  };
}

/** One trained SAE of a size: its init and replicate (0-based). */
export interface SaeSlotId {
  init: string;
  replicate: number;
}

/**
 * The folder name of one SAE of the sweep: `f<N>` for the primary SAE of size N (the first of
 * sae.inits, replicate 0; the folder that features, steer, autointerp and report read) or when no
 * slot is given, else `f<N>-<init>-r<r>`, e.g. f4096-parallel-r0, f4096-independent-r1.
 */
export function saeDirName(
  features: number,
  slot?: SaeSlotId & { primary?: boolean },
): string {
  if (!slot || slot.primary) return `f${features}`;
  return `f${features}-${slot.init}-r${slot.replicate}`;
}

export interface SaeSlot extends SaeSlotId {
  size: number;
  /** First init, replicate 0: written to f<N>/. */
  primary: boolean;
  /** saeDirName of this slot (also its name in logs, checkpoints and summary.parquet). */
  name: string;
}

/**
 * Every SAE the sae stage trains, one per (init, replicate, size), in that nesting order: the
 * sizes of the first init's replicate 0, the primary SAEs, come first.
 */
export function saeSlots(sae: { sizes: number[]; inits: string[]; seeds: number }): SaeSlot[] {
  const out: SaeSlot[] = [];
  for (const [i, init] of sae.inits.entries()) {
    for (let replicate = 0; replicate < sae.seeds; replicate++) {
      for (const size of sae.sizes) {
        const primary = i === 0 && replicate === 0;
        out.push({
          size,
          init,
          replicate,
          primary,
          name: saeDirName(size, { init, replicate, primary }),
        });
      }
    }
  }
  return out;
}

/** The project root (the folder holding deno.json), from this file's location. */
export const PROJECT_ROOT = fileURLToPath(new URL("../..", import.meta.url)).replace(/\/$/, "");

/** The folder of an installed npm package (deno.json sets nodeModulesDir to "auto"). */
export function npmPackageDir(name: string): string {
  return join(PROJECT_ROOT, "node_modules", name);
}
