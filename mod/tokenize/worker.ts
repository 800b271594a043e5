/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * Worker for mod/tokenize/encode.ts: encodes a batch of documents with the GPT-2 tokenizer and sends back
 * one flat Uint16Array of ids plus each document's length (both transferred, not copied).
 *
 * @module
 */
import { createTokenizer, type Gpt2Tokenizer } from "./tokenizer.ts";

let tokenizer: Gpt2Tokenizer | null = null;

self.onmessage = (e: MessageEvent<{ encoder: string; texts: string[]; id: number }>) => {
  const { encoder, texts, id } = e.data;
  tokenizer ??= createTokenizer(encoder);
  const parts: (Uint32Array | number[])[] = texts.map((t) => tokenizer!.encode(t));
  const lengths = new Uint32Array(parts.map((p) => p.length));
  const ids = new Uint16Array(lengths.reduce((a, b) => a + b, 0));
  let pos = 0;
  for (const p of parts) {
    ids.set(p, pos);
    pos += p.length;
  }
  self.postMessage({ id, lengths, ids }, [lengths.buffer, ids.buffer]);
};
