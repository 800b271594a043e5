/**
 * A local OpenAI-compatible server for tests: POST /v1/chat/completions (and /chat/completions)
 * answered by a script, a function of the request body. The script returns a content (optionally
 * with logprobs in OpenAI's exact shape, usage counts, a finish reason) or an error status with
 * headers (429 with Retry-After, 500, 401...), optionally after a delay. Every request is recorded
 * (path, headers, body) so tests can check prompts, counts and that nothing was sent.
 *
 * `fakeModel(fires)` is a ready script that answers the four autointerp prompts from a rule saying
 * how strongly a token fires (0-10).
 *
 * @module
 */
import {
  DETECTION_SYSTEM,
  EXPLAIN_SYSTEM,
  FUZZING_SYSTEM,
  SIMULATE_SYSTEM,
} from "../mod/autointerp/mod.ts";

/** The parts of a chat.completions body the fake reads. */
export interface ChatBody {
  model: string;
  messages: { role: string; content: string }[];
  logprobs?: boolean;
  top_logprobs?: number;
  [key: string]: unknown;
}

/** One sampled token with its alternatives: [token, logprob] pairs, most likely first. */
export interface FakeLogprob {
  token: string;
  logprob: number;
  top: [string, number][];
}

export type FakeReply =
  | {
    content: string;
    logprobs?: FakeLogprob[] | null;
    usage?: { prompt_tokens: number; completion_tokens: number };
    finishReason?: string;
    delayMs?: number;
  }
  | { status: number; headers?: Record<string, string>; body?: unknown; delayMs?: number };

export type FakeScript = (body: ChatBody, index: number) => FakeReply | Promise<FakeReply>;

export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: ChatBody | null;
}

export interface FakeOpenAI {
  /** e.g. "http://127.0.0.1:41234/v1" */
  baseURL: string;
  requests: RecordedRequest[];
  /** Requests being answered right now, and the most ever at once. */
  inflight: { now: number; max: number };
  close(): Promise<void>;
}

const bytes = (s: string) => Array.from(new TextEncoder().encode(s));

/** OpenAI's logprobs.content array for sampled tokens. */
export function logprobsJson(tokens: readonly FakeLogprob[]) {
  return tokens.map((t) => ({
    token: t.token,
    logprob: t.logprob,
    bytes: bytes(t.token),
    top_logprobs: t.top.map(([token, logprob]) => ({ token, logprob, bytes: bytes(token) })),
  }));
}

/**
 * Splits content the way a BPE model roughly would (digit runs, tabs, newlines, other runs) and
 * gives each token probability 1, unless `alternatives` returns its own top list for it.
 */
export function fakeLogprobs(
  content: string,
  alternatives: (token: string, index: number) => [string, number][] | undefined = () => undefined,
): FakeLogprob[] {
  const tokens = content.match(/\d+|\t|\n|[^\d\t\n]+/g) ?? [];
  return tokens.map((token, i) => {
    const top = alternatives(token, i) ?? [[token, 0]];
    const own = top.find(([t]) => t === token);
    return { token, logprob: own ? own[1] : -9999, top };
  });
}

function completionJson(body: ChatBody, reply: Extract<FakeReply, { content: string }>, n: number) {
  const promptChars = body.messages.reduce((a, m) => a + String(m.content).length, 0);
  const usage = reply.usage ??
    {
      prompt_tokens: Math.ceil(promptChars / 4),
      completion_tokens: Math.ceil(reply.content.length / 4),
    };
  return {
    id: `chatcmpl-fake-${n}`,
    object: "chat.completion",
    created: 1700000000,
    model: body.model,
    choices: [{
      index: 0,
      message: { role: "assistant", content: reply.content, refusal: null },
      logprobs: reply.logprobs ? { content: logprobsJson(reply.logprobs), refusal: null } : null,
      finish_reason: reply.finishReason ?? "stop",
    }],
    usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
  };
}

/** Starts the fake on 127.0.0.1 with a free port. */
export function startFakeOpenAI(script: FakeScript): FakeOpenAI {
  const requests: RecordedRequest[] = [];
  const inflight = { now: 0, max: 0 };
  let count = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    const text = await req.text();
    let body: ChatBody | null = null;
    try {
      body = JSON.parse(text);
    } catch { /* recorded as null, answered 400 below */ }
    requests.push({ method: req.method, path, headers: Object.fromEntries(req.headers), body });
    if (req.method !== "POST" || !["/v1/chat/completions", "/chat/completions"].includes(path)) {
      return Response.json({ error: { message: `No route ${req.method} ${path}` } }, {
        status: 404,
      });
    }
    if (!body) return Response.json({ error: { message: "Body is not JSON" } }, { status: 400 });
    const n = count++;
    inflight.now++;
    inflight.max = Math.max(inflight.max, inflight.now);
    try {
      const reply = await script(body, n);
      if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
      if ("status" in reply) {
        return Response.json(reply.body ?? { error: { message: `Fake error ${reply.status}` } }, {
          status: reply.status,
          headers: reply.headers,
        });
      }
      return Response.json(completionJson(body, reply, n));
    } finally {
      inflight.now--;
    }
  });
  return {
    baseURL: `http://127.0.0.1:${server.addr.port}/v1`,
    requests,
    inflight,
    close: () => server.shutdown(),
  };
}

/** Lines of a "token\tvalue" block, parsed back into tokens (escaped, as shown). */
function blockTokens(block: string): string[] {
  return block.split("\n").filter((l) => l !== "").map((l) => l.slice(0, l.lastIndexOf("\t")));
}

/**
 * A script answering the four autointerp prompts from `fires(token) -> 0..10` (tokens as shown
 * in the prompt, i.e. escaped): the explanation is `explanation`; simulation writes fires() of
 * each token; detection says 1 when any token of the text's words fires; fuzzing says 1 when a
 * highlighted span contains a firing token.
 */
export function fakeModel(
  fires: (token: string) => number,
  explanation = 'the main thing this feature does is find the word "cat".',
): FakeScript {
  return (body) => {
    const system = body.messages[0]?.content;
    const user = body.messages.at(-1)?.content ?? "";
    if (system === EXPLAIN_SYSTEM) return { content: explanation };
    if (system === SIMULATE_SYSTEM) {
      const blocks = [...user.matchAll(/<start>\n([\s\S]*?)\n<end>/g)].map((m) => m[1]);
      const out = blocks.map((b) =>
        ["<start>", ...blockTokens(b).map((t) => `${t}\t${fires(t)}`), "<end>"].join("\n")
      );
      return { content: out.join("\n") };
    }
    const examples = [...user.matchAll(/^Example \d+: (.*)$/gm)].map((m) => m[1]);
    const words = (text: string) => text.match(/\s*[^\s]+/g) ?? [];
    if (system === DETECTION_SYSTEM) {
      const answers = examples.map((t) => (words(t).some((w) => fires(w) > 0) ? 1 : 0));
      return { content: `[${answers.join(", ")}]` };
    }
    if (system === FUZZING_SYSTEM) {
      const answers = examples.map((t) => {
        const spans = [...t.matchAll(/<<(.*?)>>/g)].map((m) => m[1]);
        return spans.some((s) => words(s).some((w) => fires(w) > 0)) ? 1 : 0;
      });
      return { content: `[${answers.join(", ")}]` };
    }
    return { status: 400, body: { error: { message: "Fake model: unknown prompt" } } };
  };
}
