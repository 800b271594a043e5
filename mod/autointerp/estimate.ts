/**
 * What a run would cost before it runs: the prompt tokens of every request scoreFeature would
 * send (the same example split and prompts, with a fixed placeholder in place of the explanation
 * that does not exist yet), counted as tokens.ts says, and the sum of the completion limits.
 *
 * @module
 */
import { classifyMaxTokens, fuzzingItems } from "./detection.ts";
import { EXPLAIN_MAX_TOKENS } from "./explain.ts";
import { maxActivation, rngFor } from "./format.ts";
import { prepareFeature, resolveOptions } from "./pipeline.ts";
import {
  detectionMessages,
  explainMessages,
  fuzzingMessages,
  simulateMessages,
} from "./prompts.ts";
import { simulationMaxTokens } from "./simulate.ts";
import { chatTokens, createTokenCounter } from "./tokens.ts";
import type { FeatureInput, ScoreOptions } from "./types.ts";

/** What a run would cost, before it runs. */
export interface RunEstimate {
  /** How tokens were counted (tiktoken encoding or chars/4). */
  method: string;
  features: number;
  requests: number;
  promptTokens: number;
  /** Sum of the completion limits asked for: an upper bound. */
  maxCompletionTokens: number;
}

const PLACEHOLDER_EXPLANATION =
  "a placeholder explanation of about a dozen words saying what this feature responds to";

/** Prompt tokens of every request a run would send (explanations replaced by a placeholder). */
export async function estimateRun(
  model: string,
  features: readonly FeatureInput[],
  opts: ScoreOptions = {},
): Promise<RunEstimate> {
  const o = resolveOptions(opts);
  const counter = await createTokenCounter(model);
  const est: RunEstimate = {
    method: counter.method,
    features: features.length,
    requests: 0,
    promptTokens: 0,
    maxCompletionTokens: 0,
  };
  const add = (messages: Parameters<typeof chatTokens>[1], maxTokens: number) => {
    est.requests++;
    est.promptTokens += chatTokens(counter, messages);
    est.maxCompletionTokens += maxTokens;
  };
  try {
    for (const feature of features) {
      const prep = prepareFeature(feature, o);
      const ex = PLACEHOLDER_EXPLANATION;
      add(
        explainMessages(prep.explain, maxActivation(prep.explain), o.repeatNonZeroBelow),
        EXPLAIN_MAX_TOKENS,
      );
      if (o.simulation) {
        const counts = prep.simulation.map((e) => e.tokens.length);
        add(simulateMessages(ex, prep.simulation), simulationMaxTokens(counts));
      }
      if (o.detection) {
        const all = [...prep.detectionActivating, ...prep.detectionSilent].map((e) => e.tokens);
        for (let i = 0; i < all.length; i += o.detection.batchSize) {
          const batch = all.slice(i, i + o.detection.batchSize);
          add(detectionMessages(ex, batch), classifyMaxTokens(batch.length));
        }
      }
      if (o.fuzzing) {
        const texts = fuzzingItems(
          prep.fuzzing,
          o.fuzzing.threshold,
          rngFor(o.seed, feature.id, "x"),
        )
          .map((x) => x.item);
        for (let i = 0; i < texts.length; i += o.fuzzing.batchSize) {
          const batch = texts.slice(i, i + o.fuzzing.batchSize);
          add(fuzzingMessages(ex, batch), classifyMaxTokens(batch.length));
        }
      }
    }
  } finally {
    counter.free();
  }
  return est;
}
