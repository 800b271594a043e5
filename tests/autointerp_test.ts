/**
 * Tests of mod/autointerp/: the real `openai` client against tests/fake_openai_server.ts, Bills'
 * 0-10 scaling and 20% rule on hand-set activations, and the split between explainer and scorers
 * (no shared sequence) on a feature that fires on runs of tokens, through the features stage's
 * examples (mod/features/max_activating.ts on the cpu backend).
 *
 *   deno test --allow-net=127.0.0.1 --allow-read --allow-write tests/autointerp_test.ts
 *
 * Writes only under temporary folders, which it removes.
 *
 * @module
 */
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertGreater,
  assertMatch,
  assertRejects,
  assertThrows,
} from "./assert.ts";
import { fakeLogprobs, fakeModel, type FakeScript, startFakeOpenAI } from "./fake_openai_server.ts";
import {
  AutointerpClient,
  chatTokens,
  type ClientOptions,
  createTokenCounter,
  cropExample,
  detection,
  estimateRun,
  expectedValueAt,
  explain,
  EXPLAIN_SYSTEM,
  explainMessages,
  type FeatureInput,
  featureInputsFromTable,
  type FeatureScore,
  fuzzing,
  nonZeroProportion,
  normaliseActs,
  parseBinaryList,
  parseExplanation,
  parseSimulation,
  type PreparedFeature,
  prepareFeature,
  redact,
  REPEAT_NONZERO_BELOW,
  resolveOptions,
  retryAfterMs,
  scoreFeature,
  scoreFeatures,
  simulate,
  simulatedValues,
} from "../mod/autointerp/mod.ts";
import { binaryScores, pearson } from "../mod/autointerp/mod.ts";
import * as tf from "@tensorflow/tfjs";
import * as arrow from "apache-arrow";
import type { ActivationRows } from "../mod/activations/mod.ts";
import { collectFeatureExamples, examplesTable } from "../mod/features/mod.ts";
import { decodeParquet, encodeParquet } from "../mod/io/mod.ts";
import { disposeSae, fromArrays, type Sae } from "../mod/sae/mod.ts";

const KEY = "sk-test-SECRET123";
const SETTINGS = { base: { temperature: 0 }, maxTokensField: "max_tokens" as const };
const quiet = () => {};

interface Env {
  fake: ReturnType<typeof startFakeOpenAI>;
  dir: string;
  logs: string[];
  client: (extra?: Partial<ClientOptions>) => AutointerpClient;
}

/** Runs `fn` with a fake server and a temp cache folder; both go away afterwards. */
async function withFake(script: FakeScript, fn: (env: Env) => Promise<void>): Promise<void> {
  const fake = startFakeOpenAI(script);
  const dir = await Deno.makeTempDir({ prefix: "autointerp_test_" });
  const logs: string[] = [];
  const client = (extra: Partial<ClientOptions> = {}) =>
    new AutointerpClient({
      apiKey: KEY,
      baseURL: fake.baseURL,
      model: "fake-model",
      cacheDir: `${dir}/cache`,
      baseDelayMs: 5,
      log: (l) => logs.push(l),
      ...extra,
    });
  try {
    await fn({ fake, dir, logs, client });
  } finally {
    await fake.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const user = (content: string) => [{ role: "user" as const, content }];
const ok = (content: string) => ({ content });

/** A feature that fires on " cat": top contexts of falling strength, silent random contexts. */
function catFeature(id: number, other = " mat"): FeatureInput {
  const ctx = (words: string[], act: number) => ({
    tokens: words,
    acts: words.map((w) => (w === " cat" ? act : 0)),
  });
  return {
    id,
    top: Array.from({ length: 10 }, (_, i) => ctx(["The", " cat", " sat", " on", other], 10 - i)),
    quantiles: Array.from({ length: 4 }, (_, i) => ctx(["My", " cat", " ran", other], 1 + i / 4)),
    random: Array.from({ length: 8 }, (_, i) => ctx(["A", " dog", ` ran${i}`, other], 0)),
  };
}
const catFires = (t: string) => (t === " cat" ? 10 : 0);
/**
 * catFeature's simulation score when " cat" is simulated as 10, else 0: held-out top ranks 2, 4,
 * ..., 10 carry 9, 7, 5, 3, 1 on " cat" (5 of 45 pooled tokens; 5 random contexts of 4 tokens).
 * With I the " cat" indicator: S_xI = 25 - 45 (5/9)(1/9) = 200/9, S_xx = 165 - 45 (5/9)^2 =
 * 1360/9, S_II = 5 - 45/81 = 40/9, so r = 200 / sqrt(1360 * 40) = 0.8575.
 */
const CAT_SCORE = (100 * 200) / Math.sqrt(1360 * 40);

Deno.test("normaliseActs is Bills' floor(10 relu(a) / max), at most 10", () => {
  // 10 * a / 2 = [0, 0.2, 1, 1.25, 2.5, 5.2, 10, -5]: floored, negatives to 0.
  assertEquals(normaliseActs([0, 0.04, 0.2, 0.25, 0.5, 1.04, 2, -1], 2), [0, 0, 1, 1, 2, 5, 10, 0]);
  // Just below a tenth of the max is 0, a tenth is 1, just below the max is 9, above it 10.
  assertEquals(normaliseActs([0.99, 1, 9.99, 10, 12], 10), [0, 1, 9, 10, 10]);
  assertEquals(normaliseActs([0, 1], 0), [0, 0]);
});

Deno.test("the explainer sees the non-zero lines again only below 20% non-zero tokens", () => {
  const ten = (acts: number[]) => ({ tokens: "abcdefghij".split(""), acts });
  const oneOfTen = [ten([0, 0, 4, 0, 0, 0, 0, 0, 0, 0])];
  // 0.3 of the max is 3 but 0.05 of it floors to 0: still one non-zero token of 10.
  const withTiny = [ten([0, 0, 4, 0.2, 0, 0, 0, 0, 0, 0])];
  const twoOfTen = [ten([0, 0, 4, 1.2, 0, 0, 0, 0, 0, 0])];
  assertEquals(nonZeroProportion(oneOfTen, 4), 0.1);
  assertEquals(nonZeroProportion(withTiny, 4), 0.1);
  assertEquals(nonZeroProportion(twoOfTen, 4), 0.2);
  const repeated = (ex: typeof oneOfTen, below?: number) =>
    explainMessages(ex, 4, below)[1].content.includes("all zeros filtered out");
  assertEquals([repeated(oneOfTen), repeated(withTiny), repeated(twoOfTen)], [true, true, false]);
  assertEquals([repeated(oneOfTen, 0), repeated(twoOfTen, 2)], [false, true]);
  assertEquals(REPEAT_NONZERO_BELOW, 0.2);
  assertEquals(
    explainMessages(twoOfTen, 4)[1].content,
    "Activations:\n<start>\na\t0\nb\t0\nc\t10\nd\t3\ne\t0\nf\t0\ng\t0\nh\t0\ni\t0\nj\t0\n" +
      "<end>\n\nExplanation of the feature's behavior: the main thing this feature does is find",
  );
  assertEquals(
    explainMessages(oneOfTen, 4)[1].content.split("\n\n")[1],
    "Same activations, but with all zeros filtered out:\n<start>\nc\t10\n<end>",
  );
});

Deno.test("cropExample keeps a window with 3/4 of it before the peak", () => {
  const ex = { tokens: "abcdefghij".split(""), acts: [0, 0, 0, 0, 0, 0, 5, 0, 0, 0] };
  assertEquals(cropExample(ex, 4).tokens, ["d", "e", "f", "g"]);
  assertEquals(cropExample(ex, 4).acts, [0, 0, 0, 5]);
  assertEquals(cropExample({ tokens: ["a", "b", "c"], acts: [9, 0, 0] }, 2).tokens, ["a", "b"]);
});

Deno.test("explain() sends the exact Bills-style prompt for a tiny feature", async () => {
  await withFake(fakeModel(catFires), async ({ fake, client }) => {
    const examples = [
      { tokens: ["The", " cat", " sat"], acts: [0, 2.5, 1.0] },
      { tokens: ["A", " cat\n"], acts: [0.4, 5] },
    ];
    const c = client();
    const { explanation } = await explain((r) => c.chat(r), 3, examples, SETTINGS);
    assertEquals(explanation, 'the word "cat"');
    // floor(10 a / 5): A (0.4) shows as 0; 3 of 5 tokens are non-zero, so no repeated section.
    const expected = "Activations:\n" +
      "<start>\nThe\t0\n cat\t5\n sat\t2\n<end>\n<start>\nA\t0\n cat\\n\t10\n<end>\n\n" +
      "Explanation of the feature's behavior: the main thing this feature does is find";
    const body = fake.requests[0].body!;
    assertEquals(body.messages, [
      { role: "system", content: EXPLAIN_SYSTEM },
      { role: "user", content: expected },
    ]);
    assertEquals([body.model, body.temperature, body.max_tokens], ["fake-model", 0, 120]);
    assertEquals(fake.requests[0].headers["authorization"], `Bearer ${KEY}`);
  });
});

Deno.test("parseExplanation strips the prompt's phrase, labels, quotes and punctuation", () => {
  assertEquals(
    parseExplanation('the main thing this feature does is find the word "cat".'),
    'the word "cat"',
  );
  assertEquals(parseExplanation('  "Mentions of cats."  '), "Mentions of cats");
  assertEquals(
    parseExplanation("Explanation: The main thing this neuron does is find **dates in text**.\n"),
    "dates in text",
  );
  assertEquals(parseExplanation("\nnumbers in lists\nand more"), "numbers in lists");
  assertThrows(() => parseExplanation(' "." '), /empty/);
});

Deno.test("parseSimulation reads written integers and rejects malformed answers", () => {
  const good = "<start>\na\t0\nb\t10\n<end>\n<start>\n \t3\n<end>";
  assertEquals(parseSimulation(good, [2, 1]).map((b) => b.map((v) => v.value)), [[0, 10], [3]]);
  assertEquals(parseSimulation(good, [2, 1])[0][1].offset, good.indexOf("10"));
  assertThrows(() => parseSimulation(good, [2, 1, 1]), /2 <start>...<end> examples, expected 3/);
  assertThrows(() => parseSimulation(good, [3, 1]), /example 0 has 2 token lines, expected 3/);
  assertThrows(() => parseSimulation("<start>\na\tunknown\n<end>", [1]), /"unknown" is not an int/);
  assertThrows(() => parseSimulation("<start>\na\t11\n<end>", [1]), /not an integer from 0 to 10/);
  assertThrows(() => parseSimulation("<start>\na\t3.5\n<end>", [1]), /not an integer/);
  assertThrows(() => parseSimulation("<start>\na 3\n<end>", [1]), /has no tab/);
});

Deno.test("expectedValueAt renormalises logprobs over the candidates 0..10", () => {
  // The sampled "\t2" starts one character before the number: alternatives must share "\t".
  const lp = [
    { token: "b", logprob: 0, top_logprobs: [{ token: "b", logprob: 0 }] },
    {
      token: "\t2",
      logprob: Math.log(0.6),
      top_logprobs: [["\t2", 0.6], ["\t3", 0.2], ["2", 0.15], ["\tx", 0.05]].map(([t, p]) => ({
        token: t as string,
        logprob: Math.log(p as number),
      })),
    },
  ];
  // (0.6 * 2 + 0.2 * 3) / (0.6 + 0.2) = 2.25
  assertAlmostEquals(expectedValueAt(lp, [0, 1], 2, "2")!, 2.25, 1e-12);
  // Logprobs that do not spell the answer are ignored: the written integers are used.
  const r = simulatedValues("<start>\nb\t2\n<end>", [1], lp);
  assertEquals([r.values, r.fromLogprobs, r.fromWritten], [[[2]], 0, 1]);
});

Deno.test("pearson and binaryScores match hand-computed values", () => {
  // x - 1 = [-1, 0, -1, 2], y - 1.5 = [-1.5, .5, -.5, 1.5]: r = 5 / sqrt(6 * 5)
  assertAlmostEquals(pearson([0, 1, 0, 3], [0, 2, 1, 3])!, 5 / Math.sqrt(30), 1e-12);
  assertEquals(pearson([1, 1], [0, 2]), null);
  const s = binaryScores([1, 1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 1, 0, 0]);
  assertEquals([s.tp, s.fn, s.fp, s.tn], [2, 2, 1, 2]);
  assertAlmostEquals(s.accuracy, 4 / 7, 1e-12);
  assertAlmostEquals(s.precision, 2 / 3, 1e-12);
  assertAlmostEquals(s.recall, 0.5, 1e-12);
  assertAlmostEquals(s.f1, (2 * (2 / 3) * 0.5) / (2 / 3 + 0.5), 1e-12);
  assertEquals(binaryScores([0, 0], [0, 0]).f1, 0);
});

/** Feature whose simulation set is exactly [a b] (true 0 1) and [c d] (true 0 3). */
const tinyFeature: FeatureInput = {
  id: 5,
  top: [{ tokens: ["p", "q"], acts: [0, 9] }, { tokens: ["a", "b"], acts: [0, 1] }],
  random: [{ tokens: ["c", "d"], acts: [0, 3] }],
};
const tinyOpts = {
  explainCount: 1,
  simTopCount: 1,
  simRandomCount: 1,
  detection: false,
  fuzzing: false,
  log: quiet,
} as const;
const tinySim: Record<string, number> = { a: 0, b: 2, c: 1, d: 3, p: 0, q: 0 };

Deno.test("scoreFeature's simulation score is the hand-computed pooled Pearson x 100", async () => {
  await withFake(fakeModel((t) => tinySim[t] ?? 0), async ({ client }) => {
    const r = await scoreFeature(client(), tinyFeature, { ...tinyOpts, logprobs: false });
    assertEquals(r.errors, []);
    assertAlmostEquals(r.simulationScore!, (100 * 5) / Math.sqrt(30), 1e-9);
    assertEquals(r.simulation!.fromWritten, 4);
  });
});

Deno.test("a constant simulation gives a null score with the reason", async () => {
  await withFake(fakeModel(() => 0), async ({ client }) => {
    const r = await scoreFeature(client(), tinyFeature, { ...tinyOpts, logprobs: false });
    assertEquals(r.simulationScore, null);
    assertMatch(r.simulationNullReason!, /simulated activations are constant \(0\) over all 4/);
    assertEquals(r.errors, []);
  });
});

Deno.test("simulation takes the expected value of a hand-set logprob distribution", async () => {
  const base = fakeModel((t) => tinySim[t] ?? 0);
  // At b's value "2": p(2) = .5, p(3) = .25, p("x") = .15 (not a number), p(10) = .1.
  const dist: [string, number][] = [["2", 0.5], ["3", 0.25], ["x", 0.15], ["10", 0.1]];
  const script: FakeScript = async (body, i) => {
    const reply = await base(body, i);
    if (!("content" in reply) || !body.logprobs) return reply;
    const top = dist.map(([t, p]) => [t, Math.log(p)] as [string, number]);
    return {
      ...reply,
      logprobs: fakeLogprobs(reply.content, (t) => (t === "2" ? top : undefined)),
    };
  };
  await withFake(script, async ({ fake, client }) => {
    const r = await scoreFeature(client(), tinyFeature, tinyOpts);
    const sim = fake.requests.find((q) => q.body?.logprobs)!.body!;
    assertEquals([sim.logprobs, sim.top_logprobs], [true, 20]);
    assertEquals([r.simulation!.fromLogprobs, r.simulation!.fromWritten], [4, 0]);
    const ev = (0.5 * 2 + 0.25 * 3 + 0.1 * 10) / 0.85;
    const pairs = r.simulation!.trueActs.flat().map((
      t,
      i,
    ) => [t, r.simulation!.simulatedActs.flat()[i]]);
    const sorted = pairs.sort((u, v) => u[0] - v[0] || u[1] - v[1]);
    assertEquals(sorted.length, 4);
    assertAlmostEquals(sorted[3][1], 3, 1e-12); // d: true 3, simulated 3 with probability 1
    assertAlmostEquals(sorted[2][1], ev, 1e-12); // b: true 1, expected value 3.2353
  });
});

Deno.test("simulate() prompt lists held-out tokens as unknown after the explanation", async () => {
  await withFake(fakeModel(catFires), async ({ fake, client }) => {
    const c = client();
    const ex = [{ tokens: ["A", " cat"] }];
    const r = await simulate((q) => c.chat(q), 1, "cats", ex, SETTINGS, {
      logprobs: false,
      topLogprobs: 20,
    });
    assertEquals(r.values, [[0, 10]]);
    assertEquals(
      fake.requests[0].body!.messages.at(-1)!.content,
      "Explanation of the feature's behavior: the main thing this feature does is find cats\n\n" +
        "<start>\nA\tunknown\n cat\tunknown\n<end>",
    );
  });
});

Deno.test("detection and fuzzing scores match hand counts", async () => {
  await withFake(fakeModel(catFires), async ({ fake, client }) => {
    const c = client();
    const ctx = (...tokens: string[]) => ({ tokens, acts: tokens.map(() => 1) });
    // Fake says 1 when " cat" is present: TP 3 (cats), FN 1 (dog), FP 2 (cat food/toy), TN 2.
    const det = await detection(
      (q) => c.chat(q),
      2,
      "cats",
      [ctx(" my", " cat"), ctx(" a", " cat"), ctx(" the", " cat"), ctx(" a", " dog")],
      [ctx(" cat", " food"), ctx(" cat", " toy"), ctx(" the", " car"), ctx(" a", " bus")],
      SETTINGS,
      { batchSize: 3, rng: Math.random },
    );
    assertEquals([det.tp, det.fn, det.fp, det.tn, det.n], [3, 1, 2, 2, 8]);
    assertAlmostEquals(det.accuracy, 5 / 8, 1e-12);
    assertAlmostEquals(det.precision, 3 / 5, 1e-12);
    assertAlmostEquals(det.recall, 3 / 4, 1e-12);
    assertAlmostEquals(det.f1, 2 / 3, 1e-12);
    assertEquals(fake.requests.length, 3); // 8 contexts in batches of 3
    // First two highlighted right, last two on the only other token (each example has two).
    const fz = await fuzzing(
      (q) => c.chat(q),
      2,
      "cats",
      [
        { tokens: [" cat", " sat"], acts: [5, 0] },
        { tokens: [" dog", " ran"], acts: [4, 0] },
        { tokens: [" cat", " sat"], acts: [5, 0] },
        { tokens: [" sat", " cat"], acts: [3, 0] },
      ],
      SETTINGS,
      { batchSize: 10, threshold: 0.3, rng: Math.random },
    );
    const shown = fake.requests[3].body!.messages.at(-1)!.content.match(/^Example \d+: .*$/gm)!
      .map((l) => l.replace(/^Example \d+: /, "")).sort();
    assertEquals(shown, [" cat<< sat>>", " sat<< cat>>", "<< cat>> sat", "<< dog>> ran"]);
    assertEquals([fz.tp, fz.fn, fz.fp, fz.tn], [1, 1, 1, 1]);
    assertEquals([fz.accuracy, fz.f1], [0.5, 0.5]);
  });
});

Deno.test("parseBinaryList reads the last 0/1 list and checks its length", () => {
  assertEquals(parseBinaryList("Sure: [1, 0, true]", 3), [1, 0, 1]);
  assertEquals(parseBinaryList("[x] then [0,1]", 2), [0, 1]);
  assertThrows(() => parseBinaryList("[1, 0]", 3), /lists 2 values for 3 examples/);
  assertThrows(() => parseBinaryList("yes", 1), /no list of 0s and 1s/);
});

Deno.test("a second identical run is served from the cache with zero requests", async () => {
  await withFake(fakeModel(catFires), async ({ fake, dir, client }) => {
    const r1 = await scoreFeature(client(), catFeature(1), { log: quiet });
    const sent = fake.requests.length;
    assertEquals(r1.errors, []);
    assertAlmostEquals(r1.simulationScore!, CAT_SCORE, 1e-9);
    assertEquals(r1.detection!.accuracy, 1);
    assertEquals(r1.fuzzing!.accuracy, 1);
    assertEquals([r1.requests, r1.cachedRequests], [sent, 0]); // explain, simulate, 2 + 1 batches
    assertEquals(sent, 5);
    const c2 = client();
    const r2 = await scoreFeature(c2, catFeature(1), { log: quiet });
    assertEquals(fake.requests.length, sent);
    assertEquals([r2.requests, r2.cachedRequests], [0, sent]);
    assertEquals([r2.cachedPromptTokens, r2.cachedCompletionTokens], [
      r1.promptTokens,
      r1.completionTokens,
    ]);
    const keys = (r: typeof r1) => r.cacheKeys.slice().sort();
    assertEquals({ ...r2, ...usageOf(r1), cacheKeys: keys(r2) }, { ...r1, cacheKeys: keys(r1) });
    assertEquals(c2.usage.requests, 0);
    const files = [...Deno.readDirSync(`${dir}/cache`)].map((e) => e.name);
    assertEquals(files.sort(), r1.cacheKeys.map((k) => `${k}.json`).sort());
  });
});

function usageOf(r: FeatureScore) {
  const keys = ["requests", "cachedRequests", "promptTokens", "completionTokens"];
  return Object.fromEntries(
    [...keys, "cachedPromptTokens", "cachedCompletionTokens"].map((
      k,
    ) => [k, r[k as keyof FeatureScore]]),
  );
}

Deno.test("retryAfterMs reads seconds, HTTP dates and retry-after-ms", () => {
  const now = Date.parse("Wed, 21 Oct 2015 07:28:00 GMT");
  assertEquals(retryAfterMs(new Headers({ "retry-after": "2" }), now), 2000);
  assertEquals(
    retryAfterMs(new Headers({ "retry-after": "Wed, 21 Oct 2015 07:28:03 GMT" }), now),
    3000,
  );
  assertEquals(
    retryAfterMs(new Headers({ "retry-after": "1", "retry-after-ms": "150" }), now),
    150,
  );
  assertEquals(retryAfterMs(new Headers({ "retry-after": "soon" }), now), null);
  assertEquals(retryAfterMs(undefined, now), null);
});

Deno.test("a 429 is retried after the wait its Retry-After header asks for", async () => {
  const script: FakeScript = (_b, i) =>
    i === 0 ? { status: 429, headers: { "Retry-After": "1" } } : ok("fine");
  await withFake(script, async ({ fake, client, logs }) => {
    const c = client(); // backoff alone would wait about 5 ms
    const t0 = performance.now();
    const r = await c.chat({ messages: user("hi") });
    const waited = performance.now() - t0;
    assertEquals([r.content, fake.requests.length, c.usage.retries], ["fine", 2, 1]);
    assert(waited >= 1000 && waited < 3000, `waited ${waited} ms`);
    assertMatch(logs[0], /HTTP 429.*retry 1\/5 in 1\.0 s/);
  });
  const ms: FakeScript = (_b, i) =>
    i === 0 ? { status: 429, headers: { "retry-after-ms": "300" } } : ok("fine");
  await withFake(ms, async ({ client }) => {
    const t0 = performance.now();
    await client().chat({ messages: user("hi") });
    assertGreater(performance.now() - t0, 299);
  });
});

Deno.test("a 500 is retried; a 400 is not", async () => {
  await withFake((_b, i) => (i === 0 ? { status: 500 } : ok("fine")), async ({ fake, client }) => {
    const c = client();
    assertEquals((await c.chat({ messages: user("hi") })).content, "fine");
    assertEquals([fake.requests.length, c.usage.retries], [2, 1]);
  });
  await withFake(() => ({ status: 400 }), async ({ fake, client }) => {
    await assertRejects(
      () => client().chat({ messages: user("hi"), label: "X" }),
      /X: .*after 1 attempt/,
    );
    assertEquals(fake.requests.length, 1);
  });
});

Deno.test("a request past the timeout is retried", async () => {
  const script: FakeScript = (_b, i) => (i === 0 ? { content: "late", delayMs: 400 } : ok("fine"));
  await withFake(script, async ({ fake, client }) => {
    const r = await client({ timeoutMs: 100 }).chat({ messages: user("hi") });
    assertEquals([r.content, fake.requests.length], ["fine", 2]);
  });
});

Deno.test("the client keeps at most `concurrency` requests in flight", async () => {
  await withFake(() => ({ content: "x", delayMs: 40 }), async ({ fake, client }) => {
    const c = client({ concurrency: 2 });
    await Promise.all([1, 2, 3, 4, 5, 6].map((i) => c.chat({ messages: user(`q${i}`) })));
    assertEquals([fake.requests.length, fake.inflight.max], [6, 2]);
  });
});

Deno.test("a malformed answer fails only its feature, with a clear error", async () => {
  const base = fakeModel(catFires);
  const script: FakeScript = (body, i) => {
    const last = body.messages.at(-1)!.content;
    if (last.includes(" zebra\tunknown")) return ok("<start>\nThe\t3\n<end>");
    return base(body, i);
  };
  await withFake(script, async ({ client }) => {
    const [a, b] = await scoreFeatures(client(), [catFeature(1), catFeature(7, " zebra")], {
      log: quiet,
    });
    assertAlmostEquals(a.simulationScore!, CAT_SCORE, 1e-9);
    assertEquals(a.errors, []);
    assertEquals([b.explanation, b.simulationScore], ['the word "cat"', null]);
    assertEquals(b.errors.length, 1);
    assertMatch(b.errors[0], /^Feature 7: malformed simulation answer: answer has 1 <start>/);
    assertEquals(b.simulationNullReason, b.errors[0]);
    assertEquals(b.detection!.accuracy, 1);
  });
});

Deno.test("the API key appears in no error, log, result or cache file", async () => {
  const echo = { error: { message: `Bad key ${KEY}; got Authorization: Bearer ${KEY}` } };
  await withFake(() => ({ status: 401, body: echo }), async ({ fake, client }) => {
    const err = await client().chat({ messages: user("hi") }).catch((e) => e as Error);
    assert(err instanceof Error);
    assert(!err.message.includes("SECRET123") && !("cause" in err), err.message);
    assertMatch(err.message, /HTTP 401: 401 Bad key \[REDACTED\]/);
    assertEquals(fake.requests[0].headers["authorization"], `Bearer ${KEY}`);
  });
  const base = fakeModel(catFires);
  const script: FakeScript = (body, i) =>
    body.messages[0].content.includes("<< and >>") ? { status: 500, body: echo } : base(body, i);
  await withFake(script, async ({ dir, logs, client }) => {
    const results = await scoreFeatures(client({ maxRetries: 1 }), [catFeature(1)], { log: quiet });
    assertMatch(
      results[0].errors[0],
      /^Feature 1 fuzzing batch 0: .*after 2 attempt\(s\): HTTP 500/,
    );
    assertEquals(results[0].fuzzing, null);
    assertAlmostEquals(results[0].simulationScore!, CAT_SCORE, 1e-9);
    let written = "";
    for (const e of Deno.readDirSync(`${dir}/cache`)) {
      written += Deno.readTextFileSync(`${dir}/cache/${e.name}`);
    }
    assertGreater(written.length, 1000);
    for (const text of [written, JSON.stringify(results), logs.join("\n")]) {
      assert(!text.includes("SECRET123"), "the key leaked");
    }
    assertEquals(logs.length, 1);
  });
  assertEquals(redact(`Bearer abc.def and ${KEY}`, [KEY]), "Bearer [REDACTED] and [REDACTED]");
});

Deno.test("estimateRun counts prompts with tiktoken and predicts the requests sent", async () => {
  const counter = await createTokenCounter("gpt-4o-mini");
  assertEquals(counter.method, "tiktoken o200k_base");
  assertEquals(chatTokens(counter, user("hello world")), 3 + 4 + 2);
  counter.free();
  const features = [catFeature(1), catFeature(2, " rug")];
  const est = await estimateRun("gpt-4o-mini", features);
  await withFake(fakeModel(catFires), async ({ fake, client }) => {
    await scoreFeatures(client(), features, { log: quiet });
    assertEquals(est.requests, fake.requests.length);
    assertGreater(est.promptTokens, 1000);
    assertGreater(est.maxCompletionTokens, 1000);
  });
});

// ---- The split between explainer and scorers, on a feature that fires on runs of tokens.

type Placed = { seq?: number; start?: number; tokens: readonly string[] };

/** Pairs (scorer step, scorer example, explainer example) whose contexts share a token. */
function overlaps(explain: readonly Placed[], scorers: Record<string, readonly Placed[]>) {
  const found: string[] = [];
  for (const [step, list] of Object.entries(scorers)) {
    list.forEach((s, i) => {
      assert(s.seq !== undefined && s.start !== undefined, `${step} ${i} has no place`);
      explain.forEach((e, j) => {
        const disjoint = s.start! + s.tokens.length <= e.start! ||
          e.start! + e.tokens.length <= s.start!;
        if (s.seq === e.seq && !disjoint) found.push(`${step} ${i} overlaps explainer ${j}`);
      });
    });
  }
  return found;
}

/**
 * Held-out rows where f = ReLU(x0) fires on runs of 8 consecutive tokens: 40 sequences of 32
 * tokens, a run at pos 10-17 whose strength grows with the sequence, and in every third sequence a
 * weaker second run at pos 24-27.
 */
function runRows(): ActivationRows {
  const nSeq = 40, T = 32, x0: number[] = [];
  for (let q = 0; q < nSeq; q++) {
    for (let p = 0; p < T; p++) {
      const run = p >= 10 && p < 18 ? 1 + q / 4 + Math.min(p - 10, 17 - p) / 8 : 0;
      x0.push(run || (q % 3 === 0 && p >= 24 && p < 28 ? 0.5 : 0));
    }
  }
  return {
    acts: Float32Array.from(x0.flatMap((x) => [x, 0])),
    seq: Int32Array.from(x0, (_, r) => 500 + Math.floor(r / T)),
    pos: Int32Array.from(x0, (_, r) => r % T),
    token: Int32Array.from(x0, (_, r) => r),
    dIn: 2,
  };
}

const runSae = () =>
  fromArrays({ dIn: 2, dSae: 1, architecture: "standard", l1Coefficient: 0 }, {
    W_enc: new Float32Array([1, 0]),
    b_enc: new Float32Array([0]),
    W_dec: new Float32Array([1, 0]),
    b_dec: new Float32Array([0, 0]),
  });

/** The features stage's examples.parquet for `rows`, read back as autointerp reads it. */
async function examplesAsInputs(sae: Sae, rows: ActivationRows): Promise<FeatureInput> {
  const { examples } = await collectFeatureExamples(sae, rows, {
    topK: 10,
    quantileBins: 5,
    perQuantile: 2,
    random: 5,
    contextBefore: 12,
    contextAfter: 4,
    microBatch: 64,
    seed: 3,
  });
  const text: string[][] = [];
  for (let e = 0; e < examples.feature.length; e++) {
    const ids = examples.contextTokens.subarray(
      examples.contextOffsets[e],
      examples.contextOffsets[e + 1],
    );
    text.push(Array.from(ids, (id) => ` t${id}`));
  }
  const table = examplesTable(examples).assign(
    new arrow.Table({
      context_text: arrow.vectorFromArray(
        text,
        new arrow.List(new arrow.Field("item", new arrow.Utf8(), true)),
      ),
    }),
  );
  return featureInputsFromTable(decodeParquet(encodeParquet(table))).get(0)!;
}

function scorerSets(p: PreparedFeature) {
  return {
    heldOutTop: p.heldOutTop,
    simulation: p.simulation,
    detectionActivating: p.detectionActivating,
    detectionSilent: p.detectionSilent,
    fuzzing: p.fuzzing,
  };
}

Deno.test("no scorer context overlaps an explainer context for a feature that fires on runs", async () => {
  await tf.setBackend("cpu");
  const sae = runSae(), rows = runRows();
  try {
    // The checker is not vacuous: per-token top examples split every other rank, as before,
    // give the scorer the explainer's windows shifted by a token.
    const f = Array.from({ length: rows.seq.length }, (_, r) => Math.max(0, rows.acts[2 * r]));
    const perToken = f.map((a, r) => ({ a, r })).sort((x, y) => y.a - x.a || x.r - y.r)
      .slice(0, 10)
      .map(({ r }) => ({ seq: rows.seq[r], start: rows.pos[r] - 12, tokens: Array(17).fill("x") }));
    const naive = overlaps(perToken.filter((_, i) => i % 2 === 0), {
      heldOutTop: perToken.filter((_, i) => i % 2 === 1),
    });
    assertGreater(naive.length, 0);

    // The features stage's examples, through autointerp's split.
    const input = await examplesAsInputs(sae, rows);
    assertEquals(input.top.length, 10);
    assertEquals(new Set(input.top.map((e) => e.seq)).size, 10);
    const prep = prepareFeature(input, resolveOptions({ seed: 1 }));
    assertEquals(prep.explain.length, 5);
    assertGreater(prep.detectionSilent.length, 0);
    assertGreater(prep.fuzzing.length, 0);
    assertEquals(overlaps(prep.explain, scorerSets(prep)), []);

    // Inputs that do not come one per sequence (per-token top examples, every window of a run)
    // are split by sequence too.
    const ctx = (r: number) => {
      const lo = Math.max(r - 12, r - rows.pos[r]), hi = Math.min(r + 4, r - rows.pos[r] + 31);
      const acts = f.slice(lo, hi + 1);
      return { seq: rows.seq[lo], start: rows.pos[lo], tokens: acts.map((_, k) => `${k}`), acts };
    };
    const order = f.map((a, r) => ({ a, r })).filter((x) => x.a > 0)
      .sort((x, y) => y.a - x.a || x.r - y.r).map((x) => x.r);
    const perTokenInput: FeatureInput = {
      id: 0,
      top: order.slice(0, 20).map(ctx),
      quantiles: order.slice(20, 60).map(ctx),
      random: f.map((a, r) => ({ a, r })).filter((x) => x.a === 0).map((x) => ctx(x.r)),
    };
    const prep2 = prepareFeature(perTokenInput, resolveOptions({ seed: 1 }));
    assertGreater(prep2.explain.length, 1);
    assertGreater(prep2.counts.droppedSameSequence, 0);
    assertEquals(overlaps(prep2.explain, scorerSets(prep2)), []);
  } finally {
    disposeSae(sae);
  }
});

Deno.test("detection negatives are only contexts silent over the whole window, fewer if short", async () => {
  const feature = catFeature(4);
  // Three of the eight random contexts hold a weak firing away from their centre.
  feature.random.forEach((ex, i) => {
    if (i < 3) ex.acts[3] = 0.5;
  });
  const prep = prepareFeature(feature, resolveOptions({ seed: 0 }));
  assertEquals(prep.counts.detectionSilent, 5);
  assert(prep.detectionSilent.every((ex) => ex.acts.every((a) => a === 0)));
  // Simulation still scores random contexts against their true activations, firing or not.
  await withFake(fakeModel(catFires), async ({ client }) => {
    const r = await scoreFeature(client(), feature, { log: quiet, fuzzing: false });
    assertEquals(r.errors, []);
    assertEquals(r.counts!.detectionSilent, 5);
    // 9 activating (5 held-out top, 4 quantiles) and the 5 silent ones.
    assertEquals(r.counts!.detectionActivating, 9);
    assertEquals([r.detection!.n, r.detection!.tn + r.detection!.fp], [14, 5]);
  });
});
