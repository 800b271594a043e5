/**
 * Autointerpretability of SAE features through an OpenAI-compatible API: explain -> simulate ->
 * score (after Bills et al. 2023; the simulation is one chat prompt holding every held-out
 * context, see simulate.ts) and delphi's detection and fuzzing scorers (Paulo et al. 2024), with
 * a cached, retrying, rate-limited client. Examples are split between explainer and scorers by
 * sequence (pipeline.ts). Pure modules: the CLI is tasks/autointerp.ts.
 *
 * ```ts
 * const client = new AutointerpClient({ apiKey, baseURL, model: "gpt-4o-mini", cacheDir });
 * const estimate = await estimateRun(client.model, features);
 * const scores = await scoreFeatures(client, features, { seed: 0 });
 * ```
 *
 * @module
 */
export * from "./types.ts";
export {
  AutointerpClient,
  type ChatFn,
  type ChatRequest,
  type ChatResult,
  type ClientOptions,
  type ClientUsage,
  createLimiter,
  mapPool,
  type RequestSettings,
  retryAfterMs,
} from "./client.ts";
export { cacheKey, type CacheRecord, ResponseCache } from "./cache.ts";
export { redact } from "./redact.ts";
export { cropExample, escapeToken, highlight, nonZeroProportion, normaliseActs } from "./format.ts";
export { EXAMPLE_COLUMNS, featureInputsFromTable } from "./inputs.ts";
export {
  DETECTION_SYSTEM,
  detectionMessages,
  EXPLAIN_SYSTEM,
  explainMessages,
  EXPLANATION_PREFIX,
  formatRecord,
  FUZZING_SYSTEM,
  fuzzingMessages,
  REPEAT_NONZERO_BELOW,
  SIMULATE_SYSTEM,
  simulateMessages,
} from "./prompts.ts";
export { explain, parseExplanation } from "./explain.ts";
export { expectedValueAt, parseSimulation, simulate, simulatedValues } from "./simulate.ts";
export { binaryScores, pearson, simulationScore } from "./score.ts";
export { detection, fuzzing, fuzzingItems, parseBinaryList } from "./detection.ts";
export { chatTokens, createTokenCounter, encodingForModel, type TokenCounter } from "./tokens.ts";
export {
  DEFAULT_DETECTION,
  DEFAULT_FUZZING,
  type PreparedFeature,
  prepareFeature,
  type ResolvedOptions,
  resolveOptions,
  scoreFeature,
  scoreFeatures,
} from "./pipeline.ts";
export { estimateRun, type RunEstimate } from "./estimate.ts";
