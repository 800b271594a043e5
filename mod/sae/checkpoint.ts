/**
 * SweepTrainer checkpoints on disk: `dir`/sweep_state.safetensors holds every array (SAE weights,
 * Adam moments, last-fired steps, the resampling reservoir) under names like "f4096.W_enc",
 * "f4096.adam.m.W_enc", "f4096.last_fired", "reservoir"; its metadata holds the scalars, RNG
 * states and resample events, and the caller's progress (the sae stage's config key and metrics
 * rows so far). That one file, written atomically, is the checkpoint: a kill at any moment leaves
 * either the previous checkpoint or the new one, never weights of one step with metrics of
 * another. `dir`/sweep_state.json, written after it, is a readable copy that resume never reads.
 *
 * @module
 */
import { SAE_ROOT_FILES } from "../run/mod.ts";
import type { AdamState } from "../transformer/mod.ts";
import { writeJsonAtomic } from "../io/mod.ts";
import { type NamedTensor, readSafetensors, writeSafetensors } from "../io/mod.ts";
import type { SaeTrainState, SweepState } from "./trainer.ts";

const SWEEP_STATE_TENSORS = SAE_ROOT_FILES.sweepStateTensors;
const SWEEP_STATE_JSON = SAE_ROOT_FILES.sweepStateJson;

type Meta = Omit<SweepState, "reservoir" | "saes"> & {
  reservoir: Omit<SweepState["reservoir"], "data">;
  saes: (Omit<SaeTrainState, "weights" | "adam" | "lastFired"> & { adamT: number })[];
};

export async function writeSweepCheckpoint(
  dir: string,
  state: SweepState,
  progress: unknown = null,
): Promise<void> {
  const tensors: Record<string, NamedTensor> = {
    reservoir: { shape: [state.reservoir.data.length], data: state.reservoir.data },
  };
  const flat = (data: Float32Array): NamedTensor => ({ shape: [data.length], data });
  for (const s of state.saes) {
    for (const [name, data] of Object.entries(s.weights)) tensors[`${s.name}.${name}`] = flat(data);
    for (const key of ["m", "v"] as const) {
      for (const [name, data] of Object.entries(s.adam[key])) {
        tensors[`${s.name}.adam.${key}.${name}`] = flat(data);
      }
    }
    tensors[`${s.name}.last_fired`] = flat(s.lastFired);
  }
  const meta: Meta = {
    version: state.version,
    dIn: state.dIn,
    step: state.step,
    tokens: state.tokens,
    initialised: state.initialised,
    reservoir: {
      filled: state.reservoir.filled,
      seen: state.reservoir.seen,
      rng: state.reservoir.rng,
    },
    saes: state.saes.map((s) => ({
      name: s.name,
      dSae: s.dSae,
      architecture: s.architecture,
      rng: s.rng,
      events: s.events,
      reported: s.reported,
      adamT: s.adam.t,
    })),
  };
  await writeSafetensors(`${dir}/${SWEEP_STATE_TENSORS}`, tensors, {
    sweep: JSON.stringify(meta),
    progress: JSON.stringify(progress),
  });
  await writeJsonAtomic(`${dir}/${SWEEP_STATE_JSON}`, meta);
}

export async function readSweepCheckpoint(dir: string): Promise<SweepState> {
  return (await loadSweepCheckpoint(dir)).state;
}

/** The path of the checkpoint file in `dir` (its existence means a whole checkpoint). */
export function sweepCheckpointPath(dir: string): string {
  return `${dir}/${SWEEP_STATE_TENSORS}`;
}

/** The checkpoint in `dir` and the progress written with it (null when none was given). */
export async function loadSweepCheckpoint<P = unknown>(
  dir: string,
): Promise<{ state: SweepState; progress: P | null }> {
  const tensorPath = sweepCheckpointPath(dir);
  const { tensors, metadata } = await readSafetensors(tensorPath);
  if (!metadata.sweep) throw new Error(`Cannot read "${tensorPath}": no sweep metadata`);
  let meta: Meta, progress: P | null;
  try {
    meta = JSON.parse(metadata.sweep) as Meta;
    progress = JSON.parse(metadata.progress ?? "null") as P | null;
  } catch {
    throw new Error(`Cannot read "${tensorPath}": its metadata is not valid JSON`);
  }
  const get = (name: string): Float32Array => {
    const t = tensors[name];
    if (!t || !(t.data instanceof Float32Array)) {
      throw new Error(`Cannot read "${tensorPath}": tensor "${name}" is missing`);
    }
    return t.data;
  };
  const saes: SaeTrainState[] = meta.saes.map((s) => {
    const weights: Record<string, Float32Array> = {};
    const adam: AdamState = { t: s.adamT, m: {}, v: {} };
    for (const name of ["W_enc", "b_enc", "W_dec", "b_dec"]) {
      weights[name] = get(`${s.name}.${name}`);
      adam.m[name] = get(`${s.name}.adam.m.${name}`);
      adam.v[name] = get(`${s.name}.adam.v.${name}`);
    }
    const { adamT: _t, ...rest } = s;
    return { ...rest, weights, adam, lastFired: get(`${s.name}.last_fired`) };
  });
  return {
    state: { ...meta, reservoir: { ...meta.reservoir, data: get("reservoir") }, saes },
    progress,
  };
}
