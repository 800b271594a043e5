/**
 * The whole autointerpretability pipeline for one feature (explain -> simulate -> score, plus
 * delphi's detection and fuzzing), for many features, and a token estimate before a run.
 *
 * Which example goes where (all after cropping to maxContextTokens, top examples ranked by max
 * activation, highest first). The split is made by sequence, so that no token a scorer sees was
 * in a context the explainer saw (a feature that fires on runs of tokens would otherwise be scored
 * on the explainer's own windows shifted by a token):
 * - top examples are kept one per sequence, the best-ranked (the features stage already gives one
 *   per sequence; this guards other inputs); examples without `seq` count as their own sequence;
 * - explanation: the sequences of rank 0, 2, 4, ... (every other one), at most explainCount;
 * - held-out top: the other top sequences;
 * - quantile and random examples from a sequence the explainer saw are dropped (counted);
 * - simulation: the simTopCount highest-ranked held-out top examples and a seeded sample of
 *   simRandomCount random ones, shuffled together (seeded), scored against their true activations;
 * - detection: `activating` contexts, half from held-out top and half from quantiles (whichever is
 *   short is filled from the other), and up to `silent` random contexts whose every activation is
 *   0 (fewer when fewer exist; counts.detectionSilent says how many);
 * - fuzzing: `count` activating contexts drawn the same way (another seed), half highlighted
 *   right, half wrong (detection.ts).
 *
 * Failures never stop a run: a failed step leaves its score null, records an error naming the
 * feature, and the other steps and features go on. Simulation, detection and fuzzing run
 * concurrently once the explanation is in. estimate.ts prices a run before it starts.
 *
 * @module
 */
import {
  type AutointerpClient,
  type ChatFn,
  mapPool,
  type RequestSettings,
  tallyUsage,
} from "./client.ts";
import { detection, fuzzing } from "./detection.ts";
import { explain } from "./explain.ts";
import { cropExample, maxActivation, rngFor, sample, shuffled } from "./format.ts";
import { simulationScore } from "./score.ts";
import { simulate } from "./simulate.ts";
import { REPEAT_NONZERO_BELOW } from "./prompts.ts";
import type {
  ActivationExample,
  DetectionOptions,
  ExampleCounts,
  FeatureInput,
  FeatureScore,
  FuzzingOptions,
  ScoreOptions,
} from "./types.ts";

/** Options with every default filled in; detection/fuzzing null when switched off. */
export interface ResolvedOptions {
  seed: number;
  maxContextTokens: number;
  explainCount: number;
  repeatNonZeroBelow: number;
  simTopCount: number;
  simRandomCount: number;
  logprobs: boolean;
  topLogprobs: number;
  simulation: boolean;
  detection: Required<DetectionOptions> | null;
  fuzzing: Required<FuzzingOptions> | null;
  settings: RequestSettings;
  log: (line: string) => void;
}

export const DEFAULT_DETECTION: Required<DetectionOptions> = {
  activating: 10,
  silent: 10,
  batchSize: 10,
};
export const DEFAULT_FUZZING: Required<FuzzingOptions> = {
  count: 10,
  batchSize: 10,
  threshold: 0.3,
};

function positiveInt(name: string, v: number, min = 1): number {
  if (!Number.isInteger(v) || v < min) {
    throw new Error(`Option ${name} ${v} must be an integer >= ${min}`);
  }
  return v;
}

/** Fills in defaults and validates the numbers. */
export function resolveOptions(opts: ScoreOptions = {}): ResolvedOptions {
  const det = opts.detection === false
    ? null
    : { ...DEFAULT_DETECTION, ...(opts.detection === true ? {} : opts.detection) };
  const fuz = opts.fuzzing === false
    ? null
    : { ...DEFAULT_FUZZING, ...(opts.fuzzing === true ? {} : opts.fuzzing) };
  const topLogprobs = opts.topLogprobs ?? 20;
  if (topLogprobs < 1 || topLogprobs > 20) {
    throw new Error(`Option topLogprobs ${topLogprobs} must be 1..20`);
  }
  if (det) {
    positiveInt("detection.batchSize", det.batchSize);
    positiveInt("detection.activating", det.activating, 0);
    positiveInt("detection.silent", det.silent, 0);
  }
  if (fuz) {
    positiveInt("fuzzing.batchSize", fuz.batchSize);
    positiveInt("fuzzing.count", fuz.count, 0);
    if (!(fuz.threshold >= 0 && fuz.threshold <= 1)) {
      throw new Error(`Option fuzzing.threshold ${fuz.threshold} must be in [0, 1]`);
    }
  }
  const temperature = opts.temperature === undefined ? 0 : opts.temperature;
  const repeatNonZeroBelow = opts.repeatNonZeroBelow ?? REPEAT_NONZERO_BELOW;
  if (!(repeatNonZeroBelow >= 0)) {
    throw new Error(`Option repeatNonZeroBelow ${repeatNonZeroBelow} must be >= 0`);
  }
  return {
    seed: opts.seed ?? 0,
    maxContextTokens: positiveInt("maxContextTokens", opts.maxContextTokens ?? 64),
    explainCount: positiveInt("explainCount", opts.explainCount ?? 10),
    repeatNonZeroBelow,
    simTopCount: positiveInt("simTopCount", opts.simTopCount ?? 5, 0),
    simRandomCount: positiveInt("simRandomCount", opts.simRandomCount ?? 5, 0),
    logprobs: opts.logprobs ?? true,
    topLogprobs,
    simulation: opts.simulation ?? true,
    detection: det,
    fuzzing: fuz,
    settings: {
      base: { ...(temperature === null ? {} : { temperature }), ...opts.extraParams },
      maxTokensField: opts.maxTokensField ?? "max_tokens",
    },
    log: opts.log ?? ((line) => console.error(line)),
  };
}

/** The examples each step uses (see the module note). */
export interface PreparedFeature {
  id: number;
  explain: ActivationExample[];
  heldOutTop: ActivationExample[];
  simulation: ActivationExample[];
  detectionActivating: ActivationExample[];
  detectionSilent: ActivationExample[];
  fuzzing: ActivationExample[];
  counts: ExampleCounts;
}

function checkExamples(id: number, kind: string, examples: readonly ActivationExample[]) {
  examples.forEach((ex, i) => {
    if (!Array.isArray(ex?.tokens) || !Array.isArray(ex?.acts)) {
      throw new Error(`Feature ${id}: ${kind} example ${i} lacks tokens or acts arrays`);
    }
    if (ex.tokens.length !== ex.acts.length) {
      throw new Error(
        `Feature ${id}: ${kind} example ${i} has ${ex.tokens.length} tokens but ` +
          `${ex.acts.length} activations`,
      );
    }
    const bad = ex.acts.findIndex((a) => typeof a !== "number" || !Number.isFinite(a));
    if (bad >= 0) {
      throw new Error(`Feature ${id}: ${kind} example ${i} activation ${bad} is ${ex.acts[bad]}`);
    }
  });
}

/** Half from `top`, half from `quantiles`; the short one is filled from the other. */
function mixActivating(
  top: readonly ActivationExample[],
  quantiles: readonly ActivationExample[],
  want: number,
  rng: () => number,
): ActivationExample[] {
  const t = shuffled(top, rng), q = shuffled(quantiles, rng);
  const nq = Math.min(q.length, Math.max(want - t.length, Math.floor(want / 2)));
  const nt = Math.min(t.length, want - nq);
  return [...t.slice(0, nt), ...q.slice(0, nq)];
}

/** Validates a feature's examples and splits them between the steps; throws on bad input. */
export function prepareFeature(feature: FeatureInput, o: ResolvedOptions): PreparedFeature {
  const id = feature.id;
  const quantiles = feature.quantiles ?? [];
  checkExamples(id, "top", feature.top ?? []);
  checkExamples(id, "quantile", quantiles);
  checkExamples(id, "random", feature.random ?? []);
  if (!feature.top?.length) throw new Error(`Feature ${id}: no top-activating examples`);
  // A sequence key per example; one without `seq` is a sequence of its own.
  const seqKey = (ex: ActivationExample, kind: string, i: number) =>
    ex.seq === undefined ? `${kind}:${i}` : `seq:${ex.seq}`;
  const crop = (ex: ActivationExample) => cropExample(ex, o.maxContextTokens);
  const ranked = feature.top.map(crop)
    .map((ex, i) => ({ ex, key: seqKey(ex, "top", i), max: maxActivation([ex]), i }))
    .sort((a, b) => b.max - a.max || a.i - b.i);
  const topSeqs = new Set<string>();
  const top = ranked.filter((x) => !topSeqs.has(x.key) && topSeqs.add(x.key));
  const explainSet: ActivationExample[] = [];
  const heldOutTop: ActivationExample[] = [];
  const explainSeqs = new Set<string>();
  top.forEach(({ ex, key }, i) => {
    if (i % 2 === 0 && explainSet.length < o.explainCount) {
      explainSet.push(ex);
      explainSeqs.add(key);
    } else heldOutTop.push(ex);
  });
  // Held-out top sequences differ from the explainer's by construction; quantile and random
  // examples must be checked.
  let dropped = 0;
  const unseen = (list: readonly ActivationExample[], kind: string) =>
    list.filter((ex, i) => {
      const ok = !explainSeqs.has(seqKey(ex, kind, i));
      if (!ok) dropped++;
      return ok;
    }).map(crop);
  const q = unseen(quantiles, "quantile"), random = unseen(feature.random ?? [], "random");
  const silent = random.filter((ex) => ex.acts.every((a) => a === 0));
  const rng = (purpose: string) => rngFor(o.seed, id, purpose);
  const simulation = shuffled([
    ...heldOutTop.slice(0, o.simTopCount),
    ...sample(random, o.simRandomCount, rng("simulation-random")),
  ], rng("simulation-order"));
  const detectionActivating = o.detection
    ? mixActivating(heldOutTop, q, o.detection.activating, rng("detection-activating"))
    : [];
  const detectionSilent = o.detection
    ? sample(silent, o.detection.silent, rng("detection-silent"))
    : [];
  const fuzz = o.fuzzing
    ? mixActivating(heldOutTop, q, o.fuzzing.count, rng("fuzzing-examples"))
    : [];
  return {
    id,
    explain: explainSet,
    heldOutTop,
    simulation,
    detectionActivating,
    detectionSilent,
    fuzzing: fuzz,
    counts: {
      explain: explainSet.length,
      simulation: simulation.length,
      detectionActivating: detectionActivating.length,
      detectionSilent: detectionSilent.length,
      fuzzing: fuzz.length,
      droppedSameSequence: dropped,
    },
  };
}

function emptyScore(feature: FeatureInput, model: string): FeatureScore {
  return {
    featureId: feature.id,
    model,
    explanation: null,
    simulationScore: null,
    simulationNullReason: null,
    simulation: null,
    detection: null,
    fuzzing: null,
    errors: [],
    requests: 0,
    cachedRequests: 0,
    promptTokens: 0,
    completionTokens: 0,
    cachedPromptTokens: 0,
    cachedCompletionTokens: 0,
    cacheKeys: [],
    counts: null,
  };
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Explains and scores one feature; never throws (failures land in `errors`). */
export async function scoreFeature(
  client: AutointerpClient,
  feature: FeatureInput,
  opts: ScoreOptions = {},
  /** The model that simulates, detects and fuzzes (default: the explainer's client). */
  scorer: AutointerpClient = client,
): Promise<FeatureScore> {
  const result = emptyScore(feature, client.model);
  // Chat wrappers that tally this feature's tokens, cache hits and cache files.
  const chatOn = (c: AutointerpClient): ChatFn => async (req) => {
    const r = await c.chat(req);
    tallyUsage(result, r);
    result.cacheKeys.push(r.key);
    return r;
  };
  const chat = chatOn(client), scoreChat = chatOn(scorer);
  const fail = (e: unknown) => {
    const m = message(e);
    result.errors.push(/^Feature \d+/.test(m) ? m : `Feature ${feature.id}: ${m}`);
    return result.errors.at(-1)!;
  };
  let o: ResolvedOptions, prep: PreparedFeature;
  try {
    o = resolveOptions(opts);
    prep = prepareFeature(feature, o);
    result.counts = prep.counts;
    result.explanation = (await explain(chat, feature.id, prep.explain, o.settings, o)).explanation;
  } catch (e) {
    result.simulationNullReason = `no explanation: ${fail(e)}`;
    return result;
  }
  const explanation = result.explanation;
  const rng = (purpose: string) => rngFor(o.seed, feature.id, purpose);
  await Promise.all([
    (async () => {
      if (!o.simulation) return void (result.simulationNullReason = "simulation not run");
      try {
        const sim = await simulate(
          scoreChat,
          feature.id,
          explanation,
          prep.simulation,
          o.settings,
          o,
        );
        const trueActs = prep.simulation.map((ex) => ex.acts.slice());
        result.simulation = {
          trueActs,
          simulatedActs: sim.values,
          fromLogprobs: sim.fromLogprobs,
          fromWritten: sim.fromWritten,
        };
        const s = simulationScore(trueActs, sim.values);
        result.simulationScore = s.score;
        result.simulationNullReason = s.reason;
      } catch (e) {
        result.simulationNullReason = fail(e);
      }
    })(),
    (async () => {
      if (!o.detection) return;
      try {
        result.detection = await detection(
          scoreChat,
          feature.id,
          explanation,
          prep.detectionActivating,
          prep.detectionSilent,
          o.settings,
          { batchSize: o.detection.batchSize, rng: rng("detection-order") },
        );
      } catch (e) {
        fail(e);
      }
    })(),
    (async () => {
      if (!o.fuzzing) return;
      try {
        result.fuzzing = await fuzzing(
          scoreChat,
          feature.id,
          explanation,
          prep.fuzzing,
          o.settings,
          {
            ...o.fuzzing,
            rng: rng("fuzzing-order"),
          },
        );
      } catch (e) {
        fail(e);
      }
    })(),
  ]);
  return result;
}

/** Scores many features, at most `featureConcurrency` at a time (default 4); input order kept. */
export async function scoreFeatures(
  client: AutointerpClient,
  features: readonly FeatureInput[],
  opts: ScoreOptions & { featureConcurrency?: number } = {},
  scorer: AutointerpClient = client,
): Promise<FeatureScore[]> {
  const log = opts.log ?? ((line: string) => console.error(line));
  let done = 0;
  return await mapPool(features, opts.featureConcurrency ?? 4, async (f) => {
    const r = await scoreFeature(client, f, opts, scorer);
    done++;
    const fmt = (v: number | null | undefined, d: number) => (v == null ? "null" : v.toFixed(d));
    log(
      `autointerp: feature ${f.id} (${done}/${features.length}) score ${
        fmt(r.simulationScore, 1)
      }` +
        ` detection acc ${fmt(r.detection?.accuracy, 2)} fuzzing acc ${
          fmt(r.fuzzing?.accuracy, 2)
        }` +
        (r.errors.length ? ` errors ${r.errors.length}` : ""),
    );
    return r;
  });
}
