/**
 * The sae stage's body, run by tasks/sae.ts (`runSaeStage`): train the SAE sweep, every
 * dictionary size side by side, from one pass over the cached activations, then evaluate each SAE
 * on the held-out shard and write its files. The task keeps the command line; what the stage reads
 * and writes is listed in its module header.
 *
 * In order: `prepareSweep` (backend, held-out shard, activation stream, schedule checks, the
 * trainer), `resumeFromCheckpoint` (a checkpoint made for the same config and activations),
 * `trainSweep` (the training loop, with `logStep` for each logging step and a checkpoint every
 * sae.checkpointEvery steps), `evaluateAndWrite` (held-out evaluation and `writeSaeOutputs` per
 * SAE, then summary.parquet).
 *
 * Imported by tasks/sae.ts only, not re-exported by mod.ts: a stage's source hash covers the
 * modules its task imports, so a stage body reached through mod.ts would enter the hash of every
 * stage that uses the folder.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import * as arrow from "apache-arrow";
import { join } from "node:path";
import {
  type ConfigKey,
  DATA_FILES,
  fmtInt,
  hashFile,
  hashJson,
  HOOK_NAME,
  log,
  type RunConfig,
  runPaths,
  runStage,
  runUpstream,
  SAE_FILES,
  SAE_STAGE_FILES,
  type SaeArchitectureChoice,
  saeArchitectures,
  type SaeSlot,
  saeSlots,
  stageParams,
  type StageResult,
  stageSource,
  trainShardName,
  TRANSFORMER_FILES,
} from "../run/mod.ts";
import { type BackendInfo, initBackend, NATIVE_FIX } from "../backend/mod.ts";
import { exists, writeParquet } from "../io/mod.ts";
import {
  type ActivationSource,
  ActivationStream,
  ModelActivationStream,
  readActivationShard,
  shardPlan,
} from "../activations/mod.ts";
import { loadTransformer } from "../transformer/mod.ts";
import { readTokens } from "../tokenize/mod.ts";
import { type SaeStepMetrics, SweepTrainer } from "./trainer.ts";
import { type SaeTrainConfig, slotSeed } from "./train_config.ts";
import { loadSweepCheckpoint, sweepCheckpointPath, writeSweepCheckpoint } from "./checkpoint.ts";
import { adaptiveSaeGrads, saeGradsSparse } from "./sparse.ts";
import { saeGrads, type SaeGradsFn } from "./grads.ts";
import { type NativeSaeStep, nativeSaeStep } from "./native_step.ts";
import { saveSae } from "./saelens_files.ts";
import { evaluateSae } from "./heldout_eval.ts";
import { FLAT_TOLERANCE, lastFifthChange } from "./convergence.ts";

/**
 * The sparsity setting of one architecture, as config key and value: how its L0 is set (see
 * RunConfig sae.architecture on matched L0). summary.parquet records it beside the L0 reached.
 */
export function sparsityOf(
  s: RunConfig["sae"],
  architecture: SaeArchitectureChoice,
): { key: ConfigKey; value: number } {
  switch (architecture) {
    case "topk":
    case "batchtopk":
      return { key: "sae.k", value: s.k };
    case "jumprelu":
      return { key: "sae.l0Coefficient", value: s.l0Coefficient };
    case "gated":
      return { key: "sae.gatedL1Coefficient", value: s.gatedL1Coefficient };
    default:
      return { key: "sae.l1Coefficient", value: s.l1Coefficient };
  }
}

/**
 * One SweepTrainer config per SAE slot, in saeSlots() order, each for its slot's architecture
 * with that architecture's sparsity setting (sparsityOf); topk and batchtopk with sae.revive
 * "auxk" train with the AuxK loss and no resampling. The seed depends on the init, size and
 * replicate, not the architecture: each architecture starts from the same draw.
 */
export function trainConfigs(cfg: RunConfig, slots: SaeSlot[]): SaeTrainConfig[] {
  const s = cfg.sae;
  return slots.map((slot) => {
    const choice = slot.architecture as SaeArchitectureChoice;
    const architecture = choice === "relu" ? "standard" : choice;
    const kSparse = architecture === "topk" || architecture === "batchtopk";
    const auxk = kSparse && s.revive === "auxk";
    const bySparsity: Partial<SaeTrainConfig> = kSparse
      ? { k: s.k, l1Coefficient: 0, ...(auxk ? { auxkCoefficient: s.auxkCoefficient } : {}) }
      : architecture === "jumprelu"
      ? {
        l1Coefficient: 0,
        l0Coefficient: s.l0Coefficient,
        bandwidth: s.jumpreluBandwidth,
        initThreshold: s.jumpreluInitThreshold,
      }
      : { l1Coefficient: sparsityOf(s, choice).value };
    return {
      dSae: slot.size,
      name: slot.name,
      architecture,
      l1Coefficient: 0,
      ...bySparsity,
      lr: s.lr,
      warmupSteps: s.warmupSteps,
      resampleSteps: auxk ? [] : s.resampleSteps,
      deadWindow: s.deadWindow,
      init: slot.init as SaeTrainConfig["init"],
      seed: slotSeed(cfg.seed, slot),
    };
  });
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

function signedPct(x: number): string {
  return Number.isFinite(x) ? `${x >= 0 ? "+" : ""}${(100 * x).toFixed(1)}%` : "n/a";
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

type HeldOut = Awaited<ReturnType<typeof readActivationShard>>;
type TrainerSlot = SweepTrainer["slots"][number];

/** Where the stage reads and writes, from the config and the activations stage's result. */
interface SaeStagePaths {
  shards: string[];
  /** activations.store = "stream": the transformer and tokens the rows are computed from. */
  model?: { weights: string; tokens: string };
  heldout: string;
  slots: SaeSlot[];
  dirs: string[];
  ckptDir: string;
  summary: string;
}

/** Everything the training loop and the writers share once the sweep is set up. */
interface Sweep {
  cfg: RunConfig;
  backend: BackendInfo;
  held: HeldOut;
  dIn: number;
  stream: ActivationSource;
  steps: number;
  trainer: SweepTrainer;
  /** The native step the trainer runs on, when it does (disposed after training). */
  nativeStep?: NativeSaeStep;
  slots: SaeSlot[];
  /** The checkpoint's key: a checkpoint is reused only for the same config and activations. */
  key: string;
  /** Metrics rows per SAE name, restored from a checkpoint on resume. */
  rows: Record<string, Row[]>;
}

/** Runs the sae stage through the stage runner: upstream first, then skipped when current. */
export async function runSaeStage(
  cfg: RunConfig,
  opts: { force?: boolean; backend?: string } = {},
): Promise<StageResult> {
  const upstream = await runUpstream("sae", cfg, { backend: opts.backend });
  const actResult = upstream.activations as StageResult;
  const paths = runPaths(cfg);
  const nShards = Number(actResult.manifest.stats.train_shards);
  const slots = saeSlots(cfg.sae);
  const stream = cfg.activations.store === "stream";
  const p: SaeStagePaths = {
    shards: Array.from(
      { length: nShards },
      (_, i) => join(paths.activationsDir, trainShardName(i)),
    ),
    // Streamed: the rows come from the model and the tokens, not from shards.
    model: stream ? { weights: paths.transformer.weights, tokens: paths.tokens } : undefined,
    heldout: paths.activations.heldout,
    slots,
    dirs: slots.map((slot) => paths.slotDir(slot)),
    ckptDir: join(paths.saeRoot, "checkpoint"),
    summary: paths.saeSummary,
  };
  const outputs = [
    ...p.dirs.flatMap((d) => SAE_STAGE_FILES.sae.map((f) => join(d, SAE_FILES[f]))),
    p.summary,
  ];
  const params = stageParams(cfg, "sae");
  return await runStage({
    name: "sae",
    dir: paths.saeRoot,
    inputs: p.model ? [p.model.tokens, p.model.weights, p.heldout] : [...p.shards, p.heldout],
    params,
    source: stageSource("sae"),
    outputs,
    scratch: [p.ckptDir],
    force: opts.force,
    run: async () => {
      const key = hashJson({
        params,
        inputs: actResult.manifest.outputs,
        ...(p.model
          ? { model: await hashFile(p.model.weights), tokens: await hashFile(p.model.tokens) }
          : {}),
      });
      const sweep = await prepareSweep(cfg, p, { backend: opts.backend, key });
      if (!opts.force) await resumeFromCheckpoint(sweep, p.ckptDir);
      logSweepStart(sweep);
      await trainSweep(sweep, p.ckptDir);
      return await evaluateAndWrite(sweep, p);
    },
  });
}

/**
 * Loading: the backend, the held-out shard, the activation stream and its step count, the
 * resample-schedule and seed checks, and a fresh SweepTrainer.
 */
async function prepareSweep(
  cfg: RunConfig,
  p: SaeStagePaths,
  opts: { backend?: string; key: string },
): Promise<Sweep> {
  const s = cfg.sae;
  const backend = await initBackend(opts.backend ?? cfg.backend);
  const held = await readActivationShard(p.heldout);
  const dIn = held.dIn;
  const stream = await openStream(cfg, p, dIn);
  const steps = await stream.batches();
  if (steps === 0) {
    throw new Error(
      `sae.batchSize ${s.batchSize} exceeds the ${
        fmtInt(await stream.totalRows())
      } cached activations`,
    );
  }
  const note = checkResampleSchedule(s, steps);
  if (note) log(note);
  // Seeds are shared across architectures (paired); within one they must differ.
  const seeds = trainConfigs(cfg, p.slots).map((c, i) => `${p.slots[i].architecture}:${c.seed}`);
  if (new Set(seeds).size !== seeds.length) {
    throw new Error(`Config key "seed" ${cfg.seed} gives two SAEs the same derived seed`);
  }
  const { gradsFn, nativeStep } = chooseKernel(s.kernel, backend);
  const trainer = new SweepTrainer(trainConfigs(cfg, p.slots), {
    dIn,
    microBatch: s.microBatch,
    logEvery: s.logEvery,
    resampleInputs: s.resampleInputs,
    seed: cfg.seed,
    gradsFn,
    nativeStep,
  });
  const rows: Record<string, Row[]> = Object.fromEntries(
    trainer.slots.map((sl) => [sl.name, []]),
  );
  return {
    cfg,
    backend,
    held,
    dIn,
    stream,
    steps,
    trainer,
    nativeStep,
    slots: p.slots,
    key: opts.key,
    rows,
  };
}

/** The training rows: the cached shards, or the model recomputing them (activations.store). */
async function openStream(
  cfg: RunConfig,
  p: SaeStagePaths,
  dIn: number,
): Promise<ActivationSource> {
  const batchSize = cfg.sae.batchSize;
  if (!p.model) return new ActivationStream(p.shards, { dIn, batchSize });
  const model = await loadTransformer(p.model.weights);
  if (model.config.dMlp !== dIn) {
    throw new Error(
      `Transformer "${p.model.weights}" has d_mlp ${model.config.dMlp}, the held-out ` +
        `activations have width ${dIn}`,
    );
  }
  const expect = { contextLength: model.config.nCtx, vocabSize: model.config.dVocab };
  const split = await readTokens(p.model.tokens, "train", expect);
  const plan = shardPlan(
    { ...cfg.activations, contextLength: cfg.tokenize.contextLength, seed: cfg.seed },
    split.seq.length,
  );
  log(
    `sae: streaming the training activations from the transformer (${plan.nShards} shards of ` +
      `${fmtInt(plan.seqsPerShard * plan.contextLength)} shuffled rows, none cached)`,
  );
  return new ModelActivationStream(model, split, plan, {
    batchSize,
    batchSequences: cfg.activations.batchSequences,
  });
}

/**
 * The SAE step's kernels for `sae.kernel` (see SAE_KERNELS), with one log line saying which.
 * "auto": the native step where it can run; else, with matmuls on a native BLAS, the dense tfjs
 * gradients (they beat the WebAssembly host loops at every L0 measured); on XNNPACK the sparse
 * ones below ~1% density.
 */
function chooseKernel(
  kernel: RunConfig["sae"]["kernel"],
  backend: BackendInfo,
): { gradsFn: SaeGradsFn; nativeStep?: NativeSaeStep } {
  if (kernel === "native" || kernel === "auto") {
    const r = nativeSaeStep({ threads: backend.threads });
    if (r.step) {
      log(
        `sae: step on the native kernels (${backend.threads} threads; encoder on ${backend.blas})`,
      );
      return { gradsFn: saeGrads, nativeStep: r.step };
    }
    if (kernel === "native") {
      throw new Error(
        `sae.kernel=native cannot run: ${r.reason}; fix: bash tasks/setup.sh, or --set sae.kernel=auto`,
      );
    }
    log(`sae: native kernels unavailable (${r.reason}); fix: ${NATIVE_FIX}`);
  }
  if (kernel === "dense" || (kernel === "auto" && backend.blas)) return { gradsFn: saeGrads };
  return { gradsFn: kernel === "sparse" ? saeGradsSparse : adaptiveSaeGrads() };
}

/**
 * Resume: the checkpoint is one file holding weights, optimizer state and the metrics rows so far;
 * it is loaded only when its key matches, and the stream skips the batches already trained on.
 * An unreadable checkpoint is logged and ignored.
 */
async function resumeFromCheckpoint(sweep: Sweep, ckptDir: string): Promise<void> {
  if (!(await exists(sweepCheckpointPath(ckptDir)))) return;
  let ckpt: Awaited<ReturnType<typeof loadSweepCheckpoint<Progress>>> | null = null;
  try {
    ckpt = await loadSweepCheckpoint<Progress>(ckptDir);
  } catch (e) {
    log(`sae: starting afresh: the checkpoint is unreadable (${(e as Error).message})`);
  }
  if (ckpt?.progress?.key === sweep.key) {
    sweep.trainer.load(ckpt.state);
    Object.assign(sweep.rows, ckpt.progress.rows);
    await sweep.stream.skip(sweep.trainer.stepCount * sweep.cfg.sae.batchSize);
    log(`sae: resuming from the checkpoint at step ${sweep.trainer.stepCount}`);
  }
}

function logSweepStart(sweep: Sweep): void {
  const s = sweep.cfg.sae;
  log(
    `sae: ${sweep.slots.length} SAEs (${s.sizes.join(", ")} features; ${
      saeArchitectures(s).map((a) => {
        const sp = sparsityOf(s, a as SaeArchitectureChoice);
        return `${a} ${sp.key.slice(4)} ${sp.value}`;
      }).join(", ")
    }; ` +
      `init ${s.inits.join(", ")}; ${s.seeds} seed${s.seeds > 1 ? "s" : ""} each) ` +
      `on d_in ${sweep.dIn}; ${sweep.steps} steps of ${s.batchSize} rows (${
        fmtInt(sweep.steps * s.batchSize)
      } tokens) on ${sweep.backend.name}`,
  );
}

/** The training loop: one batch per step for every SAE, logging and checkpointing as it goes. */
async function trainSweep(sweep: Sweep, ckptDir: string): Promise<void> {
  const { trainer, stream, steps, dIn } = sweep;
  const s = sweep.cfg.sae;
  const t0 = performance.now();
  const startStep = trainer.stepCount;
  const nameWidth = Math.max(7, ...sweep.slots.map((sl) => sl.name.length));
  const reported = new Set<string>();
  // Where the loop's time goes: reading (or computing) the activations, the SAE steps (with
  // resampling and the metrics), the checkpoints.
  const time = { activations: 0, steps: 0, checkpoints: 0 };
  let t = performance.now();
  const lap = (k: keyof typeof time) => {
    const now = performance.now();
    time[k] += (now - t) / 1000;
    t = now;
  };
  while (trainer.stepCount < steps) {
    const batch = await stream.next();
    lap("activations");
    if (!batch) break;
    const x = tf.tensor2d(batch, [s.batchSize, dIn]);
    const metrics = await trainer.step(x);
    x.dispose();
    const step = trainer.stepCount;
    if (metrics) {
      const rate = ((step - startStep) * s.batchSize) / ((performance.now() - t0) / 1000);
      logStep(sweep, metrics, { step, rate, nameWidth, reported });
    }
    lap("steps");
    if (step % s.checkpointEvery === 0 && step < steps) {
      const progress: Progress = { key: sweep.key, rows: sweep.rows };
      await writeSweepCheckpoint(ckptDir, await trainer.state(), progress);
      lap("checkpoints");
    }
  }
  const done = trainer.stepCount - startStep;
  if (done > 0) log(loopTimeLine(time, done));
}

/** "sae: training loop, N steps: activations A s (a%), SAE steps ..., checkpoints ...". */
export function loopTimeLine(
  time: { activations: number; steps: number; checkpoints: number },
  steps: number,
): string {
  const total = time.activations + time.steps + time.checkpoints;
  const part = (name: string, sec: number) =>
    `${name} ${sec.toFixed(1)} s (${total > 0 ? (100 * sec / total).toFixed(0) : 0}%, ${
      (sec / steps).toFixed(3)
    } s/step)`;
  return `sae: training loop, ${fmtInt(steps)} steps in ${total.toFixed(1)} s: ` +
    [
      part("activations", time.activations),
      part("SAE steps", time.steps),
      part("checkpoints", time.checkpoints),
    ].join(", ");
}

/**
 * Per-step logging: the sweep's rate, one line per SAE (and its metrics row), its resample events,
 * and, a window after each resample, whether the revived features stayed alive (once per event:
 * `reported` holds the events already told).
 */
function logStep(
  sweep: Sweep,
  metrics: SaeStepMetrics[],
  at: { step: number; rate: number; nameWidth: number; reported: Set<string> },
): void {
  const s = sweep.cfg.sae;
  const { nameWidth, reported } = at;
  log(`sae: step ${at.step}/${sweep.steps} | ${fmtInt(at.rate)} tok/s for the sweep`);
  for (const m of metrics) {
    sweep.rows[m.name].push(metricsRow(m));
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
            `(dead fraction ${pct(e.deadFractionBefore)}; checked again ${s.deadWindow} steps on)`,
      );
    }
  }
  for (const slot of sweep.trainer.slots) {
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
          `dead fraction now ${pct(e.deadFractionNextWindow)} (was ${pct(e.deadFractionBefore)})`,
      );
    }
  }
}

/**
 * Held-out evaluation and outputs, one SAE at a time; then summary.parquet, and the checkpoint is
 * removed. Returns the stage's result.
 */
async function evaluateAndWrite(sweep: Sweep, p: SaeStagePaths) {
  const { trainer, held } = sweep;
  const nHeld = held.seq.length;
  log(
    `sae: evaluating on ${fmtInt(nHeld)} held-out tokens (density resolution ${
      (1 / nHeld).toExponential(1)
    })`,
  );
  const summary = [];
  for (let i = 0; i < trainer.slots.length; i++) {
    const slot = trainer.slots[i], id = p.slots[i];
    const { eval: ev, stats } = evaluateSae(slot.sae, held.acts, sweep.cfg.sae.microBatch, {
      nativeStep: sweep.nativeStep,
    });
    await writeSaeOutputs(sweep, slot, { dir: p.dirs[i], id, stats, nHeld });
    const dead = stats.count.filter((c) => c === 0).length;
    const logged = sweep.rows[slot.name] ?? [];
    const steps = logged.map((r) => r.step);
    const mseChange = lastFifthChange(steps, logged.map((r) => r.mse));
    const l0Change = lastFifthChange(steps, logged.map((r) => r.l0));
    const row = {
      name: slot.name,
      size: slot.cfg.dSae,
      init: id.init,
      replicate: id.replicate,
      seed: slot.cfg.seed,
      // The config's name (relu, topk, ...), and the key and value that set its sparsity.
      architecture: id.architecture,
      sparsity_key: sparsityOf(sweep.cfg.sae, id.architecture as SaeArchitectureChoice).key,
      sparsity_value: sparsityOf(sweep.cfg.sae, id.architecture as SaeArchitectureChoice).value,
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
      // Relative change over the last fifth of training (mod/sae/convergence.ts); flat = both
      // under FLAT_TOLERANCE.
      mse_change_last_fifth: mseChange,
      l0_change_last_fifth: l0Change,
      flat: Math.abs(mseChange) < FLAT_TOLERANCE && Math.abs(l0Change) < FLAT_TOLERANCE ? 1 : 0,
    };
    summary.push(row);
    log(
      `sae: ${row.name}: held-out fve ${row.fve.toFixed(3)}, L0 ${row.l0.toFixed(1)}, dead ${
        (100 * row.dead_fraction).toFixed(1)
      }% ` +
        `(never fired in ${fmtInt(nHeld)} tokens), ${fmtInt(row.tokens_per_s)} tokens/s; ` +
        `last fifth: MSE ${signedPct(mseChange)}, L0 ${signedPct(l0Change)}` +
        (row.flat ? " (flat)" : ` (not flat: over ${100 * FLAT_TOLERANCE}%)`),
    );
  }
  trainer.dispose();
  sweep.nativeStep?.dispose();
  if (sweep.stream instanceof ModelActivationStream) {
    const { seconds } = sweep.stream;
    log(
      `sae: streamed activations computed in ${seconds.toFixed(1)} s (${
        fmtInt(seconds > 0 ? trainer.tokens / seconds : 0)
      } tokens/s)`,
    );
    sweep.stream.dispose();
  }
  await writeParquet(p.summary, summaryTable(summary));
  await Deno.remove(p.ckptDir, { recursive: true }).catch(() => {});
  return { steps: sweep.steps, heldoutTokens: nHeld, backend: sweep.backend.name, summary };
}

/**
 * One SAE's files: sae.safetensors + cfg.json (with provenance), metrics.parquet,
 * resamples.parquet and feature_stats.parquet.
 */
async function writeSaeOutputs(
  sweep: Sweep,
  slot: TrainerSlot,
  out: {
    dir: string;
    id: SaeSlot;
    stats: ReturnType<typeof evaluateSae>["stats"];
    nHeld: number;
  },
): Promise<void> {
  const { cfg, trainer } = sweep;
  const s = cfg.sae;
  const { dir, id, stats, nHeld } = out;
  await saveSae(dir, slot.sae, {
    model_name: join("results", cfg.run, "transformer", TRANSFORMER_FILES.weights),
    hook_name: HOOK_NAME,
    hook_layer: 0,
    context_size: cfg.tokenize.contextLength,
    dataset_path: join("data", cfg.run, DATA_FILES.tokens),
    activations:
      `MLP post-activation (ReLU output, width ${sweep.dIn}) of the one-layer transformer`,
    train_tokens: trainer.tokens,
    init: id.init,
    seed: slot.cfg.seed,
    run_seed: cfg.seed,
    replicate: id.replicate,
    warmup_steps: s.warmupSteps,
    resample_steps: slot.cfg.resampleSteps,
    dead_window: s.deadWindow,
  });
  await writeParquet(join(dir, SAE_FILES.metrics), arrow.tableFromJSON(sweep.rows[slot.name]));
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
