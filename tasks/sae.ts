/**
 * Train the SAE sweep: every dictionary size side by side, from one pass over the activations.
 *
 *   deno task sae --preset demo [--backend wasm]
 *
 * Caches activations first if they are out of date. Reads data/<run>/activations/. Trains one SAE
 * per (init in sae.inits, replicate < sae.seeds, size in sae.sizes), all from the same stream (each
 * batch is read once), each seeded by slotSeed(seed, init, size, replicate). Writes, per SAE, to
 * results/<run>/sae/f<N>/ for the primary SAE of size N (the first init, replicate 0) and to
 * results/<run>/sae/f<N>-<init>-r<r>/ for every other (mod/run/layout.ts, saeDirName):
 * sae.safetensors + cfg.json (SAELens layout, plus init, seed and replicate), metrics.parquet
 * (per logging step: loss, mse, fve, l1, l0, dead fraction, resample events, tokens/s),
 * resamples.parquet (one row per resampling event) and feature_stats.parquet (per feature, on the
 * held-out shard: firing count, density, mean and max activation); and results/<run>/sae/
 * summary.parquet (one row per SAE: name, size, init, replicate, seed, held-out fve, mse, L0,
 * dead fraction, tokens/s, ...). Checkpoints every sae.checkpointEvery steps; rerunning after a
 * kill resumes there. Before training it checks that every resample step comes before the last
 * step, and warns when fewer than 2 dead windows follow the last resample.
 *
 * @module
 */
import {
  DATA_FILES,
  HOOK_NAME,
  runUpstream,
  SAE_FILES,
  SAE_STAGE_FILES,
  stageParams,
  stageSource,
  trainShardName,
  TRANSFORMER_FILES,
} from "../mod/run/mod.ts";
import * as tf from "@tensorflow/tfjs";
import * as arrow from "apache-arrow";
import { join } from "node:path";
import { fmtInt, log, runMain, type TaskSpec, TENSOR_OPTIONS } from "../mod/run/mod.ts";
import type { RunConfig } from "../mod/run/mod.ts";
import { initBackend } from "../mod/backend/mod.ts";
import { writeParquet } from "../mod/io/mod.ts";
import { runPaths, type SaeSlot, saeSlots } from "../mod/run/mod.ts";
import { runStage, type StageResult } from "../mod/run/mod.ts";
import { stageMain } from "../mod/run/mod.ts";
import { hashJson } from "../mod/run/mod.ts";
import { exists } from "../mod/io/mod.ts";
import { readActivationShard } from "../mod/activations/mod.ts";
import { ActivationStream } from "../mod/activations/mod.ts";
import { type SaeStepMetrics, SweepTrainer } from "../mod/sae/mod.ts";
import { type SaeTrainConfig, slotSeed } from "../mod/sae/mod.ts";
import { loadSweepCheckpoint, sweepCheckpointPath, writeSweepCheckpoint } from "../mod/sae/mod.ts";
import { adaptiveSaeGrads, saeGradsSparse } from "../mod/sae/mod.ts";
import { saeGrads } from "../mod/sae/mod.ts";
import { saveSae } from "../mod/sae/mod.ts";
import { evaluateSae } from "../mod/sae/mod.ts";

export const SPEC: TaskSpec = {
  name: "sae",
  summary: "Train SAEs of every configured size on the cached MLP activations",
  details:
    "Writes results/<run>/sae/f<N>/ per size. Resumes from its last checkpoint after a kill.",
  options: TENSOR_OPTIONS,
};

/** One SweepTrainer config per SAE slot, in saeSlots() order. */
function trainConfigs(cfg: RunConfig, slots: SaeSlot[]): SaeTrainConfig[] {
  const s = cfg.sae, topk = s.architecture === "topk";
  return slots.map((slot) => ({
    dSae: slot.size,
    name: slot.name,
    architecture: topk ? "topk" : "standard",
    k: topk ? s.k : undefined,
    l1Coefficient: topk ? 0 : s.l1Coefficient,
    lr: s.lr,
    warmupSteps: s.warmupSteps,
    resampleSteps: s.resampleSteps,
    deadWindow: s.deadWindow,
    init: slot.init as SaeTrainConfig["init"],
    seed: slotSeed(cfg.seed, slot),
  }));
}

/**
 * The resample schedule against the run's length, known only once the activations are counted:
 * a resample step at or past the last step would never run (an error naming the key), and a last
 * resample followed by fewer than 2 dead windows leaves its features too little time to prove
 * themselves alive before the end (a warning).
 */
export function checkResampleSchedule(
  s: { resampleSteps: number[]; deadWindow: number },
  steps: number,
): string | null {
  const late = s.resampleSteps.filter((r) => r >= steps);
  if (late.length > 0) {
    throw new Error(
      `Config key "sae.resampleSteps" [${s.resampleSteps}] has step ${late[0]}, at or past ` +
        `the run's ${steps} steps (activations / sae.batchSize)`,
    );
  }
  const last = s.resampleSteps.at(-1);
  if (last === undefined) return null;
  const windows = (steps - last) / s.deadWindow;
  return windows < 2
    ? `sae: warning: only ${windows.toFixed(1)} dead windows (sae.deadWindow ${s.deadWindow}) ` +
      `follow the last resample at step ${last} of ${steps}`
    : null;
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

function metricsRow(m: SaeStepMetrics) {
  return {
    step: m.step,
    tokens: m.tokens,
    loss: m.loss,
    mse: m.mse,
    fve: m.fve,
    l1: m.l1,
    l0: m.l0,
    dead_fraction: m.deadFraction,
    resample_events: m.resamples.length,
    resampled_features: m.resamples.reduce((a, e) => a + e.nDead, 0),
    tokens_per_s: m.tokensPerS,
  };
}

type Row = ReturnType<typeof metricsRow>;

/** What a checkpoint holds besides the trainer: the config key it was made for, metrics so far. */
type Progress = { key: string; rows: Record<string, Row[]> };

export async function run(
  cfg: RunConfig,
  opts: { force?: boolean; backend?: string } = {},
): Promise<StageResult> {
  const upstream = await runUpstream("sae", cfg, { backend: opts.backend });
  const actResult = upstream.activations as StageResult;
  const paths = runPaths(cfg);
  const s = cfg.sae;
  const nShards = Number(actResult.manifest.stats.train_shards);
  const shards = Array.from(
    { length: nShards },
    (_, i) => join(paths.activationsDir, trainShardName(i)),
  );
  const heldout = paths.activations.heldout;
  const slots = saeSlots(s);
  const dirs = slots.map((slot) => paths.saeDir(slot.size, slot));
  const saeRoot = paths.saeRoot;
  const ckptDir = join(saeRoot, "checkpoint");
  const outputs = [
    ...dirs.flatMap((d) => SAE_STAGE_FILES.sae.map((f) => join(d, SAE_FILES[f]))),
    paths.saeSummary,
  ];
  const params = stageParams(cfg, "sae");
  return await runStage({
    name: "sae",
    dir: saeRoot,
    inputs: [...shards, heldout],
    params,
    source: stageSource("sae"),
    outputs,
    scratch: [ckptDir],
    force: opts.force,
    run: async () => {
      const backend = await initBackend(opts.backend ?? cfg.backend);
      const held = await readActivationShard(heldout);
      const dIn = held.dIn;
      const stream = new ActivationStream(shards, { dIn, batchSize: s.batchSize });
      const steps = await stream.batches();
      if (steps === 0) {
        throw new Error(
          `sae.batchSize ${s.batchSize} exceeds the ${
            fmtInt(await stream.totalRows())
          } cached activations`,
        );
      }
      // "auto": with matmuls on a native BLAS the dense gradients beat the sparse host loops at
      // every L0 measured (tests/bench/compare.ts); on XNNPACK the sparse ones win below ~1% density.
      const note = checkResampleSchedule(s, steps);
      if (note) log(note);
      const seeds = trainConfigs(cfg, slots).map((c) => c.seed!);
      if (new Set(seeds).size !== seeds.length) {
        throw new Error(`Config key "seed" ${cfg.seed} gives two SAEs the same derived seed`);
      }
      const gradsFn = s.kernel === "dense" || (s.kernel === "auto" && backend.blas)
        ? saeGrads
        : s.kernel === "sparse"
        ? saeGradsSparse
        : adaptiveSaeGrads();
      const trainer = new SweepTrainer(trainConfigs(cfg, slots), {
        dIn,
        microBatch: s.microBatch,
        logEvery: s.logEvery,
        resampleInputs: s.resampleInputs,
        seed: cfg.seed,
        gradsFn,
      });
      // A checkpoint is reused only for the same config and the same activations.
      const key = hashJson({ params, inputs: actResult.manifest.outputs });
      const rows: Record<string, Row[]> = Object.fromEntries(
        trainer.slots.map((sl) => [sl.name, []]),
      );
      // The checkpoint is one file holding weights, optimizer state and the metrics rows so far.
      if (!opts.force && (await exists(sweepCheckpointPath(ckptDir)))) {
        let ckpt: Awaited<ReturnType<typeof loadSweepCheckpoint<Progress>>> | null = null;
        try {
          ckpt = await loadSweepCheckpoint<Progress>(ckptDir);
        } catch (e) {
          log(`sae: starting afresh: the checkpoint is unreadable (${(e as Error).message})`);
        }
        if (ckpt?.progress?.key === key) {
          trainer.load(ckpt.state);
          Object.assign(rows, ckpt.progress.rows);
          await stream.skip(trainer.stepCount * s.batchSize);
          log(`sae: resuming from the checkpoint at step ${trainer.stepCount}`);
        }
      }
      log(
        `sae: ${slots.length} SAEs (${s.sizes.join(", ")} features, ${s.architecture}; ` +
          `init ${s.inits.join(", ")}; ${s.seeds} seed${s.seeds > 1 ? "s" : ""} each) ` +
          `on d_in ${dIn}; ${steps} steps of ${s.batchSize} rows (${
            fmtInt(steps * s.batchSize)
          } tokens) on ${backend.name}`,
      );

      const t0 = performance.now();
      const startStep = trainer.stepCount;
      const nameWidth = Math.max(7, ...slots.map((sl) => sl.name.length));
      const reported = new Set<string>();
      while (trainer.stepCount < steps) {
        const batch = await stream.next();
        if (!batch) break;
        const x = tf.tensor2d(batch, [s.batchSize, dIn]);
        const metrics = await trainer.step(x);
        x.dispose();
        const step = trainer.stepCount;
        if (metrics) {
          const rate = ((step - startStep) * s.batchSize) / ((performance.now() - t0) / 1000);
          log(`sae: step ${step}/${steps} | ${fmtInt(rate)} tok/s for the sweep`);
          for (const m of metrics) {
            rows[m.name].push(metricsRow(m));
            const name = m.name.padEnd(nameWidth);
            log(
              `  ${name} fve ${m.fve.toFixed(3)} | L0 ${m.l0.toFixed(1)} | ` +
                `dead ${pct(m.deadFraction)} | ${fmtInt(m.tokensPerS)} tok/s`,
            );
            for (const e of m.resamples) {
              log(
                e.nDead === 0
                  ? `  ${name} no dead features to resample at step ${e.step}`
                  : `  ${name} resampled ${e.nDead} dead features at step ${e.step} ` +
                    `(dead fraction ${
                      pct(e.deadFractionBefore)
                    }; checked again ${s.deadWindow} steps on)`,
              );
            }
          }
          // A window after each resample, say whether the revived features stayed alive.
          for (const slot of trainer.slots) {
            for (const e of slot.events) {
              const id = `${slot.name}:${e.step}`;
              if (e.deadFractionNextWindow === undefined || e.nDead === 0 || reported.has(id)) {
                continue;
              }
              reported.add(id);
              log(
                `  ${
                  slot.name.padEnd(nameWidth)
                } ${s.deadWindow} steps after the resample at step ${e.step}: ` +
                  `${e.revivedNextWindow ?? 0} of the ${e.nDead} resampled features fired again; ` +
                  `dead fraction now ${pct(e.deadFractionNextWindow)} (was ${
                    pct(e.deadFractionBefore)
                  })`,
              );
            }
          }
        }
        if (step % s.checkpointEvery === 0 && step < steps) {
          const progress: Progress = { key, rows };
          await writeSweepCheckpoint(ckptDir, await trainer.state(), progress);
        }
      }

      // Held-out evaluation and outputs, one SAE at a time.
      const nHeld = held.seq.length;
      log(
        `sae: evaluating on ${fmtInt(nHeld)} held-out tokens (density resolution ${
          (1 / nHeld).toExponential(1)
        })`,
      );
      const summary = [];
      for (let i = 0; i < trainer.slots.length; i++) {
        const slot = trainer.slots[i], dir = dirs[i], id = slots[i];
        const { eval: ev, stats } = evaluateSae(slot.sae, held.acts, s.microBatch);
        await saveSae(dir, slot.sae, {
          model_name: join("results", cfg.run, "transformer", TRANSFORMER_FILES.weights),
          hook_name: HOOK_NAME,
          hook_layer: 0,
          context_size: cfg.tokenize.contextLength,
          dataset_path: join("data", cfg.run, DATA_FILES.tokens),
          activations:
            `MLP post-activation (ReLU output, width ${dIn}) of the one-layer transformer`,
          train_tokens: trainer.tokens,
          init: id.init,
          seed: slot.cfg.seed,
          run_seed: cfg.seed,
          replicate: id.replicate,
          warmup_steps: s.warmupSteps,
          resample_steps: s.resampleSteps,
          dead_window: s.deadWindow,
        });
        await writeParquet(join(dir, SAE_FILES.metrics), arrow.tableFromJSON(rows[slot.name]));
        const events = slot.events.map((e) => ({
          step: e.step,
          n_dead: e.nDead,
          n_features: e.nFeatures,
          dead_fraction_before: e.deadFractionBefore,
          silent_on_resample_inputs: e.deadFractionAfter,
          dead_fraction_next_window: e.deadFractionNextWindow ?? null,
          revived_next_window: e.revivedNextWindow ?? null,
          mean_alive_encoder_norm: e.meanAliveEncoderNorm,
        }));
        await writeParquet(
          join(dir, SAE_FILES.resamples),
          events.length > 0 ? arrow.tableFromJSON(events) : emptyResamples(),
        );
        await writeParquet(
          join(dir, SAE_FILES.featureStats),
          new arrow.Table({
            feature: arrow.makeVector(Int32Array.from({ length: slot.cfg.dSae }, (_, f) => f)),
            count: arrow.makeVector(stats.count),
            density: arrow.makeVector(stats.density),
            mean_activation: arrow.makeVector(stats.meanActivation),
            max_activation: arrow.makeVector(stats.maxActivation),
          }),
          { metadata: { heldout_tokens: String(nHeld), density_resolution: String(1 / nHeld) } },
        );
        const dead = stats.count.filter((c) => c === 0).length;
        const row = {
          name: slot.name,
          size: slot.cfg.dSae,
          init: id.init,
          replicate: id.replicate,
          seed: slot.cfg.seed,
          architecture: slot.cfg.architecture,
          heldout_tokens: nHeld,
          density_resolution: 1 / nHeld,
          fve: ev.fve,
          mse: ev.mse,
          l0: ev.l0,
          l1: ev.l1,
          dead_fraction: dead / slot.cfg.dSae,
          alive: slot.cfg.dSae - dead,
          resample_events: slot.events.length,
          train_tokens: trainer.tokens,
          tokens_per_s: slot.seconds > 0 ? slot.rowsTimed / slot.seconds : 0,
        };
        summary.push(row);
        log(
          `sae: ${row.name}: held-out fve ${row.fve.toFixed(3)}, L0 ${row.l0.toFixed(1)}, dead ${
            (100 * row.dead_fraction).toFixed(1)
          }% ` +
            `(never fired in ${fmtInt(nHeld)} tokens), ${fmtInt(row.tokens_per_s)} tokens/s`,
        );
      }
      trainer.dispose();
      await writeParquet(paths.saeSummary, summaryTable(summary));
      await Deno.remove(ckptDir, { recursive: true }).catch(() => {});
      return { steps, heldoutTokens: nHeld, backend: backend.name, summary };
    },
  });
}

type SummaryRow = {
  name: string;
  size: number;
  init: string;
  replicate: number;
  seed: number;
  architecture: string;
} & Record<string, number | string>;

/** summary.parquet: utf8 names, int32 size / replicate / seed, float64 for every other number. */
function summaryTable(rows: SummaryRow[]): arrow.Table {
  const cols: Record<string, arrow.Vector> = {};
  for (const key of Object.keys(rows[0])) {
    const values = rows.map((r) => r[key]);
    cols[key] = typeof values[0] === "string"
      ? arrow.vectorFromArray(values as string[], new arrow.Utf8())
      : ["size", "replicate", "seed"].includes(key)
      ? arrow.makeVector(Int32Array.from(values as number[]))
      : arrow.makeVector(Float64Array.from(values as number[]));
  }
  return new arrow.Table(cols);
}

function emptyResamples(): arrow.Table {
  return new arrow.Table({
    step: arrow.makeVector(new Int32Array(0)),
    n_dead: arrow.makeVector(new Int32Array(0)),
    n_features: arrow.makeVector(new Int32Array(0)),
    dead_fraction_before: arrow.makeVector(new Float64Array(0)),
    silent_on_resample_inputs: arrow.makeVector(new Float64Array(0)),
    dead_fraction_next_window: arrow.makeVector(new Float64Array(0)),
    revived_next_window: arrow.makeVector(new Int32Array(0)),
    mean_alive_encoder_norm: arrow.makeVector(new Float64Array(0)),
  });
}

export const main = stageMain(SPEC, run);

if (import.meta.main) await runMain(main);
