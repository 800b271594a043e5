/**
 * Prompt-token estimates before a run. With the "tiktoken" package (wasm; loading it reads its
 * .wasm file, so it is tried only when Deno grants read access, else we never prompt) we count
 * with o200k_base for the gpt-4o / gpt-4.1 / gpt-5 / o-series families and cl100k_base for
 * gpt-4 and gpt-3.5; other models (any OpenAI-compatible server) get o200k_base as an
 * approximation. Without tiktoken the estimate is characters / 4. `method` says which was used.
 * Each chat message adds 4 tokens of framing and each request 3 (OpenAI's cookbook rule).
 *
 * @module
 */
import type { ChatMessage } from "./types.ts";

export interface TokenCounter {
  /** e.g. "tiktoken o200k_base" or "chars/4 (tiktoken unavailable: ...)". */
  method: string;
  count(text: string): number;
  /** Releases the wasm encoder. */
  free(): void;
}

/** The tiktoken encoding of an OpenAI model name (o200k_base when unknown). */
export function encodingForModel(model: string): "o200k_base" | "cl100k_base" {
  const m = model.toLowerCase().replace(/^.*\//, "");
  if (/^(gpt-4o|chatgpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|gpt-oss|o\d)/.test(m)) return "o200k_base";
  if (/^(gpt-4|gpt-3\.5|text-embedding-3|text-embedding-ada)/.test(m)) return "cl100k_base";
  return "o200k_base";
}

/** The characters / 4 fallback. */
export function charsCounter(reason: string): TokenCounter {
  return { method: `chars/4 (${reason})`, count: (t) => Math.ceil(t.length / 4), free: () => {} };
}

/** A tiktoken counter for `model`, or the chars/4 fallback when tiktoken cannot load. */
export async function createTokenCounter(model: string): Promise<TokenCounter> {
  const encoding = encodingForModel(model);
  const read = await Deno.permissions.query({ name: "read" });
  if (read.state !== "granted") return charsCounter("tiktoken needs --allow-read");
  try {
    const { get_encoding } = await import("tiktoken");
    const enc = get_encoding(encoding);
    return {
      method: `tiktoken ${encoding}`,
      // "all": GPT-2 corpora contain "<|endoftext|>" as text; count it rather than throw.
      count: (t) => enc.encode(t, "all").length,
      free: () => enc.free(),
    };
  } catch (e) {
    return charsCounter(`tiktoken unavailable: ${(e as Error).message.split("\n")[0]}`);
  }
}

/** Prompt tokens of a chat request. */
export function chatTokens(counter: TokenCounter, messages: readonly ChatMessage[]): number {
  let n = 3;
  for (const m of messages) n += 4 + counter.count(m.content);
  return n;
}
