/**
 * The cheaper scorers of delphi (Paulo et al. 2024, "Automatically Interpreting Millions of
 * Features in LLMs"), one classification request per batch of contexts:
 *
 * - detection: the explanation and whole contexts, some activating and some silent; the model
 *   answers which ones the feature fires on.
 * - fuzzing: activating contexts with tokens highlighted << >>, half on the tokens the feature
 *   fires on (act > 0 and >= threshold x the context's max) and half on as many random other
 *   tokens; the model answers whether each highlighting is correct.
 *
 * Items are shuffled with a seeded PRNG before batching. The answer must contain a list like
 * "[1, 0, 1]" (the last such list counts; true/false are read as 1/0) with one value per example;
 * anything else is an error naming the feature, the scorer and the batch. Labels 1 = activating
 * (detection) or correctly highlighted (fuzzing).
 *
 * @module
 */
import { type ChatFn, requestParams, type RequestSettings } from "./client.ts";
import { activatingPositions, highlight, shuffled } from "./format.ts";
import { detectionMessages, fuzzingMessages } from "./prompts.ts";
import { binaryScores } from "./score.ts";
import type { ActivationExample, BinaryScores, ChatMessage } from "./types.ts";

/** One context to classify, with its true label. */
export interface ClassifyItem<T> {
  item: T;
  label: 0 | 1;
}

/** The 0/1 list in an answer, which must hold exactly `n` values. */
export function parseBinaryList(content: string, n: number): (0 | 1)[] {
  const lists = [...content.matchAll(/\[([^[\]]*)\]/g)]
    .map((m) => m[1].split(",").map((v) => v.trim().toLowerCase()).filter((v) => v !== ""))
    .filter((vals) => vals.every((v) => /^(0|1|true|false)$/.test(v)));
  const vals = lists.at(-1);
  if (!vals) {
    throw new Error(`answer ${JSON.stringify(content.slice(0, 200))} holds no list of 0s and 1s`);
  }
  if (vals.length !== n) throw new Error(`answer lists ${vals.length} values for ${n} examples`);
  return vals.map((v) => (v === "1" || v === "true" ? 1 : 0));
}

/** Completion room of one classification answer ("[1, 0, ...]" is about 2 tokens a value). */
export function classifyMaxTokens(n: number): number {
  return 32 + 4 * n;
}

/** Sends the items in shuffled batches and scores the answers against the labels. */
export async function classify<T>(
  chat: ChatFn,
  label: string,
  items: readonly ClassifyItem<T>[],
  toMessages: (batch: T[]) => ChatMessage[],
  settings: RequestSettings,
  opts: { batchSize: number; rng: () => number },
): Promise<BinaryScores> {
  if (items.length === 0) throw new Error(`${label}: no examples to score`);
  const order = shuffled(items, opts.rng);
  const batches: ClassifyItem<T>[][] = [];
  for (let i = 0; i < order.length; i += opts.batchSize) {
    batches.push(order.slice(i, i + opts.batchSize));
  }
  const answers = await Promise.all(batches.map(async (batch, b) => {
    const response = await chat({
      messages: toMessages(batch.map((x) => x.item)),
      params: requestParams(settings, classifyMaxTokens(batch.length)),
      label: `${label} batch ${b}`,
    });
    try {
      return parseBinaryList(response.content, batch.length);
    } catch (e) {
      throw new Error(`${label} batch ${b}: malformed answer: ${(e as Error).message}`);
    }
  }));
  return binaryScores(batches.flat().map((x) => x.label), answers.flat());
}

/** Detection over activating (label 1) and silent (label 0) contexts. */
export function detection(
  chat: ChatFn,
  featureId: number,
  explanation: string,
  activating: readonly ActivationExample[],
  silent: readonly ActivationExample[],
  settings: RequestSettings,
  opts: { batchSize: number; rng: () => number },
): Promise<BinaryScores> {
  const items: ClassifyItem<string[]>[] = [
    ...activating.map((ex) => ({ item: ex.tokens, label: 1 as const })),
    ...silent.map((ex) => ({ item: ex.tokens, label: 0 as const })),
  ];
  return classify(
    chat,
    `Feature ${featureId} detection`,
    items,
    (batch) => detectionMessages(explanation, batch),
    settings,
    opts,
  );
}

/**
 * Fuzzing items: the first ceil(n/2) examples (in the given order) highlighted where the feature
 * fires, the rest on as many random tokens where it does not. Examples with no activating token,
 * and wrong-half examples where every token activates, are left out.
 */
export function fuzzingItems(
  examples: readonly ActivationExample[],
  threshold: number,
  rng: () => number,
): ClassifyItem<string>[] {
  const usable = examples
    .map((ex) => ({ ex, pos: activatingPositions(ex.acts, threshold) }))
    .filter((x) => x.pos.length > 0);
  const nCorrect = Math.ceil(usable.length / 2);
  const items: ClassifyItem<string>[] = [];
  usable.forEach(({ ex, pos }, i) => {
    if (i < nCorrect) {
      items.push({ item: highlight(ex.tokens, pos), label: 1 });
      return;
    }
    const firing = new Set(pos);
    const others = ex.tokens.map((_, j) => j).filter((j) => !firing.has(j));
    if (others.length === 0) return;
    const wrong = shuffled(others, rng).slice(0, pos.length);
    items.push({ item: highlight(ex.tokens, wrong), label: 0 });
  });
  return items;
}

/** Fuzzing over activating contexts (see fuzzingItems). */
export function fuzzing(
  chat: ChatFn,
  featureId: number,
  explanation: string,
  examples: readonly ActivationExample[],
  settings: RequestSettings,
  opts: { batchSize: number; threshold: number; rng: () => number },
): Promise<BinaryScores> {
  return classify(
    chat,
    `Feature ${featureId} fuzzing`,
    fuzzingItems(examples, opts.threshold, opts.rng),
    (batch) => fuzzingMessages(explanation, batch),
    settings,
    opts,
  );
}
