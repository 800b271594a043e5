/**
 * Sparse autoencoders (Bricken et al. 2023, "Towards Monosemanticity"; TopK from Gao et al. 2024)
 * as plain tensors, in SAELens's parameter layout: the one SAE type every architecture shares.
 * BatchTopK, JumpReLU and Gated SAEs keep their maths in batchtopk.ts, jumprelu.ts and gated.ts
 * (their extra tensors live in `sae.extra`); files (save and load) are in saelens_files.ts.
 *
 *   standard (ReLU):  x̄ = x − b_dec;  f = ReLU(x̄ W_enc + b_enc);  x̂ = f W_dec + b_dec
 *   topk:             f = TopK_k(ReLU(x̄ W_enc + b_enc)), the k largest entries of each row kept
 *
 * Loss normalisation (the same in forward(), saeGrads() and every reported metric, and the same as
 * SAELens and Anthropic's paper):
 *   mse  = (1/B) Σ_b Σ_d (x̂ − x)²     squared error summed over d_in, mean over the batch
 *   l1   = (1/B) Σ_b Σ_f |f|           summed over features, mean over the batch
 *   loss = mse + λ·l1                  (λ = l1Coefficient; 0 for TopK, whose loss is the MSE)
 * The L1 term is not weighted by decoder norms because those norms are held at 1.
 *
 * Parameters: W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in]. Feature i's
 * direction is the decoder row W_dec[i, :], kept at unit norm by the trainer.
 *
 * Init (createSae), two recipes; b_enc = 0 and b_dec is what the caller passes (the trainer passes
 * the geometric median of a sample of inputs) in both:
 *   "independent" (Towards Monosemanticity 2023, the seed paper's): W_enc and W_dec drawn
 *     independently, each as PyTorch's kaiming_uniform_ (a = 0, so gain √2) draws it in the common
 *     replications, which call it on W_enc [d_in, d_sae] and W_dec [d_sae, d_in] in this layout.
 *     torch takes fan_in = size(1) of a 2-D tensor, so the bounds are
 *       W_enc [d_in, d_sae] ~ U(−√(6/d_sae), √(6/d_sae))   (fan_in = d_sae; variance 2/d_sae)
 *       W_dec [d_sae, d_in] ~ U(−√(6/d_in),  √(6/d_in))    (fan_in = d_in), rows then → unit norm
 *     (W_enc first, then W_dec, from one seeded Rng). The encoder does not start along the decoder,
 *     so many features start reading directions their decoder rows do not write: more die early,
 *     which is what resampling was invented for.
 *   "parallel" (Gao et al. 2024, Conerly et al. 2024): decoder rows are seeded random unit vectors
 *     (normalised Gaussians) and W_enc = W_decᵀ, so each feature starts reading along its own
 *     direction; this prevents most dead features.
 *
 * TopK SAEs are trained on the MSE alone, their dead features resampled like ReLU ones, or with
 * the AuxK loss of Gao et al. added (auxkCoefficient > 0; mod/sae/auxk.ts).
 *
 * TopK ties: the k-th largest value per row is used as a threshold, so exact ties at that value
 * would keep more than k; with continuous inputs they do not occur. Rows with fewer than k
 * positive pre-activations keep fewer than k (TopK after ReLU).
 *
 * Shape key: B batch rows, D input width (d_in), F features (d_sae).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { Rng, SAE_INITS, type SaeInit } from "../run/mod.ts";
import { batchTopKEncode } from "./batchtopk.ts";
import { gatedEncode } from "./gated.ts";
import { jumpReluEncode } from "./jumprelu.ts";

/**
 * Every architecture this project trains. "standard" and "topk" are defined here; the others each
 * have a module of their own (batchtopk.ts, jumprelu.ts, gated.ts) with their maths, and the
 * registry in architectures.ts says which gradients train each one.
 */
export const SAE_ARCHITECTURES = ["standard", "topk", "batchtopk", "jumprelu", "gated"] as const;
export type SaeArchitecture = typeof SAE_ARCHITECTURES[number];

export interface SaeConfig {
  dIn: number;
  dSae: number;
  architecture: SaeArchitecture;
  /** Number of features kept per row (topk), or per row on average over a batch (batchtopk). */
  k?: number;
  /** λ in loss = mse + λ·l1 (standard; gated, where l1 is of the gate's ReLU). */
  l1Coefficient: number;
  /** λ₀ in loss = mse + λ₀·l0 (jumprelu). */
  l0Coefficient?: number;
  /** ε, the rectangle kernel's width in JumpReLU's pseudo-derivative; default 0.001. */
  bandwidth?: number;
  /** JumpReLU's threshold at init; default 0.001. */
  initThreshold?: number;
  /** α of the AuxK loss (topk, batchtopk; Gao et al. 2024); 0 or absent = off. */
  auxkCoefficient?: number;
  /** k_aux, the dead features the AuxK loss may use per row; default d_in / 2. */
  auxK?: number;
  /** Rate of batchtopk's running average of the smallest kept activation; default 0.01. */
  thresholdRate?: number;
}

export interface Sae {
  cfg: SaeConfig;
  wEncDF: tf.Variable<tf.Rank.R2>;
  /** b_enc; for gated, the gate's bias (saved as SAELens's b_gate). */
  bEncF: tf.Variable<tf.Rank.R1>;
  wDecFD: tf.Variable<tf.Rank.R2>;
  bDecD: tf.Variable<tf.Rank.R1>;
  /**
   * The architecture's other tensors by training name (EXTRA_SHAPES): jumprelu's log_threshold,
   * gated's b_mag and r_mag (all trained), batchtopk's threshold (a running average, not trained).
   */
  extra: Record<string, tf.Variable<tf.Rank.R1>>;
}

/** Per architecture, its tensors beyond W_enc, b_enc, W_dec, b_dec: name → length in d_sae units. */
const EXTRA_SHAPES: Record<SaeArchitecture, Record<string, "F" | 1>> = {
  standard: {},
  topk: {},
  batchtopk: { threshold: 1 },
  jumprelu: { log_threshold: "F" },
  gated: { b_mag: "F", r_mag: "F" },
};

/** Tensors that the trainer updates itself rather than by gradient (kept out of Adam). */
const BUFFERS = new Set(["threshold"]);

/**
 * The shape of each stored tensor by its training name (SAELens's, except jumprelu's
 * log_threshold and gated's b_enc, renamed on save), in the order the weights file holds them.
 */
export function saeShapes(
  cfg: Pick<SaeConfig, "dIn" | "dSae"> & { architecture?: SaeArchitecture },
): Record<string, number[]> {
  const { dIn, dSae } = cfg;
  const out: Record<string, number[]> = {
    W_enc: [dIn, dSae],
    b_enc: [dSae],
    W_dec: [dSae, dIn],
    b_dec: [dIn],
  };
  for (const [name, n] of Object.entries(EXTRA_SHAPES[cfg.architecture ?? "standard"])) {
    out[name] = [n === "F" ? dSae : 1];
  }
  return out;
}

/** The trained parameters by name (also the names Adam keys its moments by). */
export function saeParams(sae: Sae): Record<string, tf.Variable> {
  const out: Record<string, tf.Variable> = {
    W_enc: sae.wEncDF,
    b_enc: sae.bEncF,
    W_dec: sae.wDecFD,
    b_dec: sae.bDecD,
  };
  for (const [name, v] of Object.entries(sae.extra)) if (!BUFFERS.has(name)) out[name] = v;
  return out;
}

/** Every tensor of the SAE by training name: the parameters and the buffers (checkpoints). */
export function saeTensors(sae: Sae): Record<string, tf.Variable> {
  return { ...saeParams(sae), ...sae.extra };
}

/** `v` itself when it is a positive integer; else an error that names `what` and quotes `v`. */
export function positiveInt(what: string, v: unknown): number {
  if (!Number.isInteger(v) || (v as number) < 1) {
    throw new Error(`${what} "${v}" must be a positive integer`);
  }
  return v as number;
}

export function validateSaeConfig(cfg: SaeConfig): SaeConfig {
  positiveInt("SAE d_in", cfg.dIn);
  positiveInt("SAE d_sae", cfg.dSae);
  if (!SAE_ARCHITECTURES.includes(cfg.architecture)) {
    throw new Error(
      `SAE architecture "${cfg.architecture}" must be one of ${SAE_ARCHITECTURES.join(", ")}`,
    );
  }
  if (cfg.architecture === "topk" || cfg.architecture === "batchtopk") {
    positiveInt("SAE k", cfg.k);
    if (cfg.k! > cfg.dSae) throw new Error(`SAE k ${cfg.k} exceeds d_sae ${cfg.dSae}`);
  }
  const nonNegative: [string, number | undefined][] = [
    ["l1_coefficient", cfg.l1Coefficient],
    ["l0_coefficient", cfg.l0Coefficient],
    ["auxk_coefficient", cfg.auxkCoefficient],
  ];
  for (const [what, v] of nonNegative) {
    if (v !== undefined && (!Number.isFinite(v) || v < 0)) {
      throw new Error(`SAE ${what} "${v}" must be a non-negative number`);
    }
  }
  const positive: [string, number | undefined][] = [
    ["jumprelu_bandwidth", cfg.bandwidth],
    ["jumprelu_init_threshold", cfg.initThreshold],
    ["topk_threshold_lr", cfg.thresholdRate],
  ];
  for (const [what, v] of positive) {
    if (v !== undefined && !(v > 0 && Number.isFinite(v))) {
      throw new Error(`SAE ${what} "${v}" must be a positive number`);
    }
  }
  if (cfg.auxK !== undefined) positiveInt("SAE auxk k", cfg.auxK);
  return cfg;
}

/**
 * A new SAE: decoder rows at unit norm, W_enc independent of W_dec ("independent", the default) or
 * W_decᵀ ("parallel"), b_enc = 0, b_dec as given. Seeded: the same seed and init give the same SAE.
 */
export function createSae(
  cfg: SaeConfig,
  opts: { seed: number; bDec?: Float32Array; init?: SaeInit },
): Sae {
  validateSaeConfig(cfg);
  const { dIn, dSae } = cfg;
  const init = opts.init ?? "independent";
  if (!SAE_INITS.includes(init)) {
    throw new Error(`SAE init "${init}" must be one of ${SAE_INITS.join(", ")}`);
  }
  const bDec = opts.bDec ?? new Float32Array(dIn);
  if (bDec.length !== dIn) {
    throw new Error(`b_dec length ${bDec.length} does not match d_in ${dIn}`);
  }
  const rng = new Rng(opts.seed);
  let wEnc: Float32Array, wDec: Float32Array;
  if (init === "independent") {
    const encBound = kaimingBound(dIn, dSae), decBound = kaimingBound(dSae, dIn);
    wEnc = Float32Array.from({ length: dIn * dSae }, () => (2 * rng.next() - 1) * encBound);
    wDec = unitRows(dSae, dIn, () => (2 * rng.next() - 1) * decBound);
  } else {
    wDec = unitRows(dSae, dIn, () => rng.normal());
    wEnc = transposeArray(wDec, dSae, dIn);
  }
  return fromArrays(cfg, {
    W_enc: wEnc,
    b_enc: new Float32Array(dSae),
    W_dec: wDec,
    b_dec: bDec,
    ...extraInit(cfg),
  });
}

/**
 * The architecture's other tensors at init: batchtopk's threshold 0 (ReLU until the first step
 * sets it), jumprelu's log_threshold = log(initThreshold), gated's b_mag = r_mag = 0 (so the
 * magnitude path starts equal to the gate's, as in Rajamanoharan et al.).
 */
export function extraInit(cfg: SaeConfig): Record<string, Float32Array> {
  const { dSae } = cfg;
  switch (cfg.architecture) {
    case "batchtopk":
      return { threshold: new Float32Array(1) };
    case "jumprelu":
      return { log_threshold: new Float32Array(dSae).fill(Math.log(cfg.initThreshold ?? 1e-3)) };
    case "gated":
      return { b_mag: new Float32Array(dSae), r_mag: new Float32Array(dSae) };
    default:
      return {};
  }
}

/**
 * Bound of torch.nn.init.kaiming_uniform_ (a = 0, gain √2) on a torch tensor of shape
 * [rows, cols]: fan_in = size(1) = cols, bound = gain·√(3/fan_in) = √(6/cols).
 */
export function kaimingBound(_rows: number, cols: number): number {
  return Math.sqrt(6 / cols);
}

/** A [rows, cols] row-major array of draw()s, each row then scaled to unit norm. */
function unitRows(rows: number, cols: number, draw: () => number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    let norm = 0;
    for (let j = 0; j < cols; j++) {
      const v = draw();
      out[i * cols + j] = v;
      norm += v * v;
    }
    norm = Math.sqrt(norm);
    for (let j = 0; j < cols; j++) out[i * cols + j] /= norm;
  }
  return out;
}

/** An SAE from flat row-major arrays keyed by SAELens names (copied into new variables). */
export function fromArrays(cfg: SaeConfig, w: Record<string, Float32Array>): Sae {
  validateSaeConfig(cfg);
  const shapes = saeShapes(cfg);
  for (const [name, shape] of Object.entries(shapes)) {
    const size = shape.reduce((a, b) => a * b, 1);
    if (!w[name] || w[name].length !== size) {
      throw new Error(
        `SAE parameter "${name}" has ${w[name]?.length ?? "no"} values, expected [${shape}]`,
      );
    }
  }
  const extraNames = Object.keys(EXTRA_SHAPES[cfg.architecture]);
  // tidy disposes the temporary tensors (a variable shares their data but not their handle).
  return tf.tidy(() => ({
    cfg: { ...cfg },
    wEncDF: tf.variable(tf.tensor2d(w.W_enc, shapes.W_enc as [number, number])),
    bEncF: tf.variable(tf.tensor1d(w.b_enc)),
    wDecFD: tf.variable(tf.tensor2d(w.W_dec, shapes.W_dec as [number, number])),
    bDecD: tf.variable(tf.tensor1d(w.b_dec)),
    extra: Object.fromEntries(
      extraNames.map((name) => [name, tf.variable(tf.tensor1d(w[name]), !BUFFERS.has(name))]),
    ),
  }));
}

/** Every tensor (parameters and buffers) as flat arrays keyed by training names. */
export async function toArrays(sae: Sae): Promise<Record<string, Float32Array>> {
  const out: Record<string, Float32Array> = {};
  for (const [name, v] of Object.entries(saeTensors(sae))) {
    out[name] = (await v.data()) as Float32Array;
  }
  return out;
}

export function disposeSae(sae: Sae): void {
  for (const v of Object.values(saeTensors(sae))) v.dispose();
}

export function checkInput(sae: Sae, xBD: tf.Tensor, what = "SAE input"): void {
  if (xBD.rank !== 2 || xBD.shape[1] !== sae.cfg.dIn) {
    throw new Error(
      `${what} width ${xBD.shape.at(-1)} (shape [${xBD.shape}]) does not match ` +
        `d_in ${sae.cfg.dIn}`,
    );
  }
}

/** The activation of standard and topk SAEs on pre-activations: ReLU, or ReLU then TopK. */
export function activate(cfg: SaeConfig, preBF: tf.Tensor2D): tf.Tensor2D {
  if (cfg.architecture === "standard") return tf.relu(preBF);
  return topkRelu(preBF, cfg.k!);
}

/**
 * TopK(ReLU(pre)) with the gradient of a fixed selection (dy where kept, else 0). customGrad keeps
 * tf.grad from differentiating through TopK and the comparisons, which have no gradients.
 */
function topkRelu(preBF: tf.Tensor2D, k: number): tf.Tensor2D {
  const fn = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [pre, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const reluBF = tf.relu(pre);
    const { values, indices } = tf.topk(reluBF, k, true); // sorted: values[:, k-1] is the k-th
    indices.dispose();
    const kthB1 = tf.slice(values, [0, k - 1], [-1, 1]);
    // Entries below the k-th largest are dropped; zeros stay zero whatever the mask says.
    const keepBF = tf.cast(tf.greaterEqual(reluBF, kthB1), "float32");
    const value = tf.mul(reluBF, keepBF);
    tf.dispose([reluBF, values, kthB1]);
    save([keepBF]);
    return { value, gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, saved[0]) };
  });
  return fn(preBF) as tf.Tensor2D;
}

/**
 * Feature activations f [B, F], the inference pass of each architecture (batchtopk: its learnt
 * threshold; jumprelu and gated: their modules' encoders).
 */
export function encode(sae: Sae, xBD: tf.Tensor2D): tf.Tensor2D {
  checkInput(sae, xBD);
  return tf.tidy(() => {
    const uBF = tf.matMul(tf.sub(xBD, sae.bDecD), sae.wEncDF) as tf.Tensor2D;
    if (sae.cfg.architecture === "gated") return gatedEncode(sae, uBF);
    const preBF = tf.add(uBF, sae.bEncF) as tf.Tensor2D;
    if (sae.cfg.architecture === "jumprelu") return jumpReluEncode(sae, preBF);
    if (sae.cfg.architecture === "batchtopk") return batchTopKEncode(sae, preBF);
    return activate(sae.cfg, preBF);
  });
}

/** Reconstruction x̂ [B, D] from feature activations. */
export function decode(sae: Sae, fBF: tf.Tensor2D): tf.Tensor2D {
  if (fBF.rank !== 2 || fBF.shape[1] !== sae.cfg.dSae) {
    throw new Error(`Feature width ${fBF.shape.at(-1)} does not match d_sae ${sae.cfg.dSae}`);
  }
  return tf.tidy(() => tf.add(tf.matMul(fBF, sae.wDecFD), sae.bDecD) as tf.Tensor2D);
}

export interface SaeForward {
  xHat: tf.Tensor2D;
  f: tf.Tensor2D;
  loss: tf.Scalar;
  mse: tf.Scalar;
  l1: tf.Scalar;
}

/**
 * decode(encode(x)) and the loss parts (normalised as in the module header), differentiable. The
 * loss is the standard and topk SAEs' training loss; the other architectures' training losses,
 * with their extra terms, are in their modules' gradients.
 */
export function forward(sae: Sae, xBD: tf.Tensor2D): SaeForward {
  const f = encode(sae, xBD);
  return tf.tidy(() => {
    const xHat = decode(sae, f);
    const b = xBD.shape[0];
    const mse = tf.div(tf.sum(tf.square(tf.sub(xHat, xBD))), b) as tf.Scalar;
    const l1 = tf.div(tf.sum(tf.abs(f)), b) as tf.Scalar;
    const loss = tf.add(mse, tf.mul(l1, sae.cfg.l1Coefficient)) as tf.Scalar;
    return { xHat, f: tf.keep(f), loss, mse, l1 };
  });
}

function transposeArray(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) out[j * rows + i] = a[i * cols + j];
  }
  return out;
}
