/**
 * Chat-completion client for autointerpretability: the real `openai` npm client pointed at any
 * OpenAI-compatible endpoint, with our own retries, a concurrency limit, a per-request timeout,
 * token accounting and an on-disk response cache (cache.ts).
 *
 * - The base URL and API key come from the caller (the task reads them from the environment):
 *   the openai client only honours OPENAI_BASE_URL when Deno grants --allow-env, so we never rely
 *   on it. Organization, project, admin key and webhook secret are passed (null unless given)
 *   so the client reads no environment for them; it still tries OPENAI_CUSTOM_HEADERS, which
 *   without --allow-env fails silently (run tasks with --no-prompt so it never prompts).
 * - The openai client's own retries are off (maxRetries: 0) so that ours run, and are testable:
 *   429, 5xx, connection errors and timeouts are retried up to `maxRetries` times; the wait is the
 *   server's retry-after-ms or Retry-After (seconds or an HTTP date) when sent, else exponential
 *   backoff baseDelayMs * 2^attempt (+-25% jitter, at most maxDelayMs). Other statuses fail at once.
 * - A cached response is returned before any slot of the pool is taken and with no network request.
 * - The API key never leaves: error and log text pass through redact(), errors are rebuilt as
 *   plain Errors (no `cause`, no headers), cache files are redacted too.
 *
 * @module
 */
import OpenAI, { APIConnectionError, APIError, APIUserAbortError } from "openai";
import { type CachedRequest, type CachedResponse, cacheKey, ResponseCache } from "./cache.ts";
import { redact } from "./redact.ts";
import type { ChatMessage, TokenLogprob, UsageCounts } from "./types.ts";
import type { MaxTokensField } from "../run/mod.ts";

export interface ClientOptions {
  /** Secret; kept in memory only. */
  apiKey: string;
  /** e.g. "https://api.openai.com/v1" or a local OpenAI-compatible server. */
  baseURL: string;
  model: string;
  /** Folder of the response cache (one JSON file per request). */
  cacheDir: string;
  /** Requests in flight at once (default 4). */
  concurrency?: number;
  /** Retries after the first attempt (default 5). */
  maxRetries?: number;
  /** Per-request timeout in milliseconds (default 120000). */
  timeoutMs?: number;
  /** First backoff wait when the server sends no Retry-After (default 1000 ms). */
  baseDelayMs?: number;
  /** Longest backoff wait (default 60000 ms); a server's Retry-After is honoured up to 10 min. */
  maxDelayMs?: number;
  organization?: string | null;
  project?: string | null;
  /** Retry notices (stderr by default); lines are redacted. */
  log?: (line: string) => void;
}

/** One chat request: messages plus body parameters other than model and messages. */
export interface ChatRequest {
  messages: ChatMessage[];
  params?: Record<string, unknown>;
  /** Prefix of errors and log lines, e.g. "Feature 12 simulation". */
  label?: string;
}

/** A response, with its cache key and whether it came from the cache. */
export interface ChatResult extends CachedResponse {
  key: string;
  cached: boolean;
}

/** What the scoring steps call: AutointerpClient.chat, or a wrapper that tallies per feature. */
export type ChatFn = (req: ChatRequest) => Promise<ChatResult>;

/** Body parameters shared by a run's requests, and the name of the length parameter. */
export interface RequestSettings {
  base: Record<string, unknown>;
  maxTokensField: MaxTokensField;
}

/** Body parameters of one request: the run's base, its completion limit, then `extra`. */
export function requestParams(
  settings: RequestSettings,
  maxTokens: number,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return { ...settings.base, [settings.maxTokensField]: maxTokens, ...extra };
}

/** Client-wide totals. */
export interface ClientUsage extends UsageCounts {
  retries: number;
}

const MAX_RETRY_AFTER_MS = 600_000;

/** Wait asked for by a response's retry-after-ms or Retry-After header, in ms, or null. */
export function retryAfterMs(headers: Headers | undefined | null, now = Date.now()): number | null {
  const ms = headers?.get("retry-after-ms");
  if (ms != null && ms.trim() !== "") {
    const v = Number(ms);
    if (Number.isFinite(v) && v >= 0) return v;
  }
  const ra = headers?.get("retry-after")?.trim();
  if (!ra) return null;
  if (/^\d+(\.\d+)?$/.test(ra)) return Number(ra) * 1000;
  const date = Date.parse(ra);
  return Number.isFinite(date) ? Math.max(0, date - now) : null;
}

/** A concurrency limit: run(fn) starts fn when fewer than `limit` runs are in flight. */
export function createLimiter(limit: number): <T>(fn: () => Promise<T>) => Promise<T> {
  if (!(Number.isInteger(limit) && limit >= 1)) {
    throw new Error(`Concurrency ${limit} must be an integer >= 1`);
  }
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (active >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await fn();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

/** Maps `fn` over `items` with at most `limit` calls in flight; results keep the input order. */
export async function mapPool<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const run = createLimiter(limit);
  return await Promise.all(items.map((item, i) => run(() => fn(item, i))));
}

function isRetryable(e: unknown): boolean {
  if (e instanceof APIUserAbortError) return false;
  if (e instanceof APIConnectionError) return true; // includes APIConnectionTimeoutError
  if (e instanceof APIError) return e.status === 429 || (e.status ?? 0) >= 500;
  return false;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The project's OpenAI client; see the module note. */
export class AutointerpClient {
  readonly model: string;
  readonly baseURL: string;
  readonly cache: ResponseCache;
  readonly usage: ClientUsage = {
    requests: 0,
    cachedRequests: 0,
    promptTokens: 0,
    completionTokens: 0,
    cachedPromptTokens: 0,
    cachedCompletionTokens: 0,
    retries: 0,
  };
  readonly #openai: OpenAI;
  readonly #secrets: string[];
  readonly #limit: <T>(fn: () => Promise<T>) => Promise<T>;
  readonly #inflight = new Map<string, Promise<CachedResponse>>();
  readonly #maxRetries: number;
  readonly #baseDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #log: (line: string) => void;

  constructor(opts: ClientOptions) {
    if (!opts.baseURL) throw new Error("OpenAI base URL is empty: pass baseURL explicitly");
    if (!opts.model) throw new Error("OpenAI model name is empty");
    this.model = opts.model;
    this.baseURL = opts.baseURL;
    this.#secrets = [opts.apiKey];
    this.cache = new ResponseCache(opts.cacheDir, this.#secrets);
    this.#limit = createLimiter(opts.concurrency ?? 4);
    this.#maxRetries = opts.maxRetries ?? 5;
    this.#baseDelayMs = opts.baseDelayMs ?? 1000;
    this.#maxDelayMs = opts.maxDelayMs ?? 60_000;
    const log = opts.log ?? ((line: string) => console.error(line));
    this.#log = (line) => log(redact(line, this.#secrets));
    this.#openai = new OpenAI({
      apiKey: opts.apiKey,
      baseURL: opts.baseURL,
      organization: opts.organization ?? null,
      project: opts.project ?? null,
      adminAPIKey: null,
      webhookSecret: null,
      maxRetries: 0,
      timeout: opts.timeoutMs ?? 120_000,
      logLevel: "off",
    });
  }

  /** Sends one chat completion, or returns it from the cache. */
  async chat(req: ChatRequest): Promise<ChatResult> {
    const request: CachedRequest = {
      model: this.model,
      messages: req.messages,
      params: req.params ?? {},
    };
    const key = await cacheKey(request);
    const hit = await this.cache.get(key);
    if (hit) return this.#count({ ...hit.response, key, cached: true });
    const pending = this.#inflight.get(key);
    if (pending) return this.#count({ ...(await pending), key, cached: true });
    const promise = this.#limit(() => this.#fetchWithRetries(request, req.label ?? "Request"));
    this.#inflight.set(key, promise);
    try {
      const response = await promise;
      await this.cache.put({ key, request, response, createdAt: new Date().toISOString() });
      return this.#count({ ...response, key, cached: false });
    } finally {
      this.#inflight.delete(key);
    }
  }

  #count(r: ChatResult): ChatResult {
    tallyUsage(this.usage, r);
    return r;
  }

  async #fetchWithRetries(request: CachedRequest, label: string): Promise<CachedResponse> {
    for (let attempt = 0;; attempt++) {
      try {
        return await this.#fetchOnce(request);
      } catch (e) {
        const what = e instanceof APIError && e.status
          ? `HTTP ${e.status}: ${e.message}`
          : (e as Error).message;
        if (!isRetryable(e) || attempt >= this.#maxRetries) {
          // A fresh Error: the original may hold response headers and a cause chain.
          throw new Error(
            redact(
              `${label}: request to model "${this.model}" failed after ${attempt + 1} ` +
                `attempt(s): ${what}`,
              this.#secrets,
            ),
          );
        }
        const asked = e instanceof APIError ? retryAfterMs(e.headers) : null;
        const backoff = Math.min(this.#maxDelayMs, this.#baseDelayMs * 2 ** attempt) *
          (0.75 + 0.5 * Math.random());
        const wait = asked !== null ? Math.min(asked, MAX_RETRY_AFTER_MS) : backoff;
        this.usage.retries++;
        this.#log(
          `${label}: ${what}; retry ${attempt + 1}/${this.#maxRetries} in ` +
            `${(wait / 1000).toFixed(1)} s`,
        );
        await sleep(wait);
      }
    }
  }

  async #fetchOnce(request: CachedRequest): Promise<CachedResponse> {
    const body = {
      ...request.params,
      model: request.model,
      messages: request.messages,
      stream: false,
    } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming;
    const res = await this.#openai.chat.completions.create(body);
    const choice = res.choices?.[0];
    if (!choice || typeof choice.message?.content !== "string") {
      throw new Error("the response has no message content");
    }
    const logprobs: TokenLogprob[] | null = choice.logprobs?.content
      ? choice.logprobs.content.map((t) => ({
        token: t.token,
        logprob: t.logprob,
        top_logprobs: (t.top_logprobs ?? []).map((a) => ({ token: a.token, logprob: a.logprob })),
      }))
      : null;
    return {
      content: choice.message.content,
      logprobs,
      promptTokens: res.usage?.prompt_tokens ?? 0,
      completionTokens: res.usage?.completion_tokens ?? 0,
      finishReason: choice.finish_reason ?? null,
      model: res.model ?? this.model,
    };
  }
}

/** Adds one answer's request and tokens to a tally (under the cached counts for a cache hit). */
export function tallyUsage(u: UsageCounts, r: ChatResult): void {
  if (r.cached) {
    u.cachedRequests++;
    u.cachedPromptTokens += r.promptTokens;
    u.cachedCompletionTokens += r.completionTokens;
  } else {
    u.requests++;
    u.promptTokens += r.promptTokens;
    u.completionTokens += r.completionTokens;
  }
}
