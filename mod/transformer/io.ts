/**
 * Saving and loading the transformer as safetensors, under TransformerLens names and shapes
 * (embed.W_E [d_vocab, d_model], blocks.0.attn.W_Q [n_heads, d_model, d_head], ...), so that
 * Python can read the file as a state dict. The config rides in the header metadata
 * ("transformer_config", JSON); loading checks every name and shape against it and names the file,
 * the tensor and both shapes when one differs.
 *
 * @module
 */
import { type NamedTensor, readSafetensors, writeSafetensors } from "../io/mod.ts";
import {
  PARAM_NAMES,
  paramShapes,
  type Transformer,
  type TransformerConfig,
  transformerFromWeights,
  validateConfig,
} from "./model.ts";

/** Metadata key that holds the TransformerConfig as JSON. */
export const CONFIG_METADATA_KEY = "transformer_config";

/** Writes every parameter (float32, TransformerLens names and shapes) atomically. */
export async function saveTransformer(
  path: string,
  model: Transformer,
  metadata: Record<string, string> = {},
): Promise<void> {
  const tensors: Record<string, NamedTensor> = {};
  for (const name of PARAM_NAMES) {
    const v = model.params[name];
    tensors[name] = { dtype: "F32", shape: v.shape, data: (await v.data()) as Float32Array };
  }
  await writeSafetensors(path, tensors, {
    ...metadata,
    [CONFIG_METADATA_KEY]: JSON.stringify(model.config),
  });
}

/** The config implied by the tensor shapes (used when the file carries none). */
function configFromShapes(label: string, shapes: Record<string, number[]>): TransformerConfig {
  for (const name of ["embed.W_E", "pos_embed.W_pos", "blocks.0.attn.W_Q", "blocks.0.mlp.W_in"]) {
    if (!shapes[name]) throw new Error(`${label}: tensor "${name}" is missing`);
  }
  const [dVocab, dModel] = shapes["embed.W_E"];
  return {
    dModel,
    dVocab,
    nCtx: shapes["pos_embed.W_pos"][0],
    nHeads: shapes["blocks.0.attn.W_Q"][0],
    dMlp: shapes["blocks.0.mlp.W_in"][1],
  };
}

/**
 * Loads a model saved by `saveTransformer` (or any file with the same names and shapes). The
 * expected config is `opts.config`, else the file's metadata, else what the shapes imply.
 */
export async function loadTransformer(
  path: string,
  opts: { config?: TransformerConfig } = {},
): Promise<Transformer> {
  const label = `"${path}"`;
  const file = await readSafetensors(path);
  const shapes: Record<string, number[]> = {};
  for (const [name, t] of Object.entries(file.tensors)) shapes[name] = t.shape;
  let config = opts.config;
  const meta = file.metadata[CONFIG_METADATA_KEY];
  if (!config && meta) {
    try {
      config = JSON.parse(meta) as TransformerConfig;
    } catch {
      throw new Error(`${label}: metadata "${CONFIG_METADATA_KEY}" is not valid JSON`);
    }
  }
  config = validateConfig(config ?? configFromShapes(label, shapes));
  const expected = paramShapes(config);
  for (const name of Object.keys(file.tensors)) {
    if (!(name in expected)) throw new Error(`${label}: unexpected tensor "${name}"`);
  }
  const weights: Record<string, Float32Array> = {};
  for (const name of PARAM_NAMES) {
    const t = file.tensors[name];
    if (!t) throw new Error(`${label}: tensor "${name}" is missing`);
    if (t.shape.join() !== expected[name].join()) {
      throw new Error(
        `${label}: tensor "${name}" has shape [${t.shape}], expected [${expected[name]}]`,
      );
    }
    if (!(t.data instanceof Float32Array)) {
      throw new Error(`${label}: tensor "${name}" has dtype ${t.dtype}, expected F32 or F16`);
    }
    weights[name] = t.data;
  }
  return transformerFromWeights(config, weights, label);
}

/** Every parameter as plain arrays (tests, checksums). */
export async function transformerWeights(
  model: Transformer,
): Promise<Record<string, Float32Array>> {
  const out: Record<string, Float32Array> = {};
  for (const name of PARAM_NAMES) out[name] = (await model.params[name].data()) as Float32Array;
  return out;
}
