/**
 * The train stage's body, run by tasks/train.ts (`runTrainStage`): train the one-layer
 * transformer on the token sequences, then measure the final validation loss over the whole
 * validation split and write the model's files. The task keeps the command line; what the stage
 * reads and writes is listed in its module header.
 *
 * In order: `prepareTraining` (backend, tokens, model, optimizer, resume from a checkpoint made
 * for the same config and tokens), `validationBatches`, `trainLoop` (forward-backward-update,
 * timing, `logStep`, evaluation and checkpoints), `finalValidation` (the whole split, with its
 * standard error) and `writeTrainOutputs` (weights, config, loss curve, summary).
 *
 * Imported by tasks/train.ts only, not re-exported by mod.ts: every stage that reads the
 * transformer imports mod.ts, and a stage body reached through it would enter their source hashes.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import * as arrow from "apache-arrow";
import {
  deriveSeed,
  fmtInt,
  hashFile,
  hashJson,
  HOOK_NAME,
  log,
  Rng,
  type RunConfig,
  runPaths,
  runStage,
  runUpstream,
  stageParams,
  type StageResult,
  stageSource,
} from "../run/mod.ts";
import { type BackendInfo, initBackend } from "../backend/mod.ts";
import { writeJsonAtomic, writeParquet } from "../io/mod.ts";
import { GPT2_VOCAB_SIZE, readTokens } from "../tokenize/mod.ts";
import {
  createTransformer,
  disposeTransformer,
  type Transformer,
  type TransformerConfig,
  transformerConfig,
} from "./model.ts";
import { evalLoss, lrSchedule, makeOptimizer, splitLoss, trainStep } from "./train.ts";
import type { Adam } from "./adam.ts";
import { saveTransformer } from "./io.ts";
import { loadCheckpoint, type LossRow, saveCheckpoint } from "./checkpoint.ts";

/** Entropy (nats) of the token unigram distribution: the loss of a model that ignores context. */
export function unigramEntropy(tokens: Uint16Array, vocab = GPT2_VOCAB_SIZE): number {
  const counts = new Float64Array(vocab);
  for (const t of tokens) counts[t]++;
  let h = 0;
  for (const c of counts) if (c > 0) h -= (c / tokens.length) * Math.log(c / tokens.length);
  return h;
}

/** The sequence indices of step `step`'s batch: a pure function of seed and step, for resume. */
export function batchIndices(seed: number, step: number, batch: number, n: number): Int32Array {
  const rng = new Rng(deriveSeed(seed, `train:batch:${step}`));
  return Int32Array.from({ length: batch }, () => rng.int(n));
}

function gather(tokens: Uint16Array, idx: ArrayLike<number>, T: number): tf.Tensor2D {
  const out = new Int32Array(idx.length * T);
  for (let i = 0; i < idx.length; i++) out.set(tokens.subarray(idx[i] * T, idx[i] * T + T), i * T);
  return tf.tensor2d(out, [idx.length, T], "int32");
}

function fmtDuration(s: number): string {
  if (!Number.isFinite(s)) return "?";
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, "0")}s` : `${Math.round(s)}s`;
}

type Tokens = Awaited<ReturnType<typeof readTokens>>;

/** The transformer's files under results/<run>/transformer/. */
interface TrainFiles {
  model: string;
  config: string;
  loss: string;
  summary: string;
  checkpoint: string;
}

/** Everything the loop, the evaluation and the writers share once training is set up. */
interface Training {
  cfg: RunConfig;
  backend: BackendInfo;
  train: Tokens;
  val: Tokens;
  mc: TransformerConfig;
  model: Transformer;
  optimizer: Adam;
  /** The checkpoint's key: a checkpoint is reused only for the same config and tokens. */
  key: string;
  /** Loss rows so far (restored on resume) and the step training starts at. */
  rows: LossRow[];
  start: number;
}

/** Runs the train stage through the stage runner: upstream first, then skipped when current. */
export async function runTrainStage(
  cfg: RunConfig,
  opts: { force?: boolean; backend?: string } = {},
): Promise<StageResult> {
  await runUpstream("train", cfg);
  const paths = runPaths(cfg);
  const dir = paths.transformerDir;
  const t = paths.transformer;
  const files: TrainFiles = {
    model: t.weights,
    config: t.config,
    loss: t.loss,
    summary: t.summary,
    checkpoint: t.checkpoint,
  };
  const params = stageParams(cfg, "train");
  return await runStage({
    name: "train",
    dir,
    inputs: [paths.tokens],
    params,
    source: stageSource("train"),
    outputs: [files.model, files.config, files.loss, files.summary],
    force: opts.force,
    run: async () => {
      const tr = await prepareTraining(cfg, files, { ...opts, params });
      const valBatches = validationBatches(tr);
      logTrainingStart(tr);
      const trainTime = await trainLoop(tr, valBatches, files.checkpoint);
      tf.dispose(valBatches);
      const full = await finalValidation(tr);
      return await writeTrainOutputs(tr, files, { full, trainTime });
    },
  });
}

/**
 * Loading and resume: the backend, the train and validation tokens, a fresh model and optimizer,
 * and the checkpoint when its key matches (an unreadable one, damaged on disk, only costs the
 * steps it held).
 */
async function prepareTraining(
  cfg: RunConfig,
  files: TrainFiles,
  opts: { force?: boolean; backend?: string; params: unknown },
): Promise<Training> {
  const paths = runPaths(cfg);
  const backend = await initBackend(opts.backend ?? cfg.backend);
  const T = cfg.tokenize.contextLength;
  const train = await readTokens(paths.tokens, "train", {
    contextLength: T,
    vocabSize: GPT2_VOCAB_SIZE,
  });
  const val = await readTokens(paths.tokens, "val", { contextLength: T });
  const nTrain = train.seq.length;
  if (nTrain === 0) throw new Error(`Tokens file "${paths.tokens}" has no training sequences`);
  const tc = cfg.train;
  const mc = transformerConfig({ ...cfg.model, nCtx: T, dVocab: GPT2_VOCAB_SIZE });
  const model = createTransformer(mc, { seed: cfg.seed });
  const optimizer = makeOptimizer(model, { lr: tc.lr, weightDecay: tc.weightDecay });
  const key = hashJson({ params: opts.params, tokens: await hashFile(paths.tokens) });
  const resumed = opts.force
    ? null
    : await loadCheckpoint(files.checkpoint, { model, optimizer, key }).catch((e) => {
      log(`train: starting afresh: the checkpoint is unreadable (${(e as Error).message})`);
      return null;
    });
  const rows: LossRow[] = resumed?.rows ?? [];
  const start = resumed?.step ?? 0;
  if (resumed) log(`train: resuming from the checkpoint at step ${start}`);
  return { cfg, backend, train, val, mc, model, optimizer, key, rows, start };
}

/** The periodic validation sample: the first train.evalBatches batches of the validation split. */
function validationBatches(tr: Training): tf.Tensor2D[] {
  const tc = tr.cfg.train, T = tr.cfg.tokenize.contextLength;
  const valBatches: tf.Tensor2D[] = [];
  const nEval = Math.min(tr.val.seq.length, tc.evalBatches * tc.batchSize);
  for (let i = 0; i < nEval; i += tc.batchSize) {
    const idx = Array.from({ length: Math.min(tc.batchSize, nEval - i) }, (_, k) => i + k);
    valBatches.push(gather(tr.val.tokens, idx, T));
  }
  return valBatches;
}

function logTrainingStart(tr: Training): void {
  const tc = tr.cfg.train, T = tr.cfg.tokenize.contextLength, mc = tr.mc;
  log(
    `train: ${fmtInt(tr.train.seq.length)} training sequences of ${T} tokens, ${
      fmtInt(tr.val.seq.length)
    } validation; ` +
      `d_model ${mc.dModel}, ${mc.nHeads} heads, d_mlp ${mc.dMlp}; ${tc.steps} steps of ${tc.batchSize} x ${T}`,
  );
}

/**
 * The training loop from the resumed step: forward-backward-update, timing, evaluation on the
 * validation sample, logging and checkpoints. Returns the seconds spent in training steps.
 */
async function trainLoop(
  tr: Training,
  valBatches: tf.Tensor2D[],
  checkpoint: string,
): Promise<number> {
  const { cfg, model, optimizer, rows, key } = tr;
  const tc = cfg.train, T = cfg.tokenize.contextLength, nTrain = tr.train.seq.length;
  const validate = async () => {
    if (valBatches.length === 0) return null;
    let total = 0;
    for (const b of valBatches) total += await evalLoss(model, b);
    return total / valBatches.length;
  };
  const tokensPerStep = tc.batchSize * T;
  let windowStart = performance.now(), windowSteps = 0, tokensPerS = 0, trainTime = 0;
  for (let step = tr.start; step < tc.steps; step++) {
    // Forward, backward, update (the batch is a pure function of seed and step).
    const lr = lrSchedule(step, {
      lr: tc.lr,
      warmupSteps: tc.warmupSteps,
      totalSteps: tc.steps,
      minLrRatio: tc.minLrRatio,
    });
    const batch = gather(tr.train.tokens, batchIndices(cfg.seed, step, tc.batchSize, nTrain), T);
    const t0 = performance.now();
    const loss = await trainStep(model, optimizer, batch, { lr, clipNorm: tc.clipNorm });
    trainTime += (performance.now() - t0) / 1000;
    batch.dispose();
    if (!Number.isFinite(loss)) {
      throw new Error(
        `Training diverged: loss is ${loss} at step ${step + 1} (try a lower train.lr)`,
      );
    }
    windowSteps++;
    const done = step + 1;
    // Timing and logging.
    if (done % tc.logEvery === 0 || done === tc.steps) {
      const now = performance.now();
      tokensPerS = (windowSteps * tokensPerStep) / ((now - windowStart) / 1000);
      windowStart = now;
      windowSteps = 0;
    }
    // Evaluate and checkpoint.
    const valLoss = done % tc.evalEvery === 0 || done === tc.steps ? await validate() : null;
    rows.push({
      step: done,
      tokens_seen: done * tokensPerStep,
      train_loss: loss,
      val_loss: valLoss,
      lr,
      tokens_per_s: tokensPerS,
    });
    if (done % tc.logEvery === 0 || valLoss !== null) {
      logStep(tr, { done, loss, valLoss, lr, tokensPerS });
    }
    if (done % tc.checkpointEvery === 0 && done < tc.steps) {
      await saveCheckpoint(checkpoint, { model, optimizer, step: done, rows, key });
    }
  }
  return trainTime;
}

/** One logging step: losses, learning rate, throughput and the time left at that rate. */
function logStep(
  tr: Training,
  at: { done: number; loss: number; valLoss: number | null; lr: number; tokensPerS: number },
): void {
  const tc = tr.cfg.train;
  const { done, loss, valLoss, lr, tokensPerS } = at;
  const tokensPerStep = tc.batchSize * tr.cfg.tokenize.contextLength;
  const eta = ((tc.steps - done) * tokensPerStep) / tokensPerS;
  log(
    `train: step ${done}/${tc.steps} | loss ${loss.toFixed(4)}${
      valLoss !== null ? ` | val ${valLoss.toFixed(4)}` : ""
    } | ` +
      `lr ${lr.toExponential(2)} | ${fmtInt(tokensPerS)} tok/s | eta ${fmtDuration(eta)}`,
  );
}

/**
 * The final validation loss over the whole validation split (the periodic ones in the loop use
 * its first train.evalBatches batches, a sample), with its standard error.
 */
async function finalValidation(tr: Training): Promise<Awaited<ReturnType<typeof splitLoss>>> {
  const tEval = performance.now();
  const full = await splitLoss(tr.model, tr.val.tokens, {
    contextLength: tr.cfg.tokenize.contextLength,
    batchSize: tr.cfg.train.batchSize,
  });
  const evalS = (performance.now() - tEval) / 1000;
  if (full.sequences > 0) {
    log(
      `train: validation loss over all ${fmtInt(full.sequences)} validation sequences ` +
        `(${fmtInt(full.tokens)} predicted tokens): ${full.mean.toFixed(4)} ± ${
          full.se.toFixed(4)
        } (standard error across sequences); ${fmtInt(full.tokens / evalS)} tokens/s`,
    );
  }
  return full;
}

/**
 * Final outputs: weights, config, loss curve and summary; then the checkpoint is removed, the
 * model and optimizer disposed, and the summary logged and returned.
 */
async function writeTrainOutputs(
  tr: Training,
  files: TrainFiles,
  opts: { full: Awaited<ReturnType<typeof splitLoss>>; trainTime: number },
) {
  const { cfg, backend, model, optimizer, rows, mc } = tr;
  const { full, trainTime } = opts;
  const tc = cfg.train;
  const tokensPerStep = tc.batchSize * cfg.tokenize.contextLength;
  const sampleVal = rows.findLast((r) => r.val_loss !== null)?.val_loss ?? null;
  const finalVal = full.sequences > 0 ? full.mean : null;
  const entropy = unigramEntropy(tr.train.tokens);
  const finalTrain = rows.at(-1)!.train_loss;
  const meanTokensPerS = trainTime > 0 ? ((tc.steps - tr.start) * tokensPerStep) / trainTime : 0;
  await saveTransformer(files.model, model, { run: cfg.run, steps: String(tc.steps) });
  await writeJsonAtomic(files.config, {
    model: { ...mc, architecture: "one-layer pre-LN transformer, ReLU MLP, learned positions" },
    hook_name: HOOK_NAME,
    tokenizer: "gpt2",
    train: tc,
    seed: cfg.seed,
    run: cfg.run,
    backend: backend.name,
  });
  await writeParquet(
    files.loss,
    arrow.tableFromJSON(rows as unknown as Record<string, unknown>[]),
  );
  const summary = {
    steps: tc.steps,
    tokens_seen: tc.steps * tokensPerStep,
    final_train_loss: finalTrain,
    final_val_loss: finalVal,
    final_val_loss_se: full.sequences > 1 ? full.se : null,
    val_sequences: full.sequences,
    val_tokens: full.tokens,
    sample_val_loss: sampleVal,
    unigram_entropy: entropy,
    below_unigram_entropy: finalVal === null ? null : entropy - finalVal,
    train_tokens_per_s: meanTokensPerS,
    backend: backend.name,
    threads: backend.threads,
  };
  await writeParquet(files.summary, arrow.tableFromJSON([summary]));
  await Deno.remove(files.checkpoint).catch(() => {});
  disposeTransformer(model);
  optimizer.dispose();
  log(
    `train: done. final val loss ${finalVal?.toFixed(4) ?? "n/a"} nats; unigram entropy of the ` +
      `training tokens ${entropy.toFixed(4)} nats${
        finalVal !== null ? ` (${(entropy - finalVal).toFixed(4)} below)` : ""
      }; ` +
      `${fmtInt(meanTokensPerS)} tokens/s on ${backend.name}`,
  );
  return summary;
}
