/**
 * SweepTrainer checkpoints on disk: `dir`/sweep_state.safetensors holds every array (SAE weights,
 * Adam moments, last-fired steps, the resampling reservoir) under names like "f4096.W_enc",
 * "f4096.adam.m.W_enc", "f4096.last_fired", "reservoir"; its metadata (and a readable copy in
 * `dir`/sweep_state.json) holds the scalars, RNG states and resample events. Both are written
 * atomically, the JSON last, so a checkpoint whose JSON exists is whole.
 *
 * @module
 */
import { SAE_ROOT_FILES } from "../run/mod.ts";
import type { AdamState } from "../transformer/mod.ts";
import { readJson, writeJsonAtomic } from "../io/mod.ts";
import { type NamedTensor, readSafetensors, writeSafetensors } from "../io/mod.ts";
import type { SaeTrainState, SweepState } from "./trainer.ts";

const SWEEP_STATE_TENSORS = SAE_ROOT_FILES.sweepStateTensors;
const SWEEP_STATE_JSON = SAE_ROOT_FILES.sweepStateJson;

type Meta = Omit<SweepState, "reservoir" | "saes"> & {
  reservoir: Omit<SweepState["reservoir"], "data">;
  saes: (Omit<SaeTrainState, "weights" | "adam" | "lastFired"> & { adamT: number })[];
};

export async function writeSweepCheckpoint(dir: string, state: SweepState): Promise<void> {
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
  await writeSafetensors(`${dir}/${SWEEP_STATE_TENSORS}`, tensors, { sweep: JSON.stringify(meta) });
  await writeJsonAtomic(`${dir}/${SWEEP_STATE_JSON}`, meta);
}

export async function readSweepCheckpoint(dir: string): Promise<SweepState> {
  const jsonPath = `${dir}/${SWEEP_STATE_JSON}`, tensorPath = `${dir}/${SWEEP_STATE_TENSORS}`;
  await readJson<Meta>(jsonPath); // the JSON is written last: its absence means no whole checkpoint
  const { tensors, metadata } = await readSafetensors(tensorPath);
  if (!metadata.sweep) throw new Error(`Cannot read "${tensorPath}": no sweep metadata`);
  const meta = JSON.parse(metadata.sweep) as Meta;
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
  return { ...meta, reservoir: { ...meta.reservoir, data: get("reservoir") }, saes };
}
