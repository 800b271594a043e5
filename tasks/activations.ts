/**
 * Cache the transformer's MLP post-activations for SAE training and evaluation.
 *
 *   deno task activations --preset demo
 *
 * Trains the transformer first if it is out of date. Reads data/<run>/tokens.parquet and
 * results/<run>/transformer/model.safetensors. Writes data/<run>/activations/: train-NNNNN.parquet
 * shards (activations.trainTokens rows in all, each shard the shuffled tokens of a random subset of
 * training sequences; with activations.store = "stream" none: the SAE stage recomputes them) and
 * heldout.parquet (activations.heldOutTokens rows from validation sequences, in order), plus
 * stats.parquet (rows, throughput). Resumes shard by shard.
 *
 * @module
 */
import { runUpstream, stageParams, stageSource, trainShardName } from "../mod/run/mod.ts";
import * as arrow from "apache-arrow";
import { join } from "node:path";
import { fmtInt, log, runMain, type TaskSpec, TENSOR_OPTIONS } from "../mod/run/mod.ts";
import type { RunConfig } from "../mod/run/mod.ts";
import { initBackend } from "../mod/backend/mod.ts";
import { writeParquet } from "../mod/io/mod.ts";
import { runPaths } from "../mod/run/mod.ts";
import { runStage, type StageResult } from "../mod/run/mod.ts";
import { stageMain } from "../mod/run/mod.ts";
import { readTokens } from "../mod/tokenize/mod.ts";
import { hashFile, hashJson } from "../mod/run/mod.ts";
import { exists, readJson, writeJsonAtomic } from "../mod/io/mod.ts";
import { disposeTransformer } from "../mod/transformer/mod.ts";
import { loadTransformer } from "../mod/transformer/mod.ts";
import {
  collectActivations,
  shardPlan,
  shardRows,
  writeActivationShard,
} from "../mod/activations/mod.ts";

export const SPEC: TaskSpec = {
  name: "activations",
  summary: "Cache the transformer's MLP activations as Parquet shards for the SAEs",
  details: "Writes data/<run>/activations/ (train-NNNNN.parquet shards and heldout.parquet).",
  options: TENSOR_OPTIONS,
};

/** progress.json: the config/model/tokens key, and each finished shard's size and hash. */
interface Progress {
  key: string;
  done: Record<string, { size: number; sha256: string }>;
}

/** Whether the shard at `path` still has the size and content hash recorded when written. */
async function shardIntact(
  path: string | undefined,
  rec: { size: number; sha256: string },
): Promise<boolean> {
  if (!path) return false;
  try {
    if ((await Deno.stat(path)).size !== rec.size) return false;
    return (await hashFile(path)) === rec.sha256;
  } catch {
    return false;
  }
}

export async function run(
  cfg: RunConfig,
  opts: { force?: boolean; backend?: string } = {},
): Promise<StageResult> {
  await runUpstream("activations", cfg, { backend: opts.backend });
  const paths = runPaths(cfg);
  const dir = paths.activationsDir;
  const modelPath = paths.transformer.weights;
  const ac = cfg.activations, T = cfg.tokenize.contextLength;
  const planParams = { ...ac, contextLength: T, seed: cfg.seed };
  const { seqsPerShard, nShards } = shardPlan(planParams, 0);
  // "stream": the SAE stage computes the training rows itself; only the held-out shard is cached.
  const cached = ac.store === "cache";
  const shardPaths = cached
    ? Array.from({ length: nShards }, (_, i) => join(dir, trainShardName(i)))
    : [];
  const heldout = paths.activations.heldout, statsPath = paths.activations.stats;
  const progressPath = paths.activations.progress;
  const params = stageParams(cfg, "activations");
  return await runStage({
    name: "activations",
    dir,
    inputs: [paths.tokens, modelPath],
    params,
    source: stageSource("activations"),
    outputs: [...shardPaths, heldout, statsPath],
    force: opts.force,
    run: async () => {
      const backend = await initBackend(opts.backend ?? cfg.backend);
      const model = await loadTransformer(modelPath);
      const expect = { contextLength: model.config.nCtx, vocabSize: model.config.dVocab };
      const trainSplit = await readTokens(paths.tokens, "train", expect);
      const valSplit = await readTokens(paths.tokens, "val", expect);
      const nTrain = trainSplit.seq.length;
      const wanted = nShards * seqsPerShard;
      // Checked before any shard is written: every shard needs at least one sequence.
      if ((nShards - 1) * seqsPerShard >= nTrain) {
        throw new Error(
          `Config key "activations.trainTokens" ${fmtInt(ac.trainTokens)} asks for ${nShards} ` +
            `shards; the training split of "${paths.tokens}" has ${fmtInt(nTrain * T)} tokens, ` +
            `enough for ${Math.ceil(nTrain / seqsPerShard)}: set it to at most ${
              fmtInt(nTrain * T)
            }`,
        );
      }
      const nHeld = Math.min(valSplit.seq.length, Math.ceil(ac.heldOutTokens / T));
      if (nHeld === 0) {
        throw new Error(
          `Tokens file "${paths.tokens}" has no validation sequences for the held-out shard`,
        );
      }
      if (wanted > nTrain) {
        log(
          `activations: asked for ${fmtInt(wanted * T)} tokens; the training split has ${
            fmtInt(nTrain * T)
          }: using all of it`,
        );
      }
      // Shard k holds sequences order[k*S .. (k+1)*S): a random subset, so shards are alike.
      const plan = shardPlan(planParams, nTrain);
      const meta = { model: modelPath, run: cfg.run };
      // Shards already written for this exact config, model and tokens are kept (resume).
      const key = hashJson({
        params,
        model: await hashFile(modelPath),
        tokens: await hashFile(paths.tokens),
      });
      // A shard counts as done only while its size and content hash are what was written: a
      // truncated or overwritten shard is rebuilt, whatever progress.json says.
      const progress = (await exists(progressPath)) && !opts.force
        ? await readJson<Progress>(progressPath).catch(() => null)
        : null;
      const done: Progress["done"] = {};
      if (progress?.key === key && progress.done && !Array.isArray(progress.done)) {
        for (const [k, rec] of Object.entries(progress.done)) {
          if (await shardIntact(shardPaths[Number(k)], rec)) done[k] = rec;
          else if (shardPaths[Number(k)]) {
            log(`activations: shard ${Number(k) + 1} changed since it was written: rebuilding it`);
          }
        }
      }
      await writeJsonAtomic(progressPath, { key, done });

      let tokens = 0, seconds = 0;
      for (let k = 0; k < shardPaths.length; k++) {
        if (done[k]) continue;
        const t0 = performance.now();
        const rows = await shardRows(model, trainSplit, plan, k, ac.batchSequences);
        seconds += (performance.now() - t0) / 1000;
        tokens += rows.seq.length;
        await writeActivationShard(shardPaths[k], rows, meta);
        const st = await Deno.stat(shardPaths[k]);
        done[k] = { size: st.size, sha256: await hashFile(shardPaths[k]) };
        await writeJsonAtomic(progressPath, { key, done });
        log(
          `activations: shard ${k + 1}/${nShards} (${fmtInt(rows.seq.length)} tokens, ${
            fmtInt(tokens / seconds)
          } tokens/s)`,
        );
      }

      const t0 = performance.now();
      const held = await collectActivations(
        model,
        valSplit,
        Int32Array.from({ length: nHeld }, (_, i) => i),
        ac.batchSequences,
      );
      seconds += (performance.now() - t0) / 1000;
      tokens += held.seq.length;
      await writeActivationShard(heldout, held, meta);
      disposeTransformer(model);
      const stats = {
        train_tokens: Math.min(nShards * seqsPerShard, nTrain) * T,
        train_shards: shardPaths.length,
        store: ac.store,
        heldout_tokens: held.seq.length,
        density_resolution: 1 / held.seq.length,
        d_in: held.dIn,
        tokens_per_s: seconds > 0 ? tokens / seconds : 0,
        backend: backend.name,
      };
      await writeParquet(statsPath, arrow.tableFromJSON([stats]));
      log(
        `activations: ${fmtInt(stats.train_tokens)} training tokens ${
          cached ? `in ${nShards} shards` : "(not cached: the SAE stage streams them)"
        }, ` +
          `${fmtInt(stats.heldout_tokens)} held-out tokens (density resolution ${
            stats.density_resolution.toExponential(1)
          }); ` +
          `${fmtInt(stats.tokens_per_s)} tokens/s on ${backend.name}`,
      );
      return stats;
    },
  });
}

export const main = stageMain(SPEC, run);

if (import.meta.main) await runMain(main);
