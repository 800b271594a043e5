/**
 * Train the one-layer transformer on the token sequences.
 *
 *   deno task train --preset demo [--backend wasm]
 *
 * Runs tokenize (and mix) first when out of date. Reads data/<run>/tokens.parquet. Writes
 * results/<run>/transformer/: model.safetensors (TransformerLens names, see README), config.json,
 * loss.parquet (step, tokens_seen, train_loss, val_loss on the first train.evalBatches validation
 * batches, lr, tokens_per_s) and summary.parquet (the final validation loss over the whole
 * validation split with its standard error, the final train loss, the unigram entropy of the
 * training tokens, throughput). Checkpoints every
 * train.checkpointEvery steps to checkpoint.safetensors; rerunning after a kill resumes there.
 *
 * @module
 */
import { HOOK_NAME, runUpstream, stageParams, stageSource } from "../mod/run/mod.ts";
import * as tf from "@tensorflow/tfjs";
import * as arrow from "apache-arrow";
import { fmtInt, log, runMain, type TaskSpec, TENSOR_OPTIONS } from "../mod/run/mod.ts";
import type { RunConfig } from "../mod/run/mod.ts";
import { initBackend } from "../mod/backend/mod.ts";
import { writeParquet } from "../mod/io/mod.ts";
import { runPaths } from "../mod/run/mod.ts";
import { runStage, type StageResult } from "../mod/run/mod.ts";
import { stageMain } from "../mod/run/mod.ts";
import { readTokens } from "../mod/tokenize/mod.ts";
import { GPT2_VOCAB_SIZE } from "../mod/tokenize/mod.ts";
import { deriveSeed, Rng } from "../mod/run/mod.ts";
import { hashFile, hashJson } from "../mod/run/mod.ts";
import { writeJsonAtomic } from "../mod/io/mod.ts";
import {
  createTransformer,
  disposeTransformer,
  evalLoss,
  lrSchedule,
  makeOptimizer,
  splitLoss,
  trainStep,
  transformerConfig,
} from "../mod/transformer/mod.ts";
import { saveTransformer } from "../mod/transformer/mod.ts";
import { loadCheckpoint, type LossRow, saveCheckpoint } from "../mod/transformer/mod.ts";

export const SPEC: TaskSpec = {
  name: "train",
  summary: "Train the one-layer, 8-head transformer on data/<run>/tokens.parquet",
  details: "Writes results/<run>/transformer/. Resumes from its last checkpoint after a kill.",
  options: TENSOR_OPTIONS,
};

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

export async function run(
  cfg: RunConfig,
  opts: { force?: boolean; backend?: string } = {},
): Promise<StageResult> {
  await runUpstream("train", cfg);
  const paths = runPaths(cfg);
  const dir = paths.transformerDir;
  const t = paths.transformer;
  const files = {
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
      const backend = await initBackend(opts.backend ?? cfg.backend);
      const T = cfg.tokenize.contextLength;
      const train = await readTokens(paths.tokens, "train", {
        contextLength: T,
        vocabSize: GPT2_VOCAB_SIZE,
      });
      const val = await readTokens(paths.tokens, "val", { contextLength: T });
      const nTrain = train.seq.length, nVal = val.seq.length;
      if (nTrain === 0) throw new Error(`Tokens file "${paths.tokens}" has no training sequences`);
      const tc = cfg.train;
      const mc = transformerConfig({ ...cfg.model, nCtx: T, dVocab: GPT2_VOCAB_SIZE });
      const model = createTransformer(mc, { seed: cfg.seed });
      const optimizer = makeOptimizer(model, { lr: tc.lr, weightDecay: tc.weightDecay });
      // A checkpoint is only reused for the same config and the same tokens.
      const key = hashJson({ params, tokens: await hashFile(paths.tokens) });
      // An unreadable checkpoint (damaged on disk) only costs the steps it held.
      const resumed = opts.force
        ? null
        : await loadCheckpoint(files.checkpoint, { model, optimizer, key }).catch((e) => {
          log(`train: starting afresh: the checkpoint is unreadable (${(e as Error).message})`);
          return null;
        });
      const rows: LossRow[] = resumed?.rows ?? [];
      const start = resumed?.step ?? 0;
      if (resumed) log(`train: resuming from the checkpoint at step ${start}`);

      const valBatches: tf.Tensor2D[] = [];
      const nEval = Math.min(nVal, tc.evalBatches * tc.batchSize);
      for (let i = 0; i < nEval; i += tc.batchSize) {
        const idx = Array.from({ length: Math.min(tc.batchSize, nEval - i) }, (_, k) => i + k);
        valBatches.push(gather(val.tokens, idx, T));
      }
      const validate = async () => {
        if (valBatches.length === 0) return null;
        let total = 0;
        for (const b of valBatches) total += await evalLoss(model, b);
        return total / valBatches.length;
      };
      log(
        `train: ${fmtInt(nTrain)} training sequences of ${T} tokens, ${fmtInt(nVal)} validation; ` +
          `d_model ${mc.dModel}, ${mc.nHeads} heads, d_mlp ${mc.dMlp}; ${tc.steps} steps of ${tc.batchSize} x ${T}`,
      );

      const tokensPerStep = tc.batchSize * T;
      let windowStart = performance.now(), windowSteps = 0, tokensPerS = 0, trainTime = 0;
      for (let step = start; step < tc.steps; step++) {
        // Forward, backward, update (the batch is a pure function of seed and step).
        const lr = lrSchedule(step, {
          lr: tc.lr,
          warmupSteps: tc.warmupSteps,
          totalSteps: tc.steps,
          minLrRatio: tc.minLrRatio,
        });
        const batch = gather(train.tokens, batchIndices(cfg.seed, step, tc.batchSize, nTrain), T);
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
          const eta = ((tc.steps - done) * tokensPerStep) / tokensPerS;
          log(
            `train: step ${done}/${tc.steps} | loss ${loss.toFixed(4)}${
              valLoss !== null ? ` | val ${valLoss.toFixed(4)}` : ""
            } | ` +
              `lr ${lr.toExponential(2)} | ${fmtInt(tokensPerS)} tok/s | eta ${fmtDuration(eta)}`,
          );
        }
        if (done % tc.checkpointEvery === 0 && done < tc.steps) {
          await saveCheckpoint(files.checkpoint, { model, optimizer, step: done, rows, key });
        }
      }
      tf.dispose(valBatches);

      // The final validation loss over the whole validation split (the periodic ones above use
      // its first train.evalBatches batches, a sample), with its standard error.
      const sampleVal = rows.findLast((r) => r.val_loss !== null)?.val_loss ?? null;
      const tEval = performance.now();
      const full = await splitLoss(model, val.tokens, {
        contextLength: T,
        batchSize: tc.batchSize,
      });
      const evalS = (performance.now() - tEval) / 1000;
      const finalVal = full.sequences > 0 ? full.mean : null;
      if (finalVal !== null) {
        log(
          `train: validation loss over all ${fmtInt(full.sequences)} validation sequences ` +
            `(${fmtInt(full.tokens)} predicted tokens): ${finalVal.toFixed(4)} ± ${
              full.se.toFixed(4)
            } (standard error across sequences); ${fmtInt(full.tokens / evalS)} tokens/s`,
        );
      }

      // Final outputs: weights, config, loss curve, summary.
      const entropy = unigramEntropy(train.tokens);
      const finalTrain = rows.at(-1)!.train_loss;
      const meanTokensPerS = trainTime > 0 ? ((tc.steps - start) * tokensPerStep) / trainTime : 0;
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
        `train: done. final val loss ${
          finalVal?.toFixed(4) ?? "n/a"
        } nats; unigram entropy of the ` +
          `training tokens ${entropy.toFixed(4)} nats${
            finalVal !== null ? ` (${(entropy - finalVal).toFixed(4)} below)` : ""
          }; ` +
          `${fmtInt(meanTokensPerS)} tokens/s on ${backend.name}`,
      );
      return summary;
    },
  });
}

export const main = stageMain(SPEC, run);

if (import.meta.main) await runMain(main);
