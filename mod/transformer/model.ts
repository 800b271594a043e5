/**
 * The one-layer transformer's definition: configuration, parameters in TransformerLens names and
 * shapes, seeded GPT-2-style initialisation, and the forward pass with a hook on the MLP
 * post-activation (read it, add a steering vector, splice in an SAE reconstruction).
 *
 *   x = W_E[tok] + W_pos[pos]; x += attn(ln1(x)); x += mlp(ln2(x)); logits = ln_final(x) W_U + b_U
 *
 * Import the model through mod/transformer/transformer.ts, which gathers this file, the training step
 * (transformer_train.ts), saving and loading (transformer_io.ts) and sampling
 * (transformer_sample.ts).
 *
 * Shape key: B batch, T positions, D d_model, H heads, E d_head, M d_mlp, V vocabulary, N = B * T
 * rows.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { deriveSeed, Rng } from "../run/mod.ts";
import { embedLookup } from "./ops.ts";

export const LN_EPS = 1e-5;

export interface TransformerConfig {
  dModel: number;
  nHeads: number;
  dMlp: number;
  nCtx: number;
  dVocab: number;
}

/** TransformerLens parameter names, in state-dict order. */
export const PARAM_NAMES = [
  "embed.W_E",
  "pos_embed.W_pos",
  "blocks.0.ln1.w",
  "blocks.0.ln1.b",
  "blocks.0.attn.W_Q",
  "blocks.0.attn.W_K",
  "blocks.0.attn.W_V",
  "blocks.0.attn.W_O",
  "blocks.0.attn.b_Q",
  "blocks.0.attn.b_K",
  "blocks.0.attn.b_V",
  "blocks.0.attn.b_O",
  "blocks.0.ln2.w",
  "blocks.0.ln2.b",
  "blocks.0.mlp.W_in",
  "blocks.0.mlp.b_in",
  "blocks.0.mlp.W_out",
  "blocks.0.mlp.b_out",
  "ln_final.w",
  "ln_final.b",
  "unembed.W_U",
  "unembed.b_U",
] as const;
export type ParamName = typeof PARAM_NAMES[number];

export interface Transformer {
  readonly config: TransformerConfig;
  readonly params: Record<ParamName, tf.Variable>;
}

/**
 * Builds a validated config; nHeads defaults to 8, dMlp to 4 * dModel. dVocab is the tokenizer's
 * (GPT2_VOCAB_SIZE in mod/tokenize/ for the pipeline's), which this library does not know.
 */
export function transformerConfig(
  c: Pick<TransformerConfig, "dModel" | "nCtx" | "dVocab"> & Partial<TransformerConfig>,
): TransformerConfig {
  return validateConfig({
    dModel: c.dModel,
    nHeads: c.nHeads ?? 8,
    dMlp: c.dMlp ?? 4 * c.dModel,
    nCtx: c.nCtx,
    dVocab: c.dVocab,
  });
}

export function validateConfig(c: TransformerConfig): TransformerConfig {
  for (const key of ["dModel", "nHeads", "dMlp", "nCtx", "dVocab"] as const) {
    const value = (c as unknown as Record<string, unknown>)[key];
    if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
      throw new Error(`Transformer config ${key} "${value}" is not a positive integer`);
    }
  }
  if (c.dModel % c.nHeads !== 0) {
    throw new Error(`Transformer config dModel ${c.dModel} is not divisible by nHeads ${c.nHeads}`);
  }
  const { dModel, nHeads, dMlp, nCtx, dVocab } = c;
  return { dModel, nHeads, dMlp, nCtx, dVocab };
}

/** The shape of every parameter, in TransformerLens layout. */
export function paramShapes(c: TransformerConfig): Record<ParamName, number[]> {
  const { dModel: d, nHeads: h, dMlp: m, nCtx, dVocab: v } = c, e = d / h;
  return {
    "embed.W_E": [v, d],
    "pos_embed.W_pos": [nCtx, d],
    "blocks.0.ln1.w": [d],
    "blocks.0.ln1.b": [d],
    "blocks.0.attn.W_Q": [h, d, e],
    "blocks.0.attn.W_K": [h, d, e],
    "blocks.0.attn.W_V": [h, d, e],
    "blocks.0.attn.W_O": [h, e, d],
    "blocks.0.attn.b_Q": [h, e],
    "blocks.0.attn.b_K": [h, e],
    "blocks.0.attn.b_V": [h, e],
    "blocks.0.attn.b_O": [d],
    "blocks.0.ln2.w": [d],
    "blocks.0.ln2.b": [d],
    "blocks.0.mlp.W_in": [d, m],
    "blocks.0.mlp.b_in": [m],
    "blocks.0.mlp.W_out": [m, d],
    "blocks.0.mlp.b_out": [d],
    "ln_final.w": [d],
    "ln_final.b": [d],
    "unembed.W_U": [d, v],
    "unembed.b_U": [v],
  };
}

let modelCount = 0;

/**
 * A model from explicit weights (loading, hand-set test weights). Every name must be present with
 * the right number of values.
 */
export function transformerFromWeights(
  config: TransformerConfig,
  weights: Record<string, Float32Array | number[]>,
  label = "weights",
): Transformer {
  const cfg = validateConfig(config), shapes = paramShapes(cfg);
  for (const name of Object.keys(weights)) {
    if (!(name in shapes)) throw new Error(`${label}: unexpected tensor "${name}"`);
  }
  for (const name of PARAM_NAMES) {
    const w = weights[name];
    if (!w) throw new Error(`${label}: tensor "${name}" is missing`);
    const size = shapes[name].reduce((a, b) => a * b, 1);
    if (w.length !== size) {
      throw new Error(`${label}: tensor "${name}" has ${w.length} values, expected ${size}`);
    }
  }
  // tf variable names are global to the engine: a per-model prefix lets several models coexist.
  const prefix = `transformer${++modelCount}`;
  const params = {} as Record<ParamName, tf.Variable>;
  for (const name of PARAM_NAMES) {
    const t = tf.tensor(weights[name], shapes[name], "float32");
    params[name] = tf.variable(t, true, `${prefix}/${name}`);
    t.dispose();
  }
  return { config: cfg, params };
}

/**
 * Seeded GPT-2-style initialisation: weights N(0, 0.02), the residual output projections (W_O,
 * W_out) scaled by 1/sqrt(2 * n_layers), biases 0, LayerNorm gains 1. Same seed, same weights.
 */
export function createTransformer(
  config: TransformerConfig,
  opts: { seed?: number; initStd?: number } = {},
): Transformer {
  const cfg = validateConfig(config), shapes = paramShapes(cfg);
  const seed = opts.seed ?? 0, std = opts.initStd ?? 0.02, nLayers = 1;
  const weights: Record<string, Float32Array> = {};
  for (const name of PARAM_NAMES) {
    const size = shapes[name].reduce((a, b) => a * b, 1);
    const values = new Float32Array(size);
    const leaf = name.slice(name.lastIndexOf(".") + 1);
    if (leaf === "w") values.fill(1);
    else if (leaf.startsWith("W_")) {
      const s = name.endsWith("W_O") || name.endsWith("W_out") ? std / Math.sqrt(2 * nLayers) : std;
      const rng = new Rng(deriveSeed(seed, name));
      for (let i = 0; i < size; i++) values[i] = s * rng.normal();
    }
    weights[name] = values;
  }
  return transformerFromWeights(cfg, weights);
}

export function disposeTransformer(model: Transformer): void {
  for (const v of Object.values(model.params)) v.dispose();
}

/** Names of the parameters with two or more axes: the ones that get weight decay. */
export function matrixParamNames(model: Transformer): ParamName[] {
  return PARAM_NAMES.filter((n) => model.params[n].rank >= 2);
}

// ---------------------------------------------------------------------------------------------
// Forward pass

export type MlpPostHook = (postBTM: tf.Tensor3D) => tf.Tensor3D;
export interface TransformerHooks {
  /** Sees the MLP post-activation ReLU(ln2(x) W_in + b_in) [B, T, M]; its result replaces it. */
  mlpPost?: MlpPostHook;
}

/** Steering: post + scale * dir at every position. The caller owns (and disposes) `dirM`. */
export function addToMlpPost(dirM: tf.Tensor1D, scale = 1): MlpPostHook {
  return (postBTM) => tf.add(postBTM, tf.mul(dirM, scale));
}

/** Replacement (e.g. an SAE's reconstruction): the hook's result must keep the shape [B, T, M]. */
export function replaceMlpPost(fn: (postBTM: tf.Tensor3D) => tf.Tensor): MlpPostHook {
  return (postBTM) => {
    const out = fn(postBTM);
    if (out.shape.join() !== postBTM.shape.join()) {
      throw new Error(
        `MLP post replacement has shape [${out.shape}], expected [${postBTM.shape}]`,
      );
    }
    return out as tf.Tensor3D;
  };
}

/** LayerNorm over the last axis (biased variance, eps 1e-5, as TransformerLens). */
export function layerNorm(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, LN_EPS))), w), b);
}

export function checkTokens(model: Transformer, tokensBT: tf.Tensor2D, minT = 1): void {
  if (tokensBT.rank !== 2) throw new Error(`Tokens must be [B, T], got shape [${tokensBT.shape}]`);
  if (tokensBT.dtype !== "int32") throw new Error(`Tokens must be int32, got ${tokensBT.dtype}`);
  const t = tokensBT.shape[1];
  if (t < minT || t > model.config.nCtx) {
    throw new Error(`Token sequence length ${t} is outside [${minT}, ${model.config.nCtx}]`);
  }
}

/** Additive causal mask [T, T]: 0 on and below the diagonal, -1e9 above. */
function causalMask(t: number): tf.Tensor2D {
  const m = new Float32Array(t * t);
  for (let i = 0; i < t; i++) for (let j = i + 1; j < t; j++) m[i * t + j] = -1e9;
  return tf.tensor2d(m, [t, t]);
}

function attention(model: Transformer, xBTD: tf.Tensor3D): tf.Tensor3D {
  const p = model.params, { dModel: d, nHeads: h } = model.config, e = d / h;
  const [b, t] = xBTD.shape;
  // [H, D, E] -> [D, H*E]: one matmul for all heads of Q, K and V.
  const wQkvD3 = tf.concat(
    [p["blocks.0.attn.W_Q"], p["blocks.0.attn.W_K"], p["blocks.0.attn.W_V"]].map((w) =>
      tf.reshape(tf.transpose(w, [1, 0, 2]), [d, d])
    ),
    1,
  );
  const bQkv = tf.concat(
    [p["blocks.0.attn.b_Q"], p["blocks.0.attn.b_K"], p["blocks.0.attn.b_V"]].map((x) =>
      tf.reshape(x, [d])
    ),
    0,
  );
  const qkvN3 = tf.add(tf.matMul(tf.reshape(xBTD, [b * t, d]), wQkvD3), bQkv);
  const [qBHTE, kBHTE, vBHTE] = tf.split(qkvN3, 3, 1).map((x) =>
    tf.transpose(tf.reshape(x, [b, t, h, e]), [0, 2, 1, 3])
  );
  const scoresBHTT = tf.add(
    tf.mul(tf.matMul(qBHTE, tf.transpose(kBHTE, [0, 1, 3, 2])), 1 / Math.sqrt(e)),
    causalMask(t),
  );
  const zBHTE = tf.matMul(tf.softmax(scoresBHTT), vBHTE);
  const zND = tf.reshape(tf.transpose(zBHTE, [0, 2, 1, 3]), [b * t, d]);
  const outND = tf.add(
    tf.matMul(zND, tf.reshape(p["blocks.0.attn.W_O"], [d, d])),
    p["blocks.0.attn.b_O"],
  );
  return tf.reshape(outND, [b, t, d]);
}

/** Residual stream after the block (before ln_final), and the MLP post-activation. */
export function blockForward(
  model: Transformer,
  tokensBT: tf.Tensor2D,
  hooks: TransformerHooks = {},
): { residBTD: tf.Tensor3D; postBTM: tf.Tensor3D } {
  const p = model.params, { dModel: d, dMlp: m } = model.config;
  const [b, t] = tokensBT.shape;
  const tokEmbBTD = tf.reshape(
    embedLookup(tf.reshape(tokensBT, [b * t]), p["embed.W_E"] as tf.Tensor2D),
    [b, t, d],
  );
  let residBTD = tf.add(tokEmbBTD, tf.slice(p["pos_embed.W_pos"], [0, 0], [t, d])) as tf.Tensor3D;
  const ln1 = layerNorm(residBTD, p["blocks.0.ln1.w"], p["blocks.0.ln1.b"]) as tf.Tensor3D;
  residBTD = tf.add(residBTD, attention(model, ln1));
  const ln2ND = tf.reshape(layerNorm(residBTD, p["blocks.0.ln2.w"], p["blocks.0.ln2.b"]), [
    b * t,
    d,
  ]);
  const preNM = tf.add(
    tf.matMul(ln2ND, p["blocks.0.mlp.W_in"] as tf.Tensor2D),
    p["blocks.0.mlp.b_in"],
  );
  let postBTM = tf.reshape(tf.relu(preNM), [b, t, m]) as tf.Tensor3D;
  if (hooks.mlpPost) postBTM = hooks.mlpPost(postBTM);
  const outND = tf.add(
    tf.matMul(tf.reshape(postBTM, [b * t, m]), p["blocks.0.mlp.W_out"] as tf.Tensor2D),
    p["blocks.0.mlp.b_out"],
  );
  residBTD = tf.add(residBTD, tf.reshape(outND, [b, t, d]));
  return { residBTD, postBTM };
}

/** ln_final applied to the residual stream. */
export function finalLn(model: Transformer, residBTD: tf.Tensor): tf.Tensor {
  return layerNorm(residBTD, model.params["ln_final.w"], model.params["ln_final.b"]);
}

export interface ForwardOptions {
  hooks?: TransformerHooks;
  /** Also return the MLP post-activation [B, T, M] (after the hook, as the model used it). */
  returnMlpPost?: boolean;
}
export interface ForwardOutput {
  logits: tf.Tensor3D;
  mlpPost?: tf.Tensor3D;
}

/** Logits [B, T, V] for int32 tokens [B, T]. The caller disposes the returned tensors. */
export function forward(
  model: Transformer,
  tokensBT: tf.Tensor2D,
  opts: ForwardOptions = {},
): ForwardOutput {
  checkTokens(model, tokensBT);
  return tf.tidy(() => {
    const { residBTD, postBTM } = blockForward(model, tokensBT, opts.hooks);
    const [b, t, d] = residBTD.shape, p = model.params;
    const xND = tf.reshape(finalLn(model, residBTD), [b * t, d]);
    const logitsNV = tf.add(tf.matMul(xND, p["unembed.W_U"] as tf.Tensor2D), p["unembed.b_U"]);
    const logits = tf.reshape(logitsNV, [b, t, model.config.dVocab]) as tf.Tensor3D;
    return opts.returnMlpPost ? { logits, mlpPost: postBTM } : { logits };
  });
}

/** The MLP post-activation [B, T, M] alone (what SAEs train on), without the unembedding. */
export function mlpActivations(model: Transformer, tokensBT: tf.Tensor2D): tf.Tensor3D {
  checkTokens(model, tokensBT);
  return tf.tidy(() => blockForward(model, tokensBT).postBTM);
}

/** ln_final(resid) at the last position [B, D]: what sampling unembeds. */
export function lastResidual(
  model: Transformer,
  tokensBT: tf.Tensor2D,
  hooks?: TransformerHooks,
): tf.Tensor2D {
  checkTokens(model, tokensBT);
  return tf.tidy(() => {
    const { residBTD } = blockForward(model, tokensBT, hooks);
    const [b, t, d] = residBTD.shape;
    return tf.reshape(finalLn(model, tf.slice(residBTD, [0, t - 1, 0], [b, 1, d])), [b, d]);
  });
}
