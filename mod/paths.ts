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
import { join } from "node:path";

export interface RunPaths {
  data: string;
  results: string;
  mix: string;
  composition: string;
  tokens: string;
  transformerDir: string;
  activationsDir: string;
  saeDir: (features: number) => string;
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
    saeDir: (features: number) => join(results, "sae", `f${features}`),
    scaling: join(results, "scaling.parquet"),
    reportDir: join(results, "report"),
  };
}

/** The project root (the folder holding deno.json), from this file's location. */
export const PROJECT_ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** The folder of an installed npm package (deno.json sets nodeModulesDir to "auto"). */
export function npmPackageDir(name: string): string {
  return join(PROJECT_ROOT, "node_modules", name);
}
