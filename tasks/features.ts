/**
 * Read every SAE's dictionary: density histograms, max-activating examples, logit attribution and
 * the CE loss recovered with the SAE spliced into the transformer.
 *
 *   deno task features --preset demo
 *
 * Trains the SAEs first if they are out of date. Reads results/<run>/sae/f<N>/ (SAE, feature
 * stats), data/<run>/activations/heldout.parquet, data/<run>/tokens.parquet and the transformer.
 * Writes, per size, results/<run>/sae/f<N>/: density_histogram.parquet, examples.parquet,
 * logits.parquet, loss_recovered.parquet; and results/<run>/sae/features_summary.parquet.
 *
 * @module
 */
import {
  runUpstream,
  SAE_FILES,
  SAE_STAGE_FILES,
  stageParams,
  stageSource,
} from "../mod/run/mod.ts";
import * as tf from "@tensorflow/tfjs";
import * as arrow from "apache-arrow";
import { join } from "node:path";
import { fmtInt, log, runMain, type TaskSpec, TENSOR_OPTIONS } from "../mod/run/mod.ts";
import type { RunConfig } from "../mod/run/mod.ts";
import { initBackend } from "../mod/backend/mod.ts";
import { readParquet, writeParquet } from "../mod/io/mod.ts";
import { runPaths } from "../mod/run/mod.ts";
import { runStage, type StageResult } from "../mod/run/mod.ts";
import { stageMain } from "../mod/run/mod.ts";
import { readTokens } from "../mod/tokenize/mod.ts";
import { createTokenizer } from "../mod/tokenize/mod.ts";
import { readActivationShard } from "../mod/activations/mod.ts";
import { disposeSae, loadSae } from "../mod/sae/mod.ts";
import { disposeTransformer, type Transformer } from "../mod/transformer/mod.ts";
import { loadTransformer } from "../mod/transformer/mod.ts";
import { densityHistogram } from "../mod/features/mod.ts";
import { collectFeatureExamples, examplesTable } from "../mod/features/mod.ts";
import { logitAttribution, residualScale } from "../mod/features/mod.ts";
import { lossRecovered } from "../mod/features/mod.ts";

export const SPEC: TaskSpec = {
  name: "features",
  summary:
    "Density histograms, max-activating examples, logit attribution and loss recovered per SAE",
  details:
    "Writes results/<run>/sae/f<N>/{density_histogram,examples,logits,loss_recovered}.parquet.",
  options: TENSOR_OPTIONS,
};

/** Held-out sequences as [B, T] batches of the model's context length. */
function sequenceBatches(tokens: Uint16Array, T: number, n: number, batch = 8): tf.Tensor2D[] {
  const out: tf.Tensor2D[] = [];
  for (let s = 0; s < n; s += batch) {
    const count = Math.min(batch, n - s);
    out.push(
      tf.tensor2d(Int32Array.from(tokens.subarray(s * T, (s + count) * T)), [count, T], "int32"),
    );
  }
  return out;
}

function histogramTable(h: ReturnType<typeof densityHistogram>): arrow.Table {
  const rows = [
    {
      kind: "dead",
      log10_low: null,
      log10_high: null,
      count: h.dead,
      fraction: h.dead / h.features,
    },
    {
      kind: "ultra_low",
      log10_low: null,
      log10_high: Math.log10(h.ultraLowThreshold),
      count: h.ultraLow,
      fraction: h.ultraLow / h.features,
    },
    ...h.counts.map((c, i) => ({
      kind: "bin",
      log10_low: h.edges[i],
      log10_high: h.edges[i + 1],
      count: c,
      fraction: h.fractions[i],
    })),
  ];
  return arrow.tableFromJSON(rows);
}

/** Token strings for lists of ids, as a list<utf8> column (readable without a tokenizer). */
function tokenTextColumn(
  ids: Int32Array,
  offsets: Int32Array,
  text: (id: number) => string,
): arrow.Vector {
  const lists: string[][] = [];
  for (let e = 0; e + 1 < offsets.length; e++) {
    lists.push(Array.from(ids.subarray(offsets[e], offsets[e + 1]), text));
  }
  return arrow.vectorFromArray(
    lists,
    new arrow.List(new arrow.Field("item", new arrow.Utf8(), true)),
  );
}

export async function run(
  cfg: RunConfig,
  opts: { force?: boolean; backend?: string } = {},
): Promise<StageResult> {
  await runUpstream("features", cfg, { backend: opts.backend });
  const paths = runPaths(cfg);
  const fc = cfg.features;
  const saeRoot = paths.saeRoot;
  const modelPath = paths.transformer.weights;
  const heldoutPath = paths.activations.heldout;
  const dirs = cfg.sae.sizes.map((n) => paths.saeDir(n));
  const inputs = [
    modelPath,
    heldoutPath,
    paths.tokens,
    ...dirs.flatMap((d) => [join(d, SAE_FILES.weights), join(d, SAE_FILES.featureStats)]),
  ];
  const outputs = [
    ...dirs.flatMap((d) => SAE_STAGE_FILES.features.map((f) => join(d, SAE_FILES[f]))),
    paths.featuresSummary,
  ];
  return await runStage({
    name: "features",
    dir: saeRoot,
    inputs,
    params: stageParams(cfg, "features"),
    source: stageSource("features"),
    outputs,
    force: opts.force,
    run: async () => {
      const backend = await initBackend(opts.backend ?? cfg.backend);
      const model: Transformer = await loadTransformer(modelPath);
      const T = model.config.nCtx;
      const held = await readActivationShard(heldoutPath, { dIn: model.config.dMlp });
      const nHeld = held.seq.length;
      const val = await readTokens(paths.tokens, "val", {
        contextLength: T,
        vocabSize: model.config.dVocab,
      });
      const lossBatches = sequenceBatches(
        val.tokens,
        T,
        Math.min(fc.lossSequences, val.seq.length),
      );
      const lnScale = await residualScale(model, lossBatches);
      const tok = createTokenizer();
      const text = (id: number) => tok.tokenText(id);
      log(
        `features: ${cfg.sae.sizes.length} SAEs; ${
          fmtInt(nHeld)
        } held-out tokens (density resolution ` +
          `${(1 / nHeld).toExponential(1)}); loss recovered over ${
            lossBatches.reduce((a, b) => a + b.shape[0], 0)
          } ` +
          `sequences; final LayerNorm scale ${lnScale.toFixed(3)}`,
      );
      const summary = [];
      for (const dir of dirs) {
        const t0 = performance.now();
        const { sae: s } = await loadSae(dir);
        const F = s.cfg.dSae;
        const stats = await readParquet(join(dir, SAE_FILES.featureStats), {
          columns: ["count", "max_activation"],
        });
        const counts = stats.getChild("count")!.toArray() as Float64Array;
        const maxAct = stats.getChild("max_activation")!.toArray() as Float32Array;

        // Density histogram (dead and ultra-low apart, with the resolution they can be told at).
        const hist = densityHistogram(counts, nHeld, {
          ultraLow: fc.ultraLow,
          binsPerDecade: fc.binsPerDecade,
        });
        await writeParquet(join(dir, SAE_FILES.histogram), histogramTable(hist), {
          metadata: {
            heldout_tokens: String(nHeld),
            resolution: String(hist.resolution),
            note: hist.note,
          },
        });

        // Max-activating, quantile and random (silent-window first) examples, at most one per
        // sequence each, with every context token's activation.
        const { examples, stats: exStats } = await collectFeatureExamples(s, held, {
          topK: fc.topK,
          quantileBins: fc.quantileBins,
          perQuantile: fc.perQuantile,
          random: fc.random,
          contextBefore: fc.contextBefore,
          contextAfter: fc.contextAfter,
          microBatch: cfg.sae.microBatch,
          seed: cfg.seed,
          maxActivation: maxAct,
        });
        const table = examplesTable(examples);
        const withText = table.assign(
          new arrow.Table({
            context_text: tokenTextColumn(examples.contextTokens, examples.contextOffsets, text),
          }),
        );
        await writeParquet(join(dir, SAE_FILES.examples), withText, { rowGroupSize: 16384 });

        // Logit attribution: top and bottom tokens of each decoder direction.
        const la = await logitAttribution(model, s, { topN: fc.logitTopN, lnScale });
        await writeParquet(
          join(dir, SAE_FILES.logits),
          new arrow.Table({
            feature: arrow.makeVector(la.feature),
            sign: arrow.vectorFromArray(la.sign, new arrow.Utf8()),
            rank: arrow.makeVector(la.rank),
            token: arrow.makeVector(la.token),
            token_text: arrow.vectorFromArray(Array.from(la.token, text), new arrow.Utf8()),
            weight: arrow.makeVector(la.weight),
          }),
        );

        // CE loss with the SAE spliced in, against clean and zero-ablated MLP activations.
        const lr = await lossRecovered(model, s, lossBatches);
        await writeParquet(
          join(dir, SAE_FILES.lossRecovered),
          arrow.tableFromJSON([{
            clean_loss: lr.cleanLoss,
            sae_loss: lr.saeLoss,
            zero_ablation_loss: lr.zeroAblationLoss,
            loss_recovered: lr.lossRecovered,
            tokens: lr.nTokens,
          }]),
        );
        disposeSae(s);
        const seconds = (performance.now() - t0) / 1000;
        const row = {
          size: F,
          heldout_tokens: nHeld,
          resolution: hist.resolution,
          dead: hist.dead,
          ultra_low: hist.ultraLow,
          dead_or_ultra_low_fraction: hist.deadOrUltraLowFraction,
          examples: examples.feature.length,
          // Features with fewer silent-window random contexts than features.random asks for.
          random_short_features: exStats.silentWindows.filter((r) => r < fc.random).length,
          clean_loss: lr.cleanLoss,
          sae_loss: lr.saeLoss,
          zero_ablation_loss: lr.zeroAblationLoss,
          loss_recovered: lr.lossRecovered,
          seconds,
          heldout_tokens_per_s: nHeld / seconds,
        };
        summary.push(row);
        log(
          `features: f${F}: dead ${fmtInt(hist.dead)}, ultra-low (< ${
            fc.ultraLow.toExponential(0)
          }) ${fmtInt(hist.ultraLow)} ` +
            `of ${fmtInt(F)} [resolution ${hist.resolution.toExponential(1)}${
              hist.ultraLowUnmeasurable ? ": ultra-low not measurable" : ""
            }]; ` +
            `loss recovered ${lr.lossRecovered.toFixed(3)} (clean ${lr.cleanLoss.toFixed(3)}, SAE ${
              lr.saeLoss.toFixed(3)
            }, ` +
            `zero-ablated ${lr.zeroAblationLoss.toFixed(3)}); ${
              fmtInt(examples.feature.length)
            } examples; ${seconds.toFixed(1)} s`,
        );
      }
      tf.dispose(lossBatches);
      disposeTransformer(model);
      tok.free();
      await writeParquet(paths.featuresSummary, arrow.tableFromJSON(summary));
      return { backend: backend.name, summary };
    },
  });
}

export const main = stageMain(SPEC, run);

if (import.meta.main) await runMain(main);
