/**
 * Train the SAE sweep: every dictionary size side by side, from one pass over the activations.
 *
 *   deno task sae --preset demo [--backend wasm]
 *
 * Caches activations first if they are out of date. Reads data/<run>/activations/. Trains one SAE
 * per (architecture in sae.architectures, or sae.architecture alone; init in sae.inits; replicate
 * < sae.seeds; size in sae.sizes), all from the same stream (each batch is read once), each seeded
 * by slotSeed(seed, init, size, replicate), the same for every architecture. Writes, per SAE, to
 * results/<run>/sae/f<N>/ for the primary SAE of size N (the first architecture and init,
 * replicate 0) and to results/<run>/sae/f<N>-<init>-r<r>/ for every other, or
 * f<N>-<arch>-<init>-r<r>/ when several architectures train (mod/run/layout.ts, saeDirName):
 * sae.safetensors + cfg.json (SAELens layout, plus init, seed and replicate), metrics.parquet
 * (per logging step: loss, mse, fve, l1, l0, dead fraction, resample events, tokens/s),
 * resamples.parquet (one row per resampling event) and feature_stats.parquet (per feature, on the
 * held-out shard: firing count, density, mean and max activation); and results/<run>/sae/
 * summary.parquet (one row per SAE: name, size, init, replicate, seed, architecture, its sparsity
 * key and value, held-out fve, mse, L0, dead fraction, tokens/s, ...). Checkpoints every sae.checkpointEvery steps; rerunning after a
 * kill resumes there. Before training it checks that every resample step comes before the last
 * step, and warns when fewer than 2 dead windows follow the last resample.
 *
 * @module
 */
import {
  type RunConfig,
  runMain,
  stageMain,
  type StageResult,
  type TaskSpec,
  TENSOR_OPTIONS,
} from "../mod/run/mod.ts";
import { runSaeStage } from "../mod/sae/stage.ts";

export { checkResampleSchedule } from "../mod/sae/stage.ts";

export const SPEC: TaskSpec = {
  name: "sae",
  summary: "Train SAEs of every configured size on the cached MLP activations",
  details:
    "Writes results/<run>/sae/f<N>/ per size. Resumes from its last checkpoint after a kill.",
  options: TENSOR_OPTIONS,
};

/** The sae stage (mod/sae/stage.ts): upstream stages first, skipped when its outputs are current. */
export async function run(
  cfg: RunConfig,
  opts: { force?: boolean; backend?: string } = {},
): Promise<StageResult> {
  return await runSaeStage(cfg, opts);
}

export const main = stageMain(SPEC, run);

if (import.meta.main) await runMain(main);
