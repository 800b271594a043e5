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

function explanationsTable(
  scores: FeatureScore[],
  explainer: string,
  simulator: string,
): arrow.Table {
  return arrow.tableFromJSON(scores.map((s) => ({
    feature: s.featureId,
    explanation: s.explanation,
    simulation_score: s.simulationScore,
    simulation_null_reason: s.simulationNullReason,
    detection_accuracy: s.detection?.accuracy ?? null,
    detection_f1: s.detection?.f1 ?? null,
    fuzzing_accuracy: s.fuzzing?.accuracy ?? null,
    fuzzing_f1: s.fuzzing?.f1 ?? null,
    explainer_model: explainer,
    simulator_model: simulator,
    error: s.errors.length > 0 ? s.errors.join("; ") : null,
    prompt_tokens: s.promptTokens,
    completion_tokens: s.completionTokens,
    cached_requests: s.cachedRequests,
    explain_contexts: s.counts?.explain ?? null,
    simulation_contexts: s.counts?.simulation ?? null,
    detection_activating: s.counts?.detectionActivating ?? null,
    detection_silent: s.counts?.detectionSilent ?? null,
    fuzzing_contexts: s.counts?.fuzzing ?? null,
    dropped_same_sequence: s.counts?.droppedSameSequence ?? null,
  })));
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
        await writeParquet(
          join(dir, SAE_FILES.explanations),
          explanationsTable(scores, ai.explainerModel, ai.simulatorModel),
        );
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
        throw new Error(`Autointerp: every feature failed; the first error: ${firstError}`);
      }
      return { stats };
    },
  });
}

export const main = stageMain(SPEC, run);

if (import.meta.main) await runMain(main);
