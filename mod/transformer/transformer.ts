/**
 * The one-layer transformer of the seed paper and Anthropic's "Towards Monosemanticity", as a pure
 * module (no files, no CLI): one import for everything a stage needs.
 *
 *   import { createTransformer, transformerConfig, trainStep, makeOptimizer } from "./transformer.ts";
 *   const cfg = transformerConfig({ dModel: 128, nCtx: 128, dVocab: GPT2_VOCAB_SIZE });
 *   const model = createTransformer(cfg, { seed: 0 });
 *   const opt = makeOptimizer(model, { lr: 1e-3, weightDecay: 0.1 });
 *   const loss = await trainStep(model, opt, tokensBT, { lr: lrSchedule(step, sched), clipNorm: 1 });
 *
 * - transformer_model.ts: config, TransformerLens-named parameters, init, forward pass and hooks;
 * - transformer_train.ts: loss, evaluation, training step, learning-rate schedule;
 * - transformer_ops.ts: the fused chunked cross-entropy and the embedding gather (custom grads);
 * - transformer_io.ts: safetensors save/load under TransformerLens names and shapes;
 * - transformer_sample.ts: greedy / temperature / top-k sampling with a seeded generator.
 *
 * @module
 */
export {
  addToMlpPost,
  createTransformer,
  disposeTransformer,
  forward,
  type ForwardOptions,
  type ForwardOutput,
  lastResidual,
  layerNorm,
  LN_EPS,
  matrixParamNames,
  mlpActivations,
  type MlpPostHook,
  PARAM_NAMES,
  type ParamName,
  paramShapes,
  replaceMlpPost,
  type Transformer,
  type TransformerConfig,
  transformerConfig,
  transformerFromWeights,
  type TransformerHooks,
  validateConfig,
} from "./model.ts";
export {
  evalLoss,
  lossFn,
  type LossOptions,
  lrSchedule,
  type LrScheduleOptions,
  makeOptimizer,
  type SplitLoss,
  splitLoss,
  tokenLosses,
  trainStep,
  type TrainStepOptions,
  trainStepStats,
} from "./train.ts";
export {
  chunkedTokenLosses,
  embedLookup,
  type FusedCeOptions,
  fusedCrossEntropy,
  plainCrossEntropy,
} from "./ops.ts";
export { CONFIG_METADATA_KEY, loadTransformer, saveTransformer, transformerWeights } from "./io.ts";
export { pickToken, sample, type SampleOptions } from "./sample.ts";
