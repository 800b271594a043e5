/**
 * Steer the transformer with SAE features: add a feature's decoder direction, times a scale, to
 * the MLP activations at every position while generating, and compare with the unsteered output.
 *
 *   deno task steer --preset demo                                   # the config's features
 *   deno task steer --size 1024 --feature 12 --scale 4 --prompt "The" [--max-tokens 30]
 *
 * Scales are in units of the feature's largest activation on the held-out tokens, so scale 1 adds
 * the direction as strongly as the feature ever fires on its own. Runs the features stage first
 * if it is out of date. Writes results/<run>/sae/f<N>/steering.parquet (feature, scale, raw_scale,
 * prompt, steered and unsteered continuations) and prints them side by side.
 *
 * @module
 */
import { runUpstream, SAE_FILES, stageParams, stageSource } from "../mod/run/mod.ts";
import * as tf from "@tensorflow/tfjs";
import * as arrow from "apache-arrow";
import { join } from "node:path";
import { log, parseTaskArgs, runMain, type TaskSpec, TENSOR_OPTIONS } from "../mod/run/mod.ts";
import { configSources, loadConfig, lockRun, type RunConfig } from "../mod/run/mod.ts";
import { initBackend } from "../mod/backend/mod.ts";
import { readParquet, writeParquet } from "../mod/io/mod.ts";
import { runPaths } from "../mod/run/mod.ts";
import { runStage, setTopStage, type StageResult } from "../mod/run/mod.ts";
import { createTokenizer } from "../mod/tokenize/mod.ts";
import { disposeSae, loadSae, type Sae } from "../mod/sae/mod.ts";
import { addToMlpPost, disposeTransformer, type Transformer } from "../mod/transformer/mod.ts";
import { loadTransformer } from "../mod/transformer/mod.ts";
import { sample } from "../mod/transformer/mod.ts";

export const SPEC: TaskSpec = {
  name: "steer",
  summary:
    "Generate with an SAE feature's direction added to the MLP activations, beside the plain output",
  details: "Writes results/<run>/sae/f<N>/steering.parquet.",
  options: {
    ...TENSOR_OPTIONS,
    size: { type: "string", arg: "N", description: "SAE size (default steer.size)" },
    feature: {
      type: "string",
      arg: "I",
      multiple: true,
      description: "Feature index (repeatable)",
    },
    scale: {
      type: "string",
      arg: "S",
      multiple: true,
      description: "Scale, x the feature's max activation (repeatable)",
    },
    prompt: { type: "string", arg: "TEXT", multiple: true, description: "Prompt (repeatable)" },
    "max-tokens": { type: "string", arg: "N", description: "New tokens per sample" },
  },
};

export interface SteeringRow {
  feature: number;
  scale: number;
  raw_scale: number;
  prompt: string;
  unsteered: string;
  steered: string;
}

/** Greedy (or seeded) continuation of `prompt` with `scale` x the feature's direction added. */
export async function steer(
  model: Transformer,
  sae: Sae,
  opts: {
    feature: number;
    rawScale: number;
    promptIds: number[];
    maxNewTokens: number;
    temperature: number;
    seed: number;
  },
): Promise<number[]> {
  if (!Number.isInteger(opts.feature) || opts.feature < 0 || opts.feature >= sae.cfg.dSae) {
    throw new Error(`Feature ${opts.feature} does not exist in an SAE of ${sae.cfg.dSae} features`);
  }
  const dirD = tf.tidy(() =>
    tf.reshape(tf.slice(sae.wDecFD, [opts.feature, 0], [1, -1]), [-1]) as tf.Tensor1D
  );
  try {
    return await sample(model, opts.promptIds, {
      maxNewTokens: opts.maxNewTokens,
      temperature: opts.temperature,
      seed: opts.seed,
      hooks: { mlpPost: addToMlpPost(dirD, opts.rawScale) },
    });
  } finally {
    dirD.dispose();
  }
}

/** The `n` live features with the largest held-out activation. */
function pickFeatures(maxAct: Float32Array, counts: Float64Array, n: number): number[] {
  return Array.from(maxAct.keys()).filter((f) => counts[f] > 0).sort((a, b) =>
    maxAct[b] - maxAct[a]
  ).slice(0, n);
}

export async function run(
  cfg: RunConfig,
  opts: { force?: boolean; backend?: string } = {},
): Promise<StageResult> {
  await runUpstream("steer", cfg, { backend: opts.backend });
  const paths = runPaths(cfg);
  const st = cfg.steer;
  const dir = paths.saeDir(st.size);
  const modelPath = paths.transformer.weights;
  const statsPath = join(dir, SAE_FILES.featureStats);
  const out = join(dir, SAE_FILES.steering);
  return await runStage({
    name: `steer-f${st.size}`,
    dir,
    inputs: [modelPath, join(dir, SAE_FILES.weights), statsPath],
    params: stageParams(cfg, "steer"),
    source: stageSource("steer"),
    outputs: [out],
    force: opts.force,
    run: async () => {
      await initBackend(opts.backend ?? cfg.backend);
      const model = await loadTransformer(modelPath);
      const { sae } = await loadSae(dir);
      const stats = await readParquet(statsPath, { columns: ["count", "max_activation"] });
      const counts = stats.getChild("count")!.toArray() as Float64Array;
      const maxAct = stats.getChild("max_activation")!.toArray() as Float32Array;
      const feats = st.features.length > 0
        ? st.features
        : pickFeatures(maxAct, counts, st.autoFeatures);
      const tok = createTokenizer();
      const rows: SteeringRow[] = [];
      try {
        for (const prompt of st.prompts) {
          const promptIds = Array.from(tok.encode(prompt));
          const base = {
            promptIds,
            maxNewTokens: st.maxNewTokens,
            temperature: st.temperature,
            seed: cfg.seed,
          };
          const plain = tok.decode(await sample(model, promptIds, base));
          for (const feature of feats) {
            if (feature >= sae.cfg.dSae) {
              throw new Error(
                `Feature ${feature} does not exist in the ${sae.cfg.dSae}-feature SAE`,
              );
            }
            for (const scale of st.scales) {
              const rawScale = scale * (maxAct[feature] || 1);
              const ids = await steer(model, sae, { ...base, feature, rawScale });
              rows.push({
                feature,
                scale,
                raw_scale: rawScale,
                prompt,
                unsteered: plain,
                steered: tok.decode(ids),
              });
              log(`steer: f${st.size}/${feature} x${scale} | ${JSON.stringify(prompt)}`);
              log(`  plain:   ${JSON.stringify(plain)}`);
              log(`  steered: ${JSON.stringify(tok.decode(ids))}`);
            }
          }
        }
      } finally {
        tok.free();
        disposeSae(sae);
        disposeTransformer(model);
      }
      await writeParquet(out, arrow.tableFromJSON(rows as unknown as Record<string, unknown>[]));
      return { rows: rows.length, features: feats };
    },
  });
}

export async function main(args: string[] = Deno.args): Promise<void> {
  const { values } = parseTaskArgs(SPEC, args);
  setTopStage(SPEC.name);
  const set = [...((values.set as string[] | undefined) ?? [])];
  const list = (flag: string) => (values[flag] as string[] | undefined) ?? [];
  if (values.size) set.push(`steer.size=${values.size}`);
  if (list("feature").length) set.push(`steer.features=[${list("feature").join(",")}]`);
  if (list("scale").length) set.push(`steer.scales=[${list("scale").join(",")}]`);
  if (list("prompt").length) set.push(`steer.prompts=${JSON.stringify(list("prompt"))}`);
  if (values["max-tokens"]) set.push(`steer.maxNewTokens=${values["max-tokens"]}`);
  const cfg = await loadConfig(configSources({ ...values, set }));
  await lockRun(cfg, SPEC.name);
  await run(cfg, { force: values.force as boolean, backend: values.backend as string | undefined });
}

if (import.meta.main) await runMain(main);
