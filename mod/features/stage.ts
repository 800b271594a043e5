/**
 * The features stage's body, run by tasks/features.ts (`runFeaturesStage`): read every primary
 * SAE's dictionary (density histogram, max-activating examples, logit attribution, CE loss
 * recovered), and with several architectures each one's first-init replicate 0 too (browsedSlots
 * in mod/run/layout.ts), and write features_summary.parquet (one row per SAE read, by name). The task keeps the command line; what the stage
 * reads and writes is listed in its module header.
 *
 * In order: `prepareFeatures` (backend, transformer, held-out activations, validation sequences
 * for the loss, the final LayerNorm scale, the tokenizer), then `readDictionary` per SAE (each of
 * its four files by its own writer, then its summary row and log line).
 *
 * Imported by tasks/features.ts only, not re-exported by mod.ts, so that it enters the features
 * stage's source hash and no other stage's.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import * as arrow from "apache-arrow";
import { join } from "node:path";
import {
  browsedSlots,
  fmtInt,
  log,
  type RunConfig,
  runPaths,
  runStage,
  runUpstream,
  SAE_FILES,
  SAE_STAGE_FILES,
  type SaeSlot,
  stageParams,
  type StageResult,
  stageSource,
} from "../run/mod.ts";
import { type BackendInfo, initBackend } from "../backend/mod.ts";
import { readParquet, writeParquet } from "../io/mod.ts";
import { createTokenizer, readTokens } from "../tokenize/mod.ts";
import { readActivationShard } from "../activations/mod.ts";
import { disposeSae, loadSae, type NativeSaeStep, nativeSaeStep, type Sae } from "../sae/mod.ts";
import { disposeTransformer, loadTransformer, type Transformer } from "../transformer/mod.ts";
import { densityHistogram } from "./density.ts";
import { collectFeatureExamples, examplesTable } from "./max_activating.ts";
import { logitAttribution, residualScale } from "./logit_attribution.ts";
import { lossRecovered } from "./loss_recovered.ts";

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

/** What every SAE's reading shares: the model, the held-out activations, the loss batches. */
interface FeaturesContext {
  cfg: RunConfig;
  backend: BackendInfo;
  model: Transformer;
  held: Awaited<ReturnType<typeof readActivationShard>>;
  nHeld: number;
  lossBatches: tf.Tensor2D[];
  lnScale: number;
  tok: ReturnType<typeof createTokenizer>;
  text: (id: number) => string;
  /** The native sparse encode for the examples' pass, where it can run (same results). */
  nativeStep?: NativeSaeStep;
}

/** Runs the features stage through the stage runner: upstream first, then skipped when current. */
export async function runFeaturesStage(
  cfg: RunConfig,
  opts: { force?: boolean; backend?: string } = {},
): Promise<StageResult> {
  await runUpstream("features", cfg, { backend: opts.backend });
  const paths = runPaths(cfg);
  const saeRoot = paths.saeRoot;
  const modelPath = paths.transformer.weights;
  const heldoutPath = paths.activations.heldout;
  // The primary SAEs f<N>, then each other architecture's first-init replicate 0 (browsedSlots).
  const slots = browsedSlots(cfg.sae);
  const dirs = slots.map((slot) => paths.slotDir(slot));
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
      const ctx = await prepareFeatures(cfg, { backend: opts.backend, modelPath, heldoutPath });
      const summary = [];
      for (const slot of slots) summary.push(await readDictionary(ctx, slot, paths.slotDir(slot)));
      tf.dispose(ctx.lossBatches);
      disposeTransformer(ctx.model);
      ctx.tok.free();
      ctx.nativeStep?.dispose();
      await writeParquet(paths.featuresSummary, arrow.tableFromJSON(summary));
      return { backend: ctx.backend.name, summary };
    },
  });
}

/**
 * Loading: the backend, the transformer, the held-out activations, the validation sequences the
 * loss is measured on, the final LayerNorm scale for logit attribution, and the tokenizer.
 */
async function prepareFeatures(
  cfg: RunConfig,
  opts: { backend?: string; modelPath: string; heldoutPath: string },
): Promise<FeaturesContext> {
  const fc = cfg.features;
  const paths = runPaths(cfg);
  const backend = await initBackend(opts.backend ?? cfg.backend);
  const model: Transformer = await loadTransformer(opts.modelPath);
  const T = model.config.nCtx;
  const held = await readActivationShard(opts.heldoutPath, { dIn: model.config.dMlp });
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
  const native = nativeSaeStep({ threads: backend.threads });
  log(
    native.step
      ? `features: examples from the native sparse encode (${backend.threads} threads)`
      : `features: examples on tfjs, dense (native encode unavailable: ${native.reason})`,
  );
  log(
    `features: ${browsedSlots(cfg.sae).length} SAEs; ${
      fmtInt(nHeld)
    } held-out tokens (density resolution ` +
      `${(1 / nHeld).toExponential(1)}); loss recovered over ${
        lossBatches.reduce((a, b) => a + b.shape[0], 0)
      } ` +
      `sequences; final LayerNorm scale ${lnScale.toFixed(3)}`,
  );
  return {
    cfg,
    backend,
    model,
    held,
    nHeld,
    lossBatches,
    lnScale,
    tok,
    text,
    nativeStep: native.step ?? undefined,
  };
}

/** One SAE's dictionary: its four files, then its summary row (and log line). */
async function readDictionary(ctx: FeaturesContext, slot: SaeSlot, dir: string) {
  const fc = ctx.cfg.features;
  const nHeld = ctx.nHeld;
  const t0 = performance.now();
  const { sae: s } = await loadSae(dir);
  const F = s.cfg.dSae;
  const stats = await readParquet(join(dir, SAE_FILES.featureStats), {
    columns: ["count", "max_activation"],
  });
  const counts = stats.getChild("count")!.toArray() as Float64Array;
  const maxAct = stats.getChild("max_activation")!.toArray() as Float32Array;
  const hist = await writeDensityHistogram(ctx, dir, counts);
  const { examples, stats: exStats } = await writeExamples(ctx, dir, s, maxAct);
  await writeLogits(ctx, dir, s);
  const lr = await writeLossRecovered(ctx, dir, s);
  disposeSae(s);
  const seconds = (performance.now() - t0) / 1000;
  const row = {
    name: slot.name,
    architecture: slot.architecture,
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
  log(
    `features: ${slot.name}: dead ${fmtInt(hist.dead)}, ultra-low (< ${
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
  return row;
}

/** Density histogram (dead and ultra-low apart, with the resolution they can be told at). */
async function writeDensityHistogram(
  ctx: FeaturesContext,
  dir: string,
  counts: Float64Array,
): Promise<ReturnType<typeof densityHistogram>> {
  const fc = ctx.cfg.features;
  const hist = densityHistogram(counts, ctx.nHeld, {
    ultraLow: fc.ultraLow,
    binsPerDecade: fc.binsPerDecade,
  });
  await writeParquet(join(dir, SAE_FILES.histogram), histogramTable(hist), {
    metadata: {
      heldout_tokens: String(ctx.nHeld),
      resolution: String(hist.resolution),
      note: hist.note,
    },
  });
  return hist;
}

/**
 * Max-activating, quantile and random (silent-window first) examples, at most one per sequence
 * each, with every context token's activation (and its text).
 */
async function writeExamples(
  ctx: FeaturesContext,
  dir: string,
  s: Sae,
  maxAct: Float32Array,
): Promise<Awaited<ReturnType<typeof collectFeatureExamples>>> {
  const fc = ctx.cfg.features;
  const collected = await collectFeatureExamples(s, ctx.held, {
    topK: fc.topK,
    quantileBins: fc.quantileBins,
    perQuantile: fc.perQuantile,
    random: fc.random,
    contextBefore: fc.contextBefore,
    contextAfter: fc.contextAfter,
    microBatch: ctx.cfg.sae.microBatch,
    seed: ctx.cfg.seed,
    maxActivation: maxAct,
    nativeStep: ctx.nativeStep,
  });
  const { examples } = collected;
  const table = examplesTable(examples);
  const withText = table.assign(
    new arrow.Table({
      context_text: tokenTextColumn(examples.contextTokens, examples.contextOffsets, ctx.text),
    }),
  );
  await writeParquet(join(dir, SAE_FILES.examples), withText, { rowGroupSize: 16384 });
  return collected;
}

/** Logit attribution: top and bottom tokens of each decoder direction. */
async function writeLogits(ctx: FeaturesContext, dir: string, s: Sae): Promise<void> {
  const la = await logitAttribution(ctx.model, s, {
    topN: ctx.cfg.features.logitTopN,
    lnScale: ctx.lnScale,
  });
  await writeParquet(
    join(dir, SAE_FILES.logits),
    new arrow.Table({
      feature: arrow.makeVector(la.feature),
      sign: arrow.vectorFromArray(la.sign, new arrow.Utf8()),
      rank: arrow.makeVector(la.rank),
      token: arrow.makeVector(la.token),
      token_text: arrow.vectorFromArray(Array.from(la.token, ctx.text), new arrow.Utf8()),
      weight: arrow.makeVector(la.weight),
    }),
  );
}

/** CE loss with the SAE spliced in, against clean and zero-ablated MLP activations. */
async function writeLossRecovered(
  ctx: FeaturesContext,
  dir: string,
  s: Sae,
): Promise<Awaited<ReturnType<typeof lossRecovered>>> {
  const lr = await lossRecovered(ctx.model, s, ctx.lossBatches);
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
  return lr;
}
