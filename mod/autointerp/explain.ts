/**
 * Explain step: show the explainer a feature's top-activating examples on the 0-10 scale and
 * parse its one-sentence answer.
 *
 * Parsing keeps the first non-empty line, drops a leading "Explanation...:" label and a repeated
 * "the main thing this feature (or neuron) does is find" phrase, markdown asterisks and
 * backticks, trailing punctuation, and quotes that wrap the whole answer (a quote that only ends
 * it, as in 'the word "cat".', stays). An empty result is an error.
 *
 * @module
 */
import { type ChatFn, type ChatResult, requestParams, type RequestSettings } from "./client.ts";
import { maxActivation } from "./format.ts";
import { explainMessages } from "./prompts.ts";
import type { ActivationExample } from "./types.ts";

const LABEL = /^(?:explanation(?: of [^:]{0,60})?|answer)\s*:\s*/i;
const PREFIX =
  /^(?:the main thing this (?:feature|neuron|latent) does is (?:to )?(?:find(?:s|ing)?|look(?:ing)? for|detect)\s*)/i;
const QUOTES: Record<string, string> = {
  '"': '"',
  "'": "'",
  "\u201c": "\u201d",
  "\u2018": "\u2019",
};

/** Strips markdown emphasis, trailing punctuation and a surrounding pair of quotes, repeatedly. */
function trimEdges(text: string): string {
  let s = text, prev;
  do {
    prev = s;
    s = s.trim().replace(/^[*`]+|[*`]+$/g, "").replace(/[.!;:,]+$/, "").trim();
    const open = s[0], close = s.at(-1);
    const inner = s.slice(1, -1);
    if (
      s.length >= 2 && QUOTES[open] === close && !inner.includes(open) && !inner.includes(close!)
    ) {
      s = inner;
    }
  } while (s !== prev);
  return s;
}

/** Room for one sentence (and a model that repeats the prompt's phrase first). */
export const EXPLAIN_MAX_TOKENS = 120;

/** The explanation in a model's answer; throws when nothing is left. */
export function parseExplanation(answer: string): string {
  const line = answer.split("\n").map((l) => l.trim()).find((l) => l !== "") ?? "";
  const s = trimEdges(trimEdges(trimEdges(line).replace(LABEL, "")).replace(PREFIX, ""));
  if (s === "") throw new Error(`explanation answer ${JSON.stringify(answer)} is empty`);
  return s;
}

/** Asks for an explanation of `examples`; errors name the feature. */
export async function explain(
  chat: ChatFn,
  featureId: number,
  examples: readonly ActivationExample[],
  settings: RequestSettings,
  opts: { repeatNonZeroBelow?: number } = {},
): Promise<{ explanation: string; response: ChatResult }> {
  const maxAct = maxActivation(examples);
  if (!(maxAct > 0)) {
    throw new Error(`Feature ${featureId}: no positive activation in its top examples`);
  }
  const response = await chat({
    messages: explainMessages(examples, maxAct, opts.repeatNonZeroBelow),
    params: requestParams(settings, EXPLAIN_MAX_TOKENS),
    label: `Feature ${featureId} explanation`,
  });
  try {
    return { explanation: parseExplanation(response.content), response };
  } catch (e) {
    throw new Error(`Feature ${featureId}: ${(e as Error).message}`);
  }
}
