/**
 * On-disk cache of chat completions: one JSON file per request, `<dir>/<key>.json`, where key is
 * the sha-256 (hex) of the canonical JSON of { model, messages, params } (object keys sorted, so
 * the key does not depend on the order options were written in). The base URL and the API key are
 * not part of the key and never part of the file. A cached response is served without a network
 * request, so an interrupted run resumes where it stopped without paying twice. Files are written
 * atomically (mod/io/fs.ts); a file that cannot be parsed counts as a miss and is rewritten.
 *
 * @module
 */
import { join } from "node:path";
import { writeFileAtomic } from "../io/mod.ts";
import { canonicalJson } from "../run/mod.ts";
import { redact } from "./redact.ts";
import type { ChatMessage, TokenLogprob } from "./types.ts";

/** What identifies a request: model, messages and every other body parameter. */
export interface CachedRequest {
  model: string;
  messages: ChatMessage[];
  params: Record<string, unknown>;
}

/** The parts of a chat completion the scorers use. */
export interface CachedResponse {
  content: string;
  logprobs: TokenLogprob[] | null;
  promptTokens: number;
  completionTokens: number;
  finishReason: string | null;
  model: string;
}

/** One cache file. */
export interface CacheRecord {
  key: string;
  request: CachedRequest;
  response: CachedResponse;
  createdAt: string;
}

/** sha-256 hex of the canonical JSON of a request. */
export async function cacheKey(request: CachedRequest): Promise<string> {
  const bytes = new TextEncoder().encode(canonicalJson(request));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A folder of cache files; `secrets` are redacted from anything written. */
export class ResponseCache {
  readonly dir: string;
  readonly #secrets: readonly string[];

  constructor(dir: string, secrets: readonly string[] = []) {
    this.dir = dir;
    this.#secrets = secrets;
  }

  path(key: string): string {
    return join(this.dir, `${key}.json`);
  }

  async get(key: string): Promise<CacheRecord | null> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.path(key));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw new Error(`Cannot read cache file "${this.path(key)}": ${(e as Error).message}`);
    }
    try {
      const record = JSON.parse(text) as CacheRecord;
      return record?.key === key && typeof record.response?.content === "string" ? record : null;
    } catch {
      return null;
    }
  }

  async put(record: CacheRecord): Promise<void> {
    const text = redact(JSON.stringify(record, null, 2), this.#secrets) + "\n";
    await writeFileAtomic(this.path(record.key), text);
  }
}
