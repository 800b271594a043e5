/**
 * Training checkpoints for the transformer: the weights, Adam's moments and step count, and the
 * loss rows so far, in one safetensors file written atomically, so that a run killed at any
 * moment resumes from the last checkpoint and, for the same seed, reproduces an unbroken run.
 *
 * @module
 */
import type { Adam } from "./adam.ts";
import { type NamedTensor, readSafetensors, writeSafetensors } from "../io/mod.ts";
import { exists } from "../io/mod.ts";
import { PARAM_NAMES, type Transformer } from "./transformer.ts";
import * as tf from "@tensorflow/tfjs";

export interface LossRow {
  step: number;
  tokens_seen: number;
  train_loss: number;
  val_loss: number | null;
  lr: number;
  tokens_per_s: number;
}

export interface Checkpoint {
  /** Steps completed. */
  step: number;
  rows: LossRow[];
}

export async function saveCheckpoint(
  path: string,
  state: { model: Transformer; optimizer: Adam; step: number; rows: LossRow[]; key: string },
): Promise<void> {
  const tensors: Record<string, NamedTensor> = {};
  const adam = await state.optimizer.state();
  for (const name of PARAM_NAMES) {
    const v = state.model.params[name];
    tensors[name] = { shape: v.shape, data: (await v.data()) as Float32Array };
    if (adam.m[name]) {
      tensors[`adam.m.${name}`] = { shape: v.shape, data: adam.m[name] };
      tensors[`adam.v.${name}`] = { shape: v.shape, data: adam.v[name] };
    }
  }
  await writeSafetensors(path, tensors, {
    step: String(state.step),
    adam_t: String(adam.t),
    key: state.key,
    rows: JSON.stringify(state.rows),
  });
}

/**
 * Restores weights and optimizer state from `path` when it exists and was written for the same
 * run (`key`: a hash of the config and inputs); returns null otherwise.
 */
export async function loadCheckpoint(
  path: string,
  target: { model: Transformer; optimizer: Adam; key: string },
): Promise<Checkpoint | null> {
  if (!(await exists(path))) return null;
  const file = await readSafetensors(path);
  if (file.metadata.key !== target.key) return null;
  const m: Record<string, Float32Array> = {}, v: Record<string, Float32Array> = {};
  for (const name of PARAM_NAMES) {
    const t = file.tensors[name];
    const p = target.model.params[name];
    if (!t || t.shape.join() !== p.shape.join()) {
      throw new Error(`Checkpoint "${path}": tensor "${name}" is missing or has the wrong shape`);
    }
    tf.tidy(() => p.assign(tf.tensor(t.data as Float32Array, p.shape)));
    if (name in target.optimizer.params) {
      m[name] = file.tensors[`adam.m.${name}`]?.data as Float32Array;
      v[name] = file.tensors[`adam.v.${name}`]?.data as Float32Array;
    }
  }
  target.optimizer.load({ t: Number(file.metadata.adam_t), m, v });
  return { step: Number(file.metadata.step), rows: JSON.parse(file.metadata.rows) as LossRow[] };
}
