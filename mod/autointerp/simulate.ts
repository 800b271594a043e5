/**
 * Simulate step: from the explanation alone, predict the feature's activations (0-10) on held-out
 * contexts. One chat prompt holds every held-out context; the model writes a value for every
 * token, and where the endpoint returns logprobs the value is the expected value over the
 * candidates "0".."10" at that position, else the integer written. This is a fair adaptation to
 * chat APIs, not Bills et al.'s (2023) method: they send one prompt per sequence with "unknown"
 * in place of each value and read the expected value from the logprobs at each of those positions,
 * so their simulator never sees its own earlier guesses or the other sequences.
 *
 * The answer must hold one <start>...<end> block per example, with one "token<TAB>integer" line
 * per token (blank lines ignored; the value is what follows the last tab). Anything else (a
 * missing block or line, a value that is not an integer 0-10) is an error naming the feature,
 * the example and the line.
 *
 * With logprobs, the value at each position is the expected value over the candidates "0".."10"
 * among the sampled token's top_logprobs, renormalised over those candidates. The sampled token
 * is found by its character offset in the answer (the logprob tokens must concatenate to the
 * answer); a token that starts before the number (e.g. "\t7") counts alternatives with the same
 * leading text. Where no token ends exactly with the written number, or no alternative is a
 * number, the written integer is used; SimulationDetail counts both cases.
 *
 * @module
 */
import { type ChatFn, type ChatResult, requestParams, type RequestSettings } from "./client.ts";
import { simulateMessages } from "./prompts.ts";
import type { TokenLogprob } from "./types.ts";

/** A written value: its integer and where it starts in the answer. */
export interface WrittenValue {
  value: number;
  offset: number;
  text: string;
}

const VALUE = /^(10|[0-9])$/;

/** Parses the written integers of an all-at-once answer; throws naming what is wrong. */
export function parseSimulation(content: string, tokenCounts: readonly number[]): WrittenValue[][] {
  const blocks: WrittenValue[][] = [];
  const blockRe = /<start>([\s\S]*?)<end>/g;
  for (let m = blockRe.exec(content); m; m = blockRe.exec(content)) {
    const bi = blocks.length;
    const values: WrittenValue[] = [];
    let lineStart = m.index + "<start>".length;
    for (const line of m[1].split("\n")) {
      if (line.trim() !== "") {
        const tab = line.lastIndexOf("\t");
        if (tab < 0) {
          throw new Error(`example ${bi} line ${values.length} ${JSON.stringify(line)} has no tab`);
        }
        const raw = line.slice(tab + 1);
        const text = raw.trim();
        if (!VALUE.test(text)) {
          throw new Error(
            `example ${bi} line ${values.length} value ${JSON.stringify(raw)} is not an ` +
              "integer from 0 to 10",
          );
        }
        const offset = lineStart + tab + 1 + (raw.length - raw.trimStart().length);
        values.push({ value: Number(text), offset, text });
      }
      lineStart += line.length + 1;
    }
    blocks.push(values);
  }
  if (blocks.length !== tokenCounts.length) {
    throw new Error(
      `answer has ${blocks.length} <start>...<end> examples, expected ${tokenCounts.length}`,
    );
  }
  blocks.forEach((values, i) => {
    if (values.length !== tokenCounts[i]) {
      throw new Error(
        `example ${i} has ${values.length} token lines, expected ${tokenCounts[i]}`,
      );
    }
  });
  return blocks;
}

/**
 * Expected value over "0".."10" at the number starting at `offset`, or null when the logprobs
 * cannot tell (see the module note). `starts[k]` is the answer offset of logprob token k.
 */
export function expectedValueAt(
  logprobs: readonly TokenLogprob[],
  starts: readonly number[],
  offset: number,
  written: string,
): number | null {
  let lo = 0, hi = starts.length - 1, k = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (starts[mid] <= offset) {
      k = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  if (k < 0) return null;
  const tok = logprobs[k];
  const prefix = tok.token.slice(0, offset - starts[k]);
  if (tok.token.slice(prefix.length).trimEnd() !== written) return null;
  let mass = 0, sum = 0;
  for (const alt of tok.top_logprobs) {
    if (!alt.token.startsWith(prefix)) continue;
    const rest = alt.token.slice(prefix.length).trimEnd();
    if (!VALUE.test(rest)) continue;
    const p = Math.exp(alt.logprob);
    mass += p;
    sum += p * Number(rest);
  }
  return mass > 0 ? sum / mass : null;
}

/** Simulated activations, from logprobs where possible, else the written integers. */
export function simulatedValues(
  content: string,
  tokenCounts: readonly number[],
  logprobs: readonly TokenLogprob[] | null,
): { values: number[][]; fromLogprobs: number; fromWritten: number } {
  const written = parseSimulation(content, tokenCounts);
  const starts: number[] = [];
  let joined = "";
  for (const t of logprobs ?? []) {
    starts.push(joined.length);
    joined += t.token;
  }
  const usable = logprobs !== null && logprobs.length > 0 && joined === content;
  let fromLogprobs = 0, fromWritten = 0;
  const values = written.map((block) =>
    block.map((w) => {
      const ev = usable ? expectedValueAt(logprobs!, starts, w.offset, w.text) : null;
      if (ev === null) {
        fromWritten++;
        return w.value;
      }
      fromLogprobs++;
      return ev;
    })
  );
  return { values, fromLogprobs, fromWritten };
}

/** Completion room: about 10 tokens a line (token echo, tab, number, newline) plus the frame. */
export function simulationMaxTokens(tokenCounts: readonly number[]): number {
  return 64 + tokenCounts.reduce((a, n) => a + 10 * n + 8, 0);
}

/** Runs the simulation; errors name the feature and, on a cut-off answer, the finish reason. */
export async function simulate(
  chat: ChatFn,
  featureId: number,
  explanation: string,
  examples: readonly { tokens: readonly string[] }[],
  settings: RequestSettings,
  opts: { logprobs: boolean; topLogprobs: number },
): Promise<
  { values: number[][]; fromLogprobs: number; fromWritten: number; response: ChatResult }
> {
  const counts = examples.map((ex) => ex.tokens.length);
  const extra = opts.logprobs ? { logprobs: true, top_logprobs: opts.topLogprobs } : {};
  const response = await chat({
    messages: simulateMessages(explanation, examples),
    params: requestParams(settings, simulationMaxTokens(counts), extra),
    label: `Feature ${featureId} simulation`,
  });
  try {
    return { ...simulatedValues(response.content, counts, response.logprobs), response };
  } catch (e) {
    const cut = response.finishReason === "length" ? " (answer cut off: finish_reason length)" : "";
    throw new Error(
      `Feature ${featureId}: malformed simulation answer: ${(e as Error).message}${cut}`,
    );
  }
}
