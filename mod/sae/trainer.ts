/**
 * Trains several SAEs side by side from one activation stream (dictionary_learning's
 * trainSAE(trainer_configs) idea): every batch handed to step() is read once and feeds every
 * dictionary size, init and seed (replicate) of the sweep: one SaeTrainConfig per SAE, each named
 * and seeded apart. The trainer does not know where activations come from.
 *
 *   const trainer = new SweepTrainer([{ dSae: 4096, l1Coefficient: 5, lr: 1e-4 }], { dIn: 512 });
 *   for (const xBD of stream) { const logs = await trainer.step(xBD); if (logs) write(logs); }
 *   const ckpt = await trainer.state();          // ... later, in a fresh process:
 *   const resumed = new SweepTrainer(sameConfigs, sameOpts); resumed.load(ckpt);
 *
 * One step, per SAE: micro-batches (opts.microBatch rows; the wasm backend's memory is capped at
 * 4 GiB) accumulate gradients from saeGrads normalised by the full batch; the decoder-row
 * gradients lose their component along their rows; Adam (no weight decay) steps at the scheduled
 * lr (lrAt in mod/sae/train_config.ts: a linear warm-up, restarted after each resample step);
 * decoder rows are renormalised to 1; per-feature "last fired" steps are updated on the device
 * (no host sync except on logging, resampling and window-check steps).
 *
 * b_dec of every SAE starts at the geometric median of (up to opts.medianSample rows of) the first
 * batch. A feature is dead at step s when it has not fired at steps s−window+1..s (tracked by the
 * step it last fired, or was (re)initialised, which is what a per-window firing count of 0 means).
 * At each configured resample step the dead features are resampled (mod/sae/resample.ts) from a
 * reservoir (mod/sae/reservoir.ts): a uniform sample of opts.resampleInputs of all rows seen so
 * far, shared by every SAE.
 *
 * Logged metrics are from the step's own batch, before the update: loss, mse, l1, l0 (normalised as
 * in mod/sae/sae.ts), fve = 1 − Σ‖x − x̂‖² / Σ‖x − mean(x)‖² over the batch; deadFraction after the
 * update; resample events since the previous log.
 *
 * Shape key: B batch rows, M micro-batch rows, D input width, F features.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { Adam, type AdamState } from "../transformer/mod.ts";
import { geometricMedian } from "./geometric_median.ts";
import { resampleDeadFeatures, type ResampleEvent } from "./resample.ts";
import {
  createSae,
  disposeSae,
  fromArrays,
  positiveInt,
  type Sae,
  type SaeArchitecture,
  saeParams,
  saeTensors,
  toArrays,
} from "./sae.ts";
import { gradsFor, runsNative } from "./architectures.ts";
import { updateThreshold } from "./batchtopk.ts";
import {
  accumulateGrads,
  disposeGrads,
  normaliseRows,
  projectOutParallel,
  type SaeGrads,
  saeGrads,
  type SaeGradsFn,
} from "./grads.ts";
import type { NativeSaeStep } from "./native_step.ts";
import { fractionVarianceExplained, totalVarianceTensor } from "./heldout_eval.ts";
import { Reservoir, type ReservoirState } from "./reservoir.ts";
import { Rng, type RngState } from "../run/mod.ts";
import {
  lrAt,
  type ResolvedTrainConfig,
  resolveTrainConfig,
  type SaeTrainConfig,
  type SweepOptions,
} from "./train_config.ts";

export type { SaeTrainConfig, SweepOptions };

export interface SaeStepMetrics {
  name: string;
  dSae: number;
  architecture: SaeArchitecture;
  step: number;
  tokens: number;
  loss: number;
  mse: number;
  fve: number;
  l1: number;
  l0: number;
  deadFraction: number;
  resamples: ResampleEvent[];
  /** This SAE's training throughput in this process (wall time of its own updates). */
  tokensPerS: number;
}

export interface SaeTrainState {
  name: string;
  dSae: number;
  architecture: SaeArchitecture;
  weights: Record<string, Float32Array>;
  adam: AdamState;
  lastFired: Float32Array;
  rng: RngState;
  events: ResampleEvent[];
  reported: number;
}

export interface SweepState {
  version: 1;
  dIn: number;
  step: number;
  tokens: number;
  initialised: boolean;
  reservoir: ReservoirState;
  saes: SaeTrainState[];
}

interface Slot {
  name: string;
  cfg: ResolvedTrainConfig;
  sae: Sae;
  /** This SAE's gradients (architectures.ts gradsFor) and whether the native step runs it. */
  gradsFn: SaeGradsFn;
  native: boolean;
  adam: Adam;
  lastFiredF: tf.Variable<tf.Rank.R1>;
  rng: Rng;
  events: ResampleEvent[];
  reported: number;
  /** Wall seconds and rows of this SAE's updates in this process (for tokens/s per size). */
  seconds: number;
  rowsTimed: number;
}

export class SweepTrainer {
  readonly dIn: number;
  readonly microBatch: number;
  readonly logEvery: number;
  readonly resampleInputs: number;
  readonly medianSample: number;
  readonly slots: Slot[];
  stepCount = 0;
  tokens = 0;
  #initialised = false;
  #bDecInit?: Float32Array;
  #gradsFn: SaeGradsFn;
  #native?: NativeSaeStep;
  #reservoir: Reservoir;
  #needsReservoir: boolean;

  constructor(configs: SaeTrainConfig[], opts: SweepOptions) {
    this.dIn = positiveInt("SAE d_in", opts.dIn);
    this.microBatch = positiveInt("microBatch", opts.microBatch ?? 2048);
    this.logEvery = positiveInt("logEvery", opts.logEvery ?? 100);
    this.resampleInputs = positiveInt("resampleInputs", opts.resampleInputs ?? 4096);
    this.medianSample = positiveInt("medianSample", opts.medianSample ?? 4096);
    if (opts.bDecInit && opts.bDecInit.length !== this.dIn) {
      throw new Error(`bDecInit length ${opts.bDecInit.length} does not match d_in ${this.dIn}`);
    }
    this.#bDecInit = opts.bDecInit;
    this.#gradsFn = opts.gradsFn ?? saeGrads;
    this.#native = opts.nativeStep;
    if (configs.length === 0) throw new Error("SweepTrainer needs at least one SAE config");
    const seed = opts.seed ?? 0;
    this.#reservoir = new Reservoir(this.resampleInputs, this.dIn, seed + 0x7e5e);
    this.slots = configs.map((c, i) => this.#makeSlot(c, seed + i));
    const names = new Set(this.slots.map((s) => s.name));
    if (names.size !== this.slots.length) {
      throw new Error(`SAE config names must be distinct: ${this.slots.map((s) => s.name)}`);
    }
    this.#needsReservoir = this.slots.some((s) => s.cfg.resampleSteps.length > 0);
  }

  #makeSlot(c: SaeTrainConfig, defaultSeed: number): Slot {
    const { name, cfg } = resolveTrainConfig(c, defaultSeed);
    const architecture = cfg.architecture;
    let sae: Sae;
    try {
      sae = createSae(
        {
          dIn: this.dIn,
          dSae: c.dSae,
          architecture,
          k: c.k,
          l1Coefficient: c.l1Coefficient,
          ...definedOnly({
            l0Coefficient: c.l0Coefficient,
            bandwidth: c.bandwidth,
            initThreshold: c.initThreshold,
            auxkCoefficient: c.auxkCoefficient,
            auxK: c.auxK,
            thresholdRate: c.thresholdRate,
          }),
        },
        { seed: cfg.seed, bDec: this.#bDecInit, init: cfg.init },
      );
    } catch (e) {
      throw new Error(`SAE "${name}": ${(e as Error).message}`);
    }
    const adam = new Adam(saeParams(sae), { lr: c.lr, beta1: cfg.beta1, beta2: cfg.beta2 });
    return {
      name,
      cfg,
      sae,
      gradsFn: gradsFor(sae.cfg, this.#gradsFn),
      native: this.#native !== undefined && runsNative(sae.cfg),
      adam,
      lastFiredF: tf.tidy(() => tf.variable(tf.zeros([c.dSae]), false)) as tf.Variable<
        tf.Rank.R1
      >,
      rng: new Rng(cfg.seed ^ 0x5a5a5a5a),
      events: [],
      reported: 0,
      seconds: 0,
      rowsTimed: 0,
    };
  }

  /** One training step on every SAE; metrics on logging steps, else null. */
  async step(xBD: tf.Tensor2D): Promise<SaeStepMetrics[] | null> {
    if (xBD.rank !== 2 || xBD.shape[1] !== this.dIn || xBD.shape[0] < 1) {
      throw new Error(
        `SAE input width ${xBD.shape.at(-1)} (shape [${xBD.shape}]) does not ` +
          `match d_in ${this.dIn}`,
      );
    }
    if (!this.#initialised) this.#initialise(xBD);
    this.stepCount += 1;
    this.tokens += xBD.shape[0];
    const step = this.stepCount;
    const logging = step % this.logEvery === 0;
    if (this.#needsReservoir) await this.#reservoir.add(xBD);

    const B = xBD.shape[0];
    const micros: tf.Tensor2D[] = [];
    for (let start = 0; start < B; start += this.microBatch) {
      const size = Math.min(this.microBatch, B - start);
      micros.push(size === B ? xBD : tf.slice(xBD, [start, 0], [size, -1]));
    }
    const variance = logging ? totalVarianceTensor(xBD) : null;
    const logs: SaeStepMetrics[] = [];
    try {
      for (const slot of this.slots) {
        // wasm and cpu run kernels as they are called, so wall time per SAE is meaningful there.
        const t0 = performance.now();
        const parts = slot.native
          ? this.#trainOneNative(this.#native!, slot, micros, B, step, logging)
          : this.#trainOne(slot, micros, B, step, logging);
        slot.seconds += (performance.now() - t0) / 1000;
        slot.rowsTimed += B;
        this.#checkNextWindow(slot, step);
        const resample = this.#maybeResample(slot, step);
        if (resample) slot.events.push(resample);
        if (parts) {
          const [loss, mse, l1, l0, v] = await Promise.all(
            [...parts, variance!].map(async (t) => (await t.data())[0]),
          );
          tf.dispose(parts);
          logs.push({
            name: slot.name,
            dSae: slot.cfg.dSae,
            architecture: slot.cfg.architecture,
            step,
            tokens: this.tokens,
            loss,
            mse,
            fve: fractionVarianceExplained(mse * B, v),
            l1,
            l0,
            deadFraction: this.#deadList(slot, step).length / slot.cfg.dSae,
            resamples: slot.events.slice(slot.reported),
            tokensPerS: slot.seconds > 0 ? slot.rowsTimed / slot.seconds : 0,
          });
          slot.reported = slot.events.length;
        }
      }
    } finally {
      for (const m of micros) if (m !== xBD) m.dispose();
      variance?.dispose();
    }
    return logging ? logs : null;
  }

  #initialise(xBD: tf.Tensor2D): void {
    this.#initialised = true;
    if (this.#bDecInit) return; // already set at creation
    const n = Math.min(this.medianSample, xBD.shape[0]);
    const sample = tf.slice(xBD, [0, 0], [n, -1]);
    const { median } = geometricMedian(sample);
    sample.dispose();
    for (const slot of this.slots) tf.tidy(() => slot.sae.bDecD.assign(tf.tensor1d(median)));
  }

  /** Gradients over the micro-batches, constrained Adam step; loss parts when logging. */
  #trainOne(
    slot: Slot,
    micros: tf.Tensor2D[],
    B: number,
    step: number,
    logging: boolean,
  ): tf.Scalar[] | null {
    const { sae, adam } = slot;
    const wDecTDF = tf.transpose(sae.wDecFD) as tf.Tensor2D;
    // AuxK reads the features dead by the window as of the previous step.
    const deadF = (sae.cfg.auxkCoefficient ?? 0) > 0
      ? tf.tidy(() =>
        tf.cast(tf.greaterEqual(tf.sub(step - 1, slot.lastFiredF), slot.cfg.deadWindow), "float32")
      ) as tf.Tensor1D
      : undefined;
    let grads: SaeGrads | null = null;
    let sums: tf.Tensor[] | null = null;
    let minActive = Infinity;
    for (const xMD of micros) {
      const r = slot.gradsFn(sae, xMD, { normBatch: B, wDecTDF, deadF });
      if (r.minActive) {
        minActive = Math.min(minActive, r.minActive.dataSync()[0]);
        r.minActive.dispose();
      }
      grads = accumulateGrads(grads, r.grads);
      const parts = [r.loss, r.mse, r.l1, r.l0, r.fireCountF];
      if (sums === null) sums = parts;
      else {
        const next: tf.Tensor[] = sums.map((s, i) => tf.add(s, parts[i]));
        tf.dispose([...sums, ...parts]);
        sums = next;
      }
    }
    wDecTDF.dispose();
    deadF?.dispose();
    if (sae.cfg.architecture === "batchtopk") updateThreshold(sae, minActive);
    const [loss, mse, l1, l0, fireCountF] = sums!;
    const gWDecFD = projectOutParallel(grads!.W_dec, sae.wDecFD);
    adam.step({ ...grads!, W_dec: gWDecFD }, lrAt(step, slot.cfg));
    gWDecFD.dispose();
    disposeGrads(grads!);
    tf.tidy(() => {
      sae.wDecFD.assign(normaliseRows(sae.wDecFD));
      slot.lastFiredF.assign(
        tf.where(tf.greater(fireCountF, 0), tf.fill([slot.cfg.dSae], step), slot.lastFiredF),
      );
    });
    fireCountF.dispose();
    if (logging) return [loss, mse, l1, l0] as tf.Scalar[];
    tf.dispose([loss, mse, l1, l0]);
    return null;
  }

  /** #trainOne on the native kernels: the same math, in place in the wasm heap. */
  #trainOneNative(
    native: NativeSaeStep,
    slot: Slot,
    micros: tf.Tensor2D[],
    B: number,
    step: number,
    logging: boolean,
  ): tf.Scalar[] | null {
    const { sae } = slot;
    let sse = 0, l1 = 0, nnz = 0, minActive = Infinity;
    micros.forEach((xMD, i) => {
      const r = native.grads(sae, xMD, B, i === 0);
      sse += r.sse;
      l1 += r.l1;
      nnz += r.nnz;
      minActive = Math.min(minActive, r.minActive);
    });
    native.update(sae, slot.adam, lrAt(step, slot.cfg), step, slot.lastFiredF);
    if (sae.cfg.architecture === "batchtopk") updateThreshold(sae, minActive);
    if (!logging) return null;
    const lambda = sae.cfg.l1Coefficient;
    return [(sse + lambda * l1) / B, sse / B, l1 / B, nnz / B].map((v) => tf.scalar(v));
  }

  #deadList(slot: Slot, step: number): number[] {
    const last = slot.lastFiredF.dataSync();
    const dead: number[] = [];
    for (let i = 0; i < last.length; i++) if (step - last[i] >= slot.cfg.deadWindow) dead.push(i);
    return dead;
  }

  #maybeResample(slot: Slot, step: number): ResampleEvent | null {
    if (!slot.cfg.resampleSteps.includes(step) || this.#reservoir.filled === 0) return null;
    const dead = this.#deadList(slot, step);
    const inputsND = this.#reservoir.toTensor();
    try {
      const event = resampleDeadFeatures(slot.sae, slot.adam, dead, inputsND, slot.rng, {
        step,
        deadFractionBefore: dead.length / slot.cfg.dSae,
        microBatch: this.microBatch,
      });
      // A resampled feature gets a full window to fire before it can count as dead again.
      if (dead.length > 0) {
        const last = Float32Array.from(slot.lastFiredF.dataSync());
        for (const i of dead) last[i] = step;
        tf.tidy(() => slot.lastFiredF.assign(tf.tensor1d(last)));
      }
      return event;
    } finally {
      inputsND.dispose();
    }
  }

  #checkNextWindow(slot: Slot, step: number): void {
    for (const ev of slot.events) {
      if (ev.deadFractionNextWindow === undefined && step === ev.step + slot.cfg.deadWindow) {
        ev.deadFractionNextWindow = this.#deadList(slot, step).length / slot.cfg.dSae;
        // A resampled feature's last firing was set to the resample step: later means it fired.
        const last = slot.lastFiredF.dataSync();
        ev.revivedNextWindow = ev.features.filter((f) => last[f] > ev.step).length;
      }
    }
  }

  /** A checkpoint of everything a resumed run needs to match an unbroken one. */
  async state(): Promise<SweepState> {
    const saes: SaeTrainState[] = [];
    for (const slot of this.slots) {
      saes.push({
        name: slot.name,
        dSae: slot.cfg.dSae,
        architecture: slot.cfg.architecture,
        weights: await toArrays(slot.sae),
        adam: await slot.adam.state(),
        lastFired: Float32Array.from(await slot.lastFiredF.data()),
        rng: slot.rng.state(),
        events: structuredClone(slot.events),
        reported: slot.reported,
      });
    }
    return {
      version: 1,
      dIn: this.dIn,
      step: this.stepCount,
      tokens: this.tokens,
      initialised: this.#initialised,
      reservoir: this.#reservoir.state(),
      saes,
    };
  }

  /** Restores a state() from a trainer built with the same configs and options. */
  load(state: SweepState): void {
    if (state.version !== 1) throw new Error(`SAE checkpoint version "${state.version}" unknown`);
    if (state.dIn !== this.dIn) {
      throw new Error(`SAE checkpoint d_in ${state.dIn} does not match d_in ${this.dIn}`);
    }
    if (state.saes.length !== this.slots.length) {
      throw new Error(
        `SAE checkpoint holds ${state.saes.length} SAEs, ` +
          `the trainer was configured with ${this.slots.length}`,
      );
    }
    state.saes.forEach((s, i) => {
      const slot = this.slots[i];
      if (s.name !== slot.name || s.dSae !== slot.cfg.dSae) {
        throw new Error(
          `SAE checkpoint entry ${i} is "${s.name}" (d_sae ${s.dSae}), the ` +
            `trainer's is "${slot.name}" (d_sae ${slot.cfg.dSae})`,
        );
      }
    });
    this.stepCount = state.step;
    this.tokens = state.tokens;
    this.#initialised = state.initialised;
    this.#reservoir.load(state.reservoir);
    state.saes.forEach((s, i) => {
      const slot = this.slots[i];
      const fresh = fromArrays(slot.sae.cfg, s.weights);
      for (const [name, v] of Object.entries(saeTensors(slot.sae))) {
        v.assign(saeTensors(fresh)[name]);
      }
      disposeSae(fresh);
      slot.adam.load(s.adam);
      if (s.lastFired.length !== slot.cfg.dSae) {
        throw new Error(`SAE checkpoint "${s.name}" lastFired has ${s.lastFired.length} entries`);
      }
      tf.tidy(() => slot.lastFiredF.assign(tf.tensor1d(s.lastFired)));
      slot.rng.load(s.rng);
      slot.events = structuredClone(s.events);
      slot.reported = s.reported;
    });
  }

  dispose(): void {
    for (const slot of this.slots) {
      disposeSae(slot.sae);
      slot.adam.dispose();
      slot.lastFiredF.dispose();
    }
  }
}

/** `o` without its undefined entries (so optional SaeConfig fields stay absent). */
function definedOnly<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
