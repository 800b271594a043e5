/**
 * Train the one-layer transformer on the token sequences.
 *
 *   deno task train --preset demo [--backend wasm]
 *
 * Runs tokenize (and mix) first when out of date. Reads data/<run>/tokens.parquet. Writes
 * results/<run>/transformer/: model.safetensors (TransformerLens names, see README), config.json,
 * loss.parquet (step, tokens_seen, train_loss, val_loss on the first train.evalBatches validation
 * batches, lr, tokens_per_s) and summary.parquet (the final validation loss over the whole
 * validation split with its standard error, the final train loss, the unigram entropy of the
 * training tokens, throughput). Checkpoints every
 * train.checkpointEvery steps to checkpoint.safetensors; rerunning after a kill resumes there.
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
import { runTrainStage } from "../mod/transformer/stage.ts";

export { batchIndices, unigramEntropy } from "../mod/transformer/stage.ts";

export const SPEC: TaskSpec = {
  name: "train",
  summary: "Train the one-layer, 8-head transformer on data/<run>/tokens.parquet",
  details: "Writes results/<run>/transformer/. Resumes from its last checkpoint after a kill.",
  options: TENSOR_OPTIONS,
};

/** The train stage (mod/transformer/stage.ts): upstream stages first, skipped when current. */
export async function run(
  cfg: RunConfig,
  opts: { force?: boolean; backend?: string } = {},
): Promise<StageResult> {
  return await runTrainStage(cfg, opts);
}

export const main = stageMain(SPEC, run);

if (import.meta.main) await runMain(main);
