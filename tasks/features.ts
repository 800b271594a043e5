/**
 * Read every SAE's dictionary: density histograms, max-activating examples, logit attribution and
 * the CE loss recovered with the SAE spliced into the transformer.
 *
 *   deno task features --preset demo
 *
 * Trains the SAEs first if they are out of date. Reads results/<run>/sae/f<N>/ (SAE, feature
 * stats), data/<run>/activations/heldout.parquet, data/<run>/tokens.parquet and the transformer.
 * Writes, per size, results/<run>/sae/f<N>/ (and with several sae.architectures, each other
 * architecture's f<N>-<arch>-<init>-r0/ of the first init): density_histogram.parquet,
 * examples.parquet, logits.parquet, loss_recovered.parquet; and
 * results/<run>/sae/features_summary.parquet (one row per SAE read: name, architecture, size, ...).
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
import { runFeaturesStage } from "../mod/features/stage.ts";

export const SPEC: TaskSpec = {
  name: "features",
  summary:
    "Density histograms, max-activating examples, logit attribution and loss recovered per SAE",
  details:
    "Writes results/<run>/sae/f<N>/{density_histogram,examples,logits,loss_recovered}.parquet.",
  options: TENSOR_OPTIONS,
};

/** The features stage (mod/features/stage.ts): upstream stages first, skipped when current. */
export async function run(
  cfg: RunConfig,
  opts: { force?: boolean; backend?: string } = {},
): Promise<StageResult> {
  return await runFeaturesStage(cfg, opts);
}

export const main = stageMain(SPEC, run);

if (import.meta.main) await runMain(main);
