/**
 * Autointerpretability through the OpenAI API (or any OpenAI-compatible endpoint): explain each
 * selected feature from its top examples, simulate its activations from the explanation alone and
 * score the match (Pearson x 100, as the paper's "Score: 40"), plus delphi's detection and
 * fuzzing scores as a second opinion.
 *
 *   OPENAI_API_KEY=sk-... deno task autointerp --preset demo
 *   OPENAI_API_KEY=none OPENAI_BASE_URL=http://127.0.0.1:8000/v1 deno task autointerp \
 *       --set autointerp.explainerModel=my-model --set autointerp.simulatorModel=my-model
 *
 * Without OPENAI_API_KEY the stage skips with one line, and `deno task sweep` goes on. Reads
 * results/<run>/sae/f<N>/examples.parquet and feature_stats.parquet (features stage). Writes
 * results/<run>/sae/f<N>/explanations.parquet (feature, explanation, simulation_score,
 * detection and fuzzing accuracy/F1, models, error, tokens, contexts per step). Examples are split
 * between explainer and scorers by held-out sequence. Every request and response is cached
 * under results/<run>/sae/autointerp_cache/ (keyed by a hash of prompt and model), so an
 * interrupted run resumes without paying twice. The key is read from the environment only and is
 * never written to a file or a log.
 *
 * @module
 */
import { runUpstream, SAE_FILES, stageParams, stageSource } from "../mod/run/mod.ts";
import * as arrow from "apache-arrow";
import { join } from "node:path";
import { CONFIG_OPTIONS, fmtInt, log, runMain, type TaskSpec } from "../mod/run/mod.ts";
import type { RunConfig } from "../mod/run/mod.ts";
import { readParquet, writeParquet } from "../mod/io/mod.ts";
import { runPaths } from "../mod/run/mod.ts";
import { runStage, type StageResult } from "../mod/run/mod.ts";
import { stageMain } from "../mod/run/mod.ts";
import { deriveSeed, Rng } from "../mod/run/mod.ts";
import {
  AutointerpClient,
  DEFAULT_DETECTION,
  estimateRun,
  EXAMPLE_COLUMNS,
  type FeatureInput,
  featureInputsFromTable,
  type FeatureScore,
  scoreFeatures,
} from "../mod/autointerp/mod.ts";

export const SPEC: TaskSpec = {
  name: "autointerp",
  summary: "Explain, simulate and score SAE features with an OpenAI-compatible API",
  details: "Needs OPENAI_API_KEY (and OPENAI_BASE_URL for another endpoint); skips without it.",
  options: CONFIG_OPTIONS,
};

/** Reads a features-stage examples.parquet into one FeatureInput per feature. */
export async function featureInputs(path: string): Promise<Map<number, FeatureInput>> {
  const t = await readParquet(path, { columns: EXAMPLE_COLUMNS });
  try {
    return featureInputsFromTable(t);
  } catch (e) {
    throw new Error(`Cannot read examples "${path}": ${(e as Error).message}`);
  }
}

/** Which features of one SAE to explain, by the config's rule. */
export function selectFeatures(
  ai: RunConfig["autointerp"],
  stats: { density: Float64Array; maxActivation: Float32Array },
  seed: number,
): number[] {
  const alive = Array.from(stats.density.keys()).filter((f) => stats.density[f] > 0);
  switch (ai.select) {
    case "list":
      return ai.features.filter((f) => f < stats.density.length);
    case "top":
      return alive.sort((a, b) => stats.maxActivation[b] - stats.maxActivation[a]).slice(0, ai.n);
    case "band":
      return alive.filter((f) =>
        stats.density[f] >= ai.densityMin && stats.density[f] <= ai.densityMax
      ).slice(0, ai.n);
    default: {
      const rng = new Rng(deriveSeed(seed, "autointerp:select"));
      return (rng.shuffle([...alive]) as number[]).slice(0, ai.n).sort((a, b) => a - b);
    }
  }
}

/**
 * explanations.parquet, with every column typed explicitly: a run whose explanations all failed
 * still has an `explanation` column (all null), which Arrow's type inference would drop.
 */
export function explanationsTable(
  scores: FeatureScore[],
  explainer: string,
  simulator: string,
): arrow.Table {
  const str = (f: (s: FeatureScore) => string | null) =>
    arrow.vectorFromArray(scores.map(f), new arrow.Utf8());
  const num = (f: (s: FeatureScore) => number | null | undefined) =>
    arrow.vectorFromArray(scores.map((s) => f(s) ?? null), new arrow.Float64());
  const int = (f: (s: FeatureScore) => number | null | undefined) =>
    arrow.vectorFromArray(scores.map((s) => f(s) ?? null), new arrow.Int32());
  return new arrow.Table({
    feature: int((s) => s.featureId),
    explanation: str((s) => s.explanation),
    simulation_score: num((s) => s.simulationScore),
    simulation_null_reason: str((s) => s.simulationNullReason ?? null),
    detection_accuracy: num((s) => s.detection?.accuracy),
    detection_f1: num((s) => s.detection?.f1),
    fuzzing_accuracy: num((s) => s.fuzzing?.accuracy),
    fuzzing_f1: num((s) => s.fuzzing?.f1),
    explainer_model: str(() => explainer),
    simulator_model: str(() => simulator),
    error: str((s) => (s.errors.length > 0 ? s.errors.join("; ") : null)),
    prompt_tokens: int((s) => s.promptTokens),
    completion_tokens: int((s) => s.completionTokens),
    cached_requests: int((s) => s.cachedRequests),
    explain_contexts: int((s) => s.counts?.explain),
    simulation_contexts: int((s) => s.counts?.simulation),
    detection_activating: int((s) => s.counts?.detectionActivating),
    detection_silent: int((s) => s.counts?.detectionSilent),
    fuzzing_contexts: int((s) => s.counts?.fuzzing),
    dropped_same_sequence: int((s) => s.counts?.droppedSameSequence),
  });
}

/**
 * Fails before any work when this process may not reach the endpoint's host: fetch would only
 * say "Connection error." for each request.
 */
export function checkHostAllowed(baseURL: string): void {
  let url: URL;
  try {
    url = new URL(baseURL);
  } catch {
    throw new Error(`OpenAI base URL "${baseURL}" is not a valid URL`);
  }
  const state = Deno.permissions.querySync({ name: "net", host: url.host }).state;
  if (state !== "granted") {
    throw new Error(
      `Cannot reach "${baseURL}": host "${url.hostname}" is not among the hosts this task may ` +
        `reach; add it to --allow-net of the autointerp task in deno.json`,
    );
  }
}

function envVar(name: string): string | undefined {
  const granted = Deno.permissions.querySync({ name: "env", variable: name }).state === "granted";
  return granted ? Deno.env.get(name) || undefined : undefined;
}

export async function run(
  cfg: RunConfig,
  opts: { force?: boolean; apiKey?: string; baseURL?: string } = {},
): Promise<StageResult | null> {
  const apiKey = opts.apiKey ?? envVar("OPENAI_API_KEY");
  if (!apiKey) {
    log(
      "autointerp: skipped: set OPENAI_API_KEY to enable it (and OPENAI_BASE_URL for an " +
        "OpenAI-compatible server such as vLLM, Ollama or LM Studio)",
    );
    return null;
  }
  await runUpstream("autointerp", cfg);
  const ai = cfg.autointerp;
  const baseURL = opts.baseURL ?? envVar("OPENAI_BASE_URL") ?? ai.baseURL;
  checkHostAllowed(baseURL);
  const paths = runPaths(cfg);
  const saeRoot = paths.saeRoot;
  const dirs = ai.sizes.map((n) => paths.saeDir(n));
  return await runStage({
    name: "autointerp",
    dir: saeRoot,
    inputs: dirs.flatMap((d) => [join(d, SAE_FILES.examples), join(d, SAE_FILES.featureStats)]),
    // The endpoint is a parameter (another server may answer differently); the key never is.
    params: { ...stageParams(cfg, "autointerp"), baseURL },
    source: stageSource("autointerp"),
    outputs: dirs.map((d) => join(d, SAE_FILES.explanations)),
    force: opts.force,
    run: async () => {
      const common = {
        apiKey,
        baseURL,
        cacheDir: join(saeRoot, "autointerp_cache"),
        concurrency: ai.concurrency,
        timeoutMs: ai.timeoutS * 1000,
        maxRetries: ai.maxRetries,
      };
      const explainer = new AutointerpClient({ ...common, model: ai.explainerModel });
      const simulator = ai.simulatorModel === ai.explainerModel
        ? explainer
        : new AutointerpClient({ ...common, model: ai.simulatorModel });
      const scoreOpts = {
        seed: cfg.seed,
        logprobs: ai.logprobs,
        detection: ai.detection,
        fuzzing: ai.fuzzing,
        maxTokensField: ai.maxTokensField,
      };
      const stats: Record<string, unknown>[] = [];
      let failedAll = 0, total = 0, firstError = "";
      // Written only once every SAE is done and something was explained: a failed run (a wrong
      // host, key or model) leaves the earlier explanations.parquet files as they were.
      const tables: [string, arrow.Table][] = [];
      for (const dir of dirs) {
        const fs = await readParquet(join(dir, SAE_FILES.featureStats), {
          columns: ["density", "max_activation"],
        });
        const chosen = selectFeatures(ai, {
          density: fs.getChild("density")!.toArray() as Float64Array,
          maxActivation: fs.getChild("max_activation")!.toArray() as Float32Array,
        }, cfg.seed);
        const inputs = await featureInputs(join(dir, SAE_FILES.examples));
        const todo = chosen.filter((f) => inputs.get(f)?.top.length).map((f) => inputs.get(f)!);
        const est = await estimateRun(ai.explainerModel, todo, scoreOpts);
        log(
          `autointerp: ${dir}: ${todo.length} features (${ai.select}); about ${
            fmtInt(est.requests)
          } requests, ` +
            `${fmtInt(est.promptTokens)} prompt tokens and at most ${
              fmtInt(est.maxCompletionTokens)
            } completion tokens ` +
            `(estimated with ${est.method}) at ${baseURL}`,
        );
        const scores = await scoreFeatures(explainer, todo, {
          ...scoreOpts,
          featureConcurrency: ai.concurrency,
        }, simulator);
        tables.push([
          join(dir, SAE_FILES.explanations),
          explanationsTable(scores, ai.explainerModel, ai.simulatorModel),
        ]);
        const spent = scores.reduce(
          (a, s) => [a[0] + s.promptTokens, a[1] + s.completionTokens, a[2] + s.cachedRequests],
          [0, 0, 0],
        );
        const scored = scores.filter((s) => s.simulationScore !== null);
        const mean = scored.reduce((a, s) => a + s.simulationScore!, 0) / (scored.length || 1);
        log(
          `autointerp: ${dir}: ${scored.length}/${scores.length} scored, mean simulation score ${
            mean.toFixed(1)
          }; ` +
            `spent ${fmtInt(spent[0])} prompt + ${fmtInt(spent[1])} completion tokens (${
              fmtInt(spent[2])
            } answers from the cache)`,
        );
        if (ai.detection) {
          const want = DEFAULT_DETECTION.silent;
          const short = scores.filter((s) => s.counts && s.counts.detectionSilent < want);
          if (short.length > 0) {
            log(
              `autointerp: ${dir}: ${short.length} features had fewer than ${want} detection ` +
                "negatives (contexts silent over the whole window); explanations.parquet " +
                "detection_silent has each count",
            );
          }
        }
        total += scores.length;
        const failed = scores.filter((s) => s.explanation === null);
        failedAll += failed.length;
        firstError ||= failed[0]?.errors[0] ?? "";
        stats.push({
          dir,
          features: scores.length,
          scored: scored.length,
          meanScore: mean,
          promptTokens: spent[0],
          completionTokens: spent[1],
        });
      }
      // Nothing could be explained (a wrong host, key or model): fail, so the stage is not marked done.
      if (total > 0 && failedAll === total) {
        throw new Error(
          `Autointerp: every feature failed, so no explanations.parquet was rewritten; the first ` +
            `error: ${firstError}`,
        );
      }
      for (const [path, table] of tables) await writeParquet(path, table);
      return { stats };
    },
  });
}

export const main = stageMain(SPEC, run);

if (import.meta.main) await runMain(main);
