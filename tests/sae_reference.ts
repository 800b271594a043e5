/**
 * Plain float64 reference code for the SAE architectures, written from the papers' formulas
 * (not from mod/sae): the inference pass from tensors under their saved SAELens names, each
 * architecture's training loss, and central finite differences of a loss. Tests compare the
 * tfjs code with these.
 *
 * Arrays are row-major: x [B, D], W_enc [D, F], W_dec [F, D].
 *
 * @module
 */

export type Arrays = Record<string, Float64Array>;

/** x̄ W_enc ([B, F]) with x̄ = x − b_dec. */
function encMul(x: Float64Array, b: number, w: Arrays): Float64Array {
  const d = w.b_dec.length, f = w.W_enc.length / d;
  const out = new Float64Array(b * f);
  for (let r = 0; r < b; r++) {
    for (let j = 0; j < d; j++) {
      const xb = x[r * d + j] - w.b_dec[j];
      for (let i = 0; i < f; i++) out[r * f + i] += xb * w.W_enc[j * f + i];
    }
  }
  return out;
}

/** f W_dec + (bias ? b_dec : 0), [B, D]. */
export function refDecode(fBF: Float64Array, b: number, w: Arrays, bias = true): Float64Array {
  const d = w.b_dec.length, f = w.W_dec.length / d;
  const out = new Float64Array(b * d);
  for (let r = 0; r < b; r++) {
    for (let j = 0; j < d; j++) out[r * d + j] = bias ? w.b_dec[j] : 0;
    for (let i = 0; i < f; i++) {
      const a = fBF[r * f + i];
      if (a !== 0) { for (let j = 0; j < d; j++) out[r * d + j] += a * w.W_dec[i * d + j]; }
    }
  }
  return out;
}

/** Keeps the `keep` largest entries of v (others 0); v's entries are ≥ 0. */
function keepLargest(v: Float64Array, keep: number): Float64Array {
  const cut = [...v].sort((a, b) => b - a)[Math.min(keep, v.length) - 1];
  return v.map((a) => (a >= cut && a > 0 ? a : 0));
}

/**
 * Inference features from tensors under their saved SAELens names (threshold, b_gate, b_mag,
 * r_mag as saved), for every architecture.
 */
export function refEncodeSaved(
  arch: string,
  saved: Arrays,
  x: Float64Array,
  b: number,
  k?: number,
): Float64Array {
  const u = encMul(x, b, saved);
  const f = u.length / b;
  const out = new Float64Array(u.length);
  for (let r = 0; r < b; r++) {
    for (let i = 0; i < f; i++) {
      const at = r * f + i;
      if (arch === "gated") {
        const gate = u[at] + saved.b_gate[i] > 0;
        const mag = u[at] * Math.exp(saved.r_mag[i]) + saved.b_mag[i];
        out[at] = gate ? Math.max(0, mag) : 0;
        continue;
      }
      const pre = u[at] + saved.b_enc[i];
      if (arch === "jumprelu" || arch === "batchtopk") {
        out[at] = pre > saved.threshold[i] ? Math.max(0, pre) : 0;
      } else out[at] = Math.max(0, pre);
    }
    if (arch === "topk") out.set(keepLargest(out.subarray(r * f, (r + 1) * f), k!), r * f);
  }
  return out;
}

/** Clamp of v/ε + ½ to [0, 1]: the step smoothed by the rectangle kernel of width ε. */
function smoothStep(v: number, eps: number): number {
  return Math.min(1, Math.max(0, v / eps + 0.5));
}

export interface RefLossCfg {
  arch: "standard" | "topk" | "batchtopk" | "jumprelu" | "gated";
  k?: number;
  l1: number;
  l0?: number;
  eps?: number;
  /** AuxK: coefficient, k_aux and dead mask. */
  auxk?: { alpha: number; k: number; dead: Uint8Array };
}

/**
 * The training loss, normalised by the batch. What the hand-written gradients treat as constant is
 * taken from `base` (the parameters at which they are evaluated): AuxK's residual, gated's
 * stop-gradient W_dec and b_dec in the aux term, and for jumprelu the point at which the
 * pseudo-derivative is the derivative of the kernel-smoothed step (the surrogate below).
 */
export function refLoss(
  cfg: RefLossCfg,
  w: Arrays,
  x: Float64Array,
  b: number,
  base: Arrays,
): number {
  const { feats, penalty, aux } = trainFeatures(cfg, w, x, b, base);
  const d = w.b_dec.length;
  const xHat = refDecode(feats, b, w);
  let mse = 0;
  for (let j = 0; j < b * d; j++) mse += (xHat[j] - x[j]) ** 2;
  const auxk = cfg.auxk ? cfg.auxk.alpha * auxkLoss(cfg, w, x, b, base) : 0;
  return (mse + penalty + aux + auxk) / b;
}

/** The training pass's f, the sparsity penalty and gated's aux term (sums over the batch). */
function trainFeatures(cfg: RefLossCfg, w: Arrays, x: Float64Array, b: number, base: Arrays) {
  const d = w.b_dec.length, f = w.W_enc.length / d;
  const u = encMul(x, b, w);
  const feats = new Float64Array(b * f);
  let penalty = 0, aux = 0;
  if (cfg.arch === "gated") {
    const gateRelu = new Float64Array(b * f);
    for (let at = 0; at < b * f; at++) {
      const i = at % f, gate = u[at] + w.b_enc[i];
      gateRelu[at] = Math.max(0, gate);
      feats[at] = gate > 0 ? Math.max(0, u[at] * Math.exp(w.r_mag[i]) + w.b_mag[i]) : 0;
      penalty += cfg.l1 * gateRelu[at];
    }
    const viaGate = refDecode(gateRelu, b, { ...w, W_dec: base.W_dec, b_dec: base.b_dec });
    for (let j = 0; j < b * d; j++) aux += (viaGate[j] - x[j]) ** 2;
  } else if (cfg.arch === "jumprelu") {
    // Surrogate: equal to the JumpReLU loss at `base`, with the pseudo-derivative as its gradient.
    const eps = cfg.eps!, uBase = encMul(x, b, base);
    for (let at = 0; at < b * f; at++) {
      const i = at % f, pre = u[at] + w.b_enc[i];
      const theta = Math.exp(w.log_threshold[i]), theta0 = Math.exp(base.log_threshold[i]);
      const z0 = uBase[at] + base.b_enc[i];
      const ste = smoothStep(z0 - theta, eps) - smoothStep(z0 - theta0, eps);
      feats[at] = (pre > theta0 ? pre : 0) + theta0 * ste;
      penalty += cfg.l0! * ((z0 > theta0 ? 1 : 0) + ste);
    }
  } else {
    for (let at = 0; at < b * f; at++) feats[at] = Math.max(0, u[at] + w.b_enc[at % f]);
    if (cfg.arch === "topk") {
      for (let r = 0; r < b; r++) {
        feats.set(keepLargest(feats.subarray(r * f, (r + 1) * f), cfg.k!), r * f);
      }
    } else if (cfg.arch === "batchtopk") feats.set(keepLargest(feats, cfg.k! * b));
    for (const a of feats) penalty += cfg.l1 * a;
  }
  return { feats, penalty, aux };
}

/** Σ_b ‖e − a W_dec‖², e the residual at `base`, a the top k_aux dead ReLU pre-activations. */
function auxkLoss(
  cfg: RefLossCfg,
  w: Arrays,
  x: Float64Array,
  b: number,
  base: Arrays,
): number {
  const auxk = cfg.auxk!;
  const d = w.b_dec.length, f = w.W_enc.length / d;
  const u = encMul(x, b, w);
  const a = new Float64Array(b * f);
  for (let at = 0; at < b * f; at++) {
    a[at] = auxk.dead[at % f] ? Math.max(0, u[at] + w.b_enc[at % f]) : 0;
  }
  for (let r = 0; r < b; r++) a.set(keepLargest(a.subarray(r * f, (r + 1) * f), auxk.k), r * f);
  const eHat = refDecode(a, b, w, false);
  const xHat0 = refDecode(trainFeatures(cfg, base, x, b, base).feats, b, base);
  let s = 0;
  for (let j = 0; j < b * d; j++) s += (x[j] - xHat0[j] - eHat[j]) ** 2;
  return s;
}

/**
 * Central differences of `loss` with respect to every entry of `w[name]`, step h, in float64.
 */
export function centralDiff(
  loss: (w: Arrays) => number,
  w: Arrays,
  name: string,
  h = 1e-6,
): Float64Array {
  const out = new Float64Array(w[name].length);
  for (let i = 0; i < out.length; i++) {
    const keep = w[name][i];
    w[name][i] = keep + h;
    const up = loss(w);
    w[name][i] = keep - h;
    const down = loss(w);
    w[name][i] = keep;
    out[i] = (up - down) / (2 * h);
  }
  return out;
}
