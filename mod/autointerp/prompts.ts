/**
 * The prompts of the four model calls, as chat messages.
 *
 * Explain and simulate follow Bills et al. 2023 ("Language models can explain neurons in language
 * models"): each example is written between <start> and <end>, one token a line as
 * "token<TAB>activation" with activations on the 0-10 scale of format.ts (tokens escaped so that a
 * newline token cannot break the layout). The explainer sees the non-zero lines again (Bills'
 * "all zeros filtered out" section) only when fewer than 20% of the tokens shown have a non-zero
 * value, Bills' rule (REPEAT_NONZERO_BELOW, configurable), and its answer continues "the main thing
 * this feature does is find". The simulator gets the explanation and every held-out context in
 * one prompt, tokens with "unknown" in place of the value, after one fixed worked example (Bills'
 * few-shot "vowels" feature), and writes every line back with an integer. That is an adaptation
 * to chat APIs, not Bills' exact method, which sends one prompt per sequence and reads the
 * expected value from the logprobs at each "unknown" position (see simulate.ts).
 *
 * Detection and fuzzing follow delphi (Paulo et al. 2024): numbered examples of plain text, the
 * answer a Python-style list of 1s and 0s, one per example.
 *
 * @module
 */
import { contextText, escapeToken, nonZeroProportion, normaliseActs } from "./format.ts";
import type { ActivationExample, ChatMessage } from "./types.ts";

/** The phrase the explanation continues; simulation prompts repeat it before the explanation. */
export const EXPLANATION_PREFIX = "the main thing this feature does is find";

export const EXPLAIN_SYSTEM =
  "We're studying features in a neural network. Each feature looks for some particular thing " +
  "in a short document. Look at the parts of the document the feature activates for and " +
  "summarize in a single sentence what the feature is looking for. Don't list examples of " +
  "words.\n\nThe activation format is token<tab>activation. Activation values range from 0 to " +
  "10. A feature finding what it's looking for is represented by a non-zero activation value. " +
  "The higher the activation value, the stronger the match.";

export const SIMULATE_SYSTEM =
  "We're studying features in a neural network. Each feature looks for some particular thing " +
  "in a short document. Look at an explanation of what the feature does, and try to predict " +
  "its activations on each token.\n\nThe activation format is token<tab>activation, " +
  "activations go from 0 to 10, and most activations will be 0. Each example is given between " +
  '<start> and <end>, one token a line, with the activation written as "unknown". Reply with ' +
  "the same examples in the same order, each between <start> and <end>, one line per token, " +
  'with "unknown" replaced by an integer from 0 to 10. Copy every token line, including lines ' +
  "of whitespace or punctuation tokens, and write nothing else.";

export const DETECTION_SYSTEM =
  "You are an intelligent and meticulous linguistics researcher.\n\nYou will be given a " +
  'certain feature of text, such as "male pronouns" or "text with negative sentiment".\n\n' +
  "You will then be given several text examples. Your task is to determine which examples " +
  "possess the feature.\n\nFor each example in turn, return 1 if the example possesses the " +
  "feature or 0 if it does not. You must return your response in a valid Python list, one " +
  "number per example. Do not return anything else besides a Python list.";

export const FUZZING_SYSTEM =
  "You are an intelligent and meticulous linguistics researcher.\n\nYou will be given a " +
  'certain feature of text, such as "male pronouns" or "text with negative sentiment".\n\n' +
  "You will then be given several text examples. In each, some tokens are highlighted between " +
  "<< and >>. Your task is to determine whether the highlighted tokens are the ones the " +
  "feature describes.\n\nFor each example in turn, return 1 if the highlighted tokens are " +
  "correctly chosen for the feature or 0 if they are not. You must return your response in a " +
  "valid Python list, one number per example. Do not return anything else besides a Python list.";

/** One example as "<start>\ntok\tval\n...\n<end>"; `values` may be numbers or "unknown". */
export function formatRecord(
  tokens: readonly string[],
  values: readonly (number | string)[],
): string {
  const lines = tokens.map((t, i) => `${escapeToken(t)}\t${values[i]}`);
  return ["<start>", ...lines, "<end>"].join("\n");
}

/** Bills et al. repeat the non-zero lines only below this fraction of non-zero tokens. */
export const REPEAT_NONZERO_BELOW = 0.2;

/**
 * Messages asking for an explanation of examples normalised against `maxAct`; the non-zero lines
 * are repeated when the fraction of non-zero values is below `repeatNonZeroBelow`.
 */
export function explainMessages(
  examples: readonly ActivationExample[],
  maxAct: number,
  repeatNonZeroBelow = REPEAT_NONZERO_BELOW,
): ChatMessage[] {
  const full: string[] = [];
  const nonzero: string[] = [];
  for (const ex of examples) {
    const vals = normaliseActs(ex.acts, maxAct);
    full.push(formatRecord(ex.tokens, vals));
    const keep = vals.map((v, i) => (v > 0 ? i : -1)).filter((i) => i >= 0);
    nonzero.push(formatRecord(keep.map((i) => ex.tokens[i]), keep.map((i) => vals[i])));
  }
  const repeat = nonZeroProportion(examples, maxAct) < repeatNonZeroBelow;
  const user = `Activations:\n${full.join("\n")}\n\n` +
    (repeat
      ? `Same activations, but with all zeros filtered out:\n${nonzero.join("\n")}\n\n`
      : "") +
    `Explanation of the feature's behavior: ${EXPLANATION_PREFIX}`;
  return [
    { role: "system", content: EXPLAIN_SYSTEM },
    { role: "user", content: user },
  ];
}

const FEW_SHOT_USER = `Explanation of the feature's behavior: ${EXPLANATION_PREFIX} vowels\n\n` +
  formatRecord(["a", "b", "c"], ["unknown", "unknown", "unknown"]) + "\n" +
  formatRecord(["d", "e", "f"], ["unknown", "unknown", "unknown"]);
const FEW_SHOT_ASSISTANT = formatRecord(["a", "b", "c"], [10, 0, 0]) + "\n" +
  formatRecord(["d", "e", "f"], [0, 10, 0]);

/** Messages asking to simulate `examples` (tokens only) from an explanation. */
export function simulateMessages(
  explanation: string,
  examples: readonly { tokens: readonly string[] }[],
): ChatMessage[] {
  const records = examples.map((ex) => formatRecord(ex.tokens, ex.tokens.map(() => "unknown")));
  const user = `Explanation of the feature's behavior: ${EXPLANATION_PREFIX} ${explanation}\n\n` +
    records.join("\n");
  return [
    { role: "system", content: SIMULATE_SYSTEM },
    { role: "user", content: FEW_SHOT_USER },
    { role: "assistant", content: FEW_SHOT_ASSISTANT },
    { role: "user", content: user },
  ];
}

/** Messages of one detection batch: whole contexts, numbered from 0. */
export function detectionMessages(
  explanation: string,
  contexts: readonly string[][],
): ChatMessage[] {
  const lines = contexts.map((toks, i) => `Example ${i}: ${contextText(toks)}`);
  return [
    { role: "system", content: DETECTION_SYSTEM },
    {
      role: "user",
      content: `Feature explanation: ${explanation}\n\nText examples:\n\n${lines.join("\n")}`,
    },
  ];
}

/** Messages of one fuzzing batch: already highlighted texts, numbered from 0. */
export function fuzzingMessages(explanation: string, texts: readonly string[]): ChatMessage[] {
  const lines = texts.map((t, i) => `Example ${i}: ${t}`);
  return [
    { role: "system", content: FUZZING_SYSTEM },
    {
      role: "user",
      content: `Feature explanation: ${explanation}\n\nText examples:\n\n${lines.join("\n")}`,
    },
  ];
}
