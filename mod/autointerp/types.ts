/**
 * Types shared by the autointerpretability modules: the input a feature brings (its example
 * contexts), the options of a scoring run, and the scores that come back.
 *
 * An example is one context window: the token strings as the tokenizer decodes them one by one
 * (e.g. " the", "\n") and the feature's activation on each token. `tokens.length` must equal
 * `acts.length`.
 *
 * @module
 */
import type { MaxTokensField } from "../run/mod.ts";

/**
 * One context: decoded token strings and the feature's activation on each token, and where it
 * lies (its held-out sequence and the position of its first token) when known. The split between
 * the explainer and the scorers is made by `seq`; examples without one count as sequences of
 * their own.
 */
export interface ActivationExample {
  tokens: string[];
  acts: number[];
  seq?: number;
  start?: number;
}

/** Everything the scorers need to know about one feature. */
export interface FeatureInput {
  /** Feature index within its SAE; used in error messages and seeds, never shown in prompts. */
  id: number;
  /** Max-activating contexts (any order: they are ranked by their max activation internally). */
  top: ActivationExample[];
  /** Contexts sampled from lower activation quantiles (optional; detection and fuzzing use them). */
  quantiles?: ActivationExample[];
  /**
   * Random contexts (the features stage takes them silent over the whole window). Simulation
   * scores them against their true activations; detection takes as negatives only those whose
   * every activation is 0.
   */
  random: ActivationExample[];
}

/** One chat message as the OpenAI chat.completions API takes it. */
export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/** One alternative at a sampled position, as in OpenAI's `top_logprobs`. */
export interface TopLogprob {
  token: string;
  logprob: number;
}

/** One sampled token with its alternatives, as in OpenAI's `logprobs.content[i]`. */
export interface TokenLogprob {
  token: string;
  logprob: number;
  top_logprobs: TopLogprob[];
}

/** Options of the detection scorer (delphi). */
export interface DetectionOptions {
  /** Activating contexts shown (half from held-out top examples, half from quantiles). */
  activating?: number;
  /** Silent contexts shown (random contexts whose every activation is 0; fewer if short). */
  silent?: number;
  /** Contexts per request. */
  batchSize?: number;
}

/** Options of the fuzzing scorer (delphi). */
export interface FuzzingOptions {
  /** Activating contexts shown; half are highlighted correctly, half on random tokens. */
  count?: number;
  /** Contexts per request. */
  batchSize?: number;
  /** A token is highlighted when its activation is > 0 and >= this fraction of its context's max. */
  threshold?: number;
}

/** Options of one feature's scoring run; every field has a default. */
export interface ScoreOptions {
  /** Seed of every shuffle and sample (combined with the feature id and the purpose). */
  seed?: number;
  /** Examples longer than this are cropped around their max token (3/4 of the window before). */
  maxContextTokens?: number;
  /** Top examples shown to the explainer (every other sequence by rank, at most ceil(n/2)). */
  explainCount?: number;
  /**
   * The explainer sees the non-zero (token, activation) lines again after the full listing only
   * when the fraction of non-zero scaled activations over the tokens shown is below this (Bills et
   * al.: 0.2, the default); 0 never repeats them, anything above 1 always does.
   */
  repeatNonZeroBelow?: number;
  /** Held-out top examples simulated. */
  simTopCount?: number;
  /** Random examples simulated. */
  simRandomCount?: number;
  /** Ask for logprobs in the simulation (expected value over "0".."10"); else parse integers. */
  logprobs?: boolean;
  /** top_logprobs requested when logprobs is on (OpenAI allows at most 20). */
  topLogprobs?: number;
  /** Run the simulation scorer. */
  simulation?: boolean;
  /** Run detection (false to skip). */
  detection?: boolean | DetectionOptions;
  /** Run fuzzing (false to skip). */
  fuzzing?: boolean | FuzzingOptions;
  /** Name of the completion length parameter: "max_tokens" or (for newer models) "max_completion_tokens". */
  maxTokensField?: MaxTokensField;
  /** Sampling temperature of every request (null leaves it out, for models that reject it). */
  temperature?: number | null;
  /** Extra request parameters merged into every request (part of the cache key). */
  extraParams?: Record<string, unknown>;
  /** Progress lines (stderr by default). */
  log?: (line: string) => void;
}

/** Confusion counts and the metrics derived from them (undefined ratios are 0, as sklearn's zero_division=0). */
export interface BinaryScores {
  n: number;
  tp: number;
  fp: number;
  tn: number;
  fn: number;
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
}

/** True and simulated activations of the held-out examples, in the order they were shown. */
export interface SimulationDetail {
  trueActs: number[][];
  simulatedActs: number[][];
  /** Positions whose value came from logprobs (expected value) or from the written integer. */
  fromLogprobs: number;
  fromWritten: number;
}

/** Tokens of the requests a feature made; cached responses are counted apart. */
export interface UsageCounts {
  requests: number;
  cachedRequests: number;
  promptTokens: number;
  completionTokens: number;
  cachedPromptTokens: number;
  cachedCompletionTokens: number;
}

/** How many contexts each step was given (after the split by sequence). */
export interface ExampleCounts {
  explain: number;
  simulation: number;
  detectionActivating: number;
  /** Random contexts silent over the whole window; fewer than asked when too few exist. */
  detectionSilent: number;
  fuzzing: number;
  /** Quantile and random contexts dropped because their sequence was shown to the explainer. */
  droppedSameSequence: number;
}

/** What scoreFeature returns. */
export interface FeatureScore extends UsageCounts {
  featureId: number;
  model: string;
  explanation: string | null;
  /** Pearson correlation x 100 between true and simulated activations, or null. */
  simulationScore: number | null;
  /** Why simulationScore is null (zero variance, failed request, malformed answer...). */
  simulationNullReason: string | null;
  simulation: SimulationDetail | null;
  detection: BinaryScores | null;
  fuzzing: BinaryScores | null;
  /** One message per failed step, each naming the feature. */
  errors: string[];
  /** sha-256 keys of the cache files holding this feature's prompts and responses. */
  cacheKeys: string[];
  /** Contexts per step, or null when the examples could not be prepared. */
  counts: ExampleCounts | null;
}
