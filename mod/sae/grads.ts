/**
 * The SAE training math in one place: the loss parts and hand-derived gradients of
 * loss = mse + λ·l1 (normalised as in mod/sae/sae.ts), plus the unit-norm decoder constraint.
 *
 * Why by hand rather than tf.grad: (1) it is one swap point for a sparse-aware kernel (see the
 * comments in saeGrads: only the encoder forward needs a dense matmul, everything after it touches
 * f's few nonzeros); (2) the b_dec gradient through the encoder input is Σ_b gPre · W_encᵀ, which
 * by hand is a matrix-vector product (Σ_b gPre) W_encᵀ instead of autodiff's full [B,F]x[F,D]
 * matmul; (3) every matmul is written without transpose flags (operands transposed explicitly),
 * which keeps the wasm backend on its fast XNNPACK path. A test checks these gradients against
 * tf.grad of forward().
 *
 * Micro-batching: pass `normBatch` = the full batch size, and the results of the micro-batches
 * add up to the full batch's (all terms are sums over rows divided by normBatch).
 *
 * Shape key: B batch rows, D input width (d_in), F features (d_sae).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { activate, checkInput, type Sae } from "./sae.ts";
import { auxkTerm } from "./auxk.ts";

/** Gradients by parameter name: the four every SAE has, plus its architecture's (sae.extra). */
export interface SaeGrads {
  W_enc: tf.Tensor2D;
  b_enc: tf.Tensor1D;
  W_dec: tf.Tensor2D;
  b_dec: tf.Tensor1D;
  [extra: string]: tf.Tensor;
}

export interface SaeGradsResult {
  grads: SaeGrads;
  /** Loss parts, each a sum over this batch's rows divided by normBatch. */
  loss: tf.Scalar;
  mse: tf.Scalar;
  l1: tf.Scalar;
  /** Σ_b (number of nonzero features in row b) / normBatch. */
  l0: tf.Scalar;
  /** Per feature, the number of rows of this batch on which it fired (f > 0). */
  fireCountF: tf.Tensor1D;
  /** batchtopk: the smallest nonzero activation of this batch (Infinity if none). */
  minActive?: tf.Scalar;
}

export interface SaeGradsOptions {
  /** Divide sums by this many rows (the full batch when xBD is one micro-batch of it). */
  normBatch?: number;
  /** W_decᵀ [D, F], when the caller has it already (shared by a step's micro-batches). */
  wDecTDF?: tf.Tensor2D;
  /** 1 for the features the trainer counts as dead (the AuxK loss reads only those). */
  deadF?: tf.Tensor1D;
}

/** Signature of saeGrads, so a trainer can be handed a faster (e.g. sparse) implementation. */
export type SaeGradsFn = (sae: Sae, xBD: tf.Tensor2D, opts?: SaeGradsOptions) => SaeGradsResult;

export function saeGrads(sae: Sae, xBD: tf.Tensor2D, opts: SaeGradsOptions = {}): SaeGradsResult {
  return maskedReluGrads(sae, xBD, opts, (reluBF) => activate(sae.cfg, reluBF));
}

/**
 * Gradients of every SAE whose f is ReLU(pre) with some entries dropped by a selection that
 * carries no gradient: standard (keep all), topk (per row), batchtopk (over the batch; its module
 * passes `select`). Adds the AuxK loss (mod/sae/auxk.ts) when sae.cfg.auxkCoefficient > 0 and the
 * trainer passes opts.deadF.
 */
export function maskedReluGrads(
  sae: Sae,
  xBD: tf.Tensor2D,
  opts: SaeGradsOptions,
  select: (reluBF: tf.Tensor2D) => tf.Tensor2D,
): SaeGradsResult {
  checkInput(sae, xBD);
  const n = opts.normBatch ?? xBD.shape[0];
  const lambda = sae.cfg.l1Coefficient;
  const alpha = sae.cfg.auxkCoefficient ?? 0;
  return tf.tidy(() => {
    // Forward. The encoder matmul is the only one that is dense by nature.
    const xBarBD = tf.sub(xBD, sae.bDecD);
    const reluBF = tf.fused.matMul({
      a: xBarBD as tf.Tensor2D,
      b: sae.wEncDF,
      bias: sae.bEncF,
      activation: "relu",
    }) as tf.Tensor2D;
    const fBF = sae.cfg.architecture === "standard" ? reluBF : select(reluBF);
    const activeBF = tf.step(fBF); // 1 where f > 0
    // Sparse-aware kernels would start here: f has L0 nonzeros per row out of F.
    const xHatBD = tf.fused.matMul({ a: fBF, b: sae.wDecFD, bias: sae.bDecD });
    const errBD = tf.sub(xHatBD, xBD);
    const mse = tf.div(tf.sum(tf.square(errBD)), n) as tf.Scalar;
    const l1 = tf.div(tf.sum(fBF), n) as tf.Scalar; // f >= 0, so |f| = f
    let loss = tf.add(mse, tf.mul(l1, lambda)) as tf.Scalar;
    const fireCountF = colSum(activeBF);
    const l0 = tf.div(tf.sum(fireCountF), n) as tf.Scalar;

    // Backward. d loss / d x̂ = 2 (x̂ − x) / n.
    const gXHatBD = tf.mul(errBD, 2 / n);
    // f^T gX̂ computed as (gX̂^T f)^T: transposes [B,D] and [D,F] instead of the larger [B,F].
    let gWDecFD = tf.transpose(tf.matMul(tf.transpose(gXHatBD), fBF)) as tf.Tensor2D;
    const wDecTDF = opts.wDecTDF ?? tf.transpose(sae.wDecFD);
    // d/df = gX̂ W_decᵀ + λ/n; only entries where f > 0 pass (ReLU and TopK masks alike), so a
    // sparse kernel needs these dot products at f's support only.
    const gFBF = tf.matMul(gXHatBD, wDecTDF);
    let gPreBF = tf.mul(tf.add(gFBF, lambda / n), activeBF) as tf.Tensor2D;
    if (alpha > 0 && opts.deadF) {
      const aux = auxkTerm(reluBF, opts.deadF, errBD as tf.Tensor2D, {
        wDecFD: sae.wDecFD,
        wDecTDF,
        k: sae.cfg.auxK ?? Math.max(1, Math.floor(sae.cfg.dIn / 2)),
        coefficient: alpha,
        n,
      });
      loss = tf.add(loss, aux.loss) as tf.Scalar;
      gPreBF = tf.add(gPreBF, aux.gPreBF) as tf.Tensor2D;
      gWDecFD = tf.add(gWDecFD, aux.gWDecFD) as tf.Tensor2D;
    }
    const gWEncDF = tf.matMul(tf.transpose(xBarBD), gPreBF) as tf.Tensor2D; // sparse in gPre
    const gBEncF = colSum(gPreBF);
    // b_dec enters twice: + in x̂, and − in x̄ (through the encoder).
    const gBDecViaEncD1 = tf.matMul(sae.wEncDF, tf.reshape(gBEncF, [-1, 1]));
    const gBDecD = tf.sub(colSum(gXHatBD), tf.reshape(gBDecViaEncD1, [-1])) as tf.Tensor1D;
    return {
      grads: { W_enc: gWEncDF, b_enc: gBEncF, W_dec: gWDecFD, b_dec: gBDecD },
      loss,
      mse,
      l1,
      l0,
      fireCountF,
      ...(sae.cfg.architecture === "batchtopk" ? { minActive: minPositive(fBF) } : {}),
    };
  });
}

/** The smallest positive entry of f (Infinity when f is all zero). */
export function minPositive(fBF: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.min(tf.where(tf.greater(fBF, 0), fBF, tf.fill(fBF.shape, Infinity))));
}

/**
 * Column sums as a [1,B]x[B,N] matmul: on wasm a reduction over axis 0 is ~30x slower than this.
 */
export function colSum(xBN: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => {
    const ones1B = tf.ones([1, xBN.shape[0]]) as tf.Tensor2D;
    return tf.reshape(tf.matMul(ones1B, xBN), [-1]) as tf.Tensor1D;
  });
}

/**
 * Removes from each decoder-row gradient its component along the row: g_i − (g_i·w_i) w_i.
 * With unit-norm rows this is the projection onto the tangent space of the sphere.
 */
export function projectOutParallel(gFD: tf.Tensor2D, wFD: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const normSqF1 = tf.sum(tf.square(wFD), 1, true);
    const dotF1 = tf.sum(tf.mul(gFD, wFD), 1, true);
    return tf.sub(gFD, tf.mul(tf.div(dotF1, tf.maximum(normSqF1, 1e-30)), wFD)) as tf.Tensor2D;
  });
}

/** Scales each row to unit L2 norm (rows of norm 0 stay 0). */
export function normaliseRows(wFD: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const normF1 = tf.sqrt(tf.sum(tf.square(wFD), 1, true));
    return tf.div(wFD, tf.maximum(normF1, 1e-12)) as tf.Tensor2D;
  });
}

/** Adds `b` into the accumulator `a` (or starts it), disposing what is replaced. */
export function accumulateGrads(a: SaeGrads | null, b: SaeGrads): SaeGrads {
  if (a === null) return b;
  const out = {} as Record<string, tf.Tensor>;
  for (const key of Object.keys(b)) {
    out[key] = tf.add(a[key], b[key]);
    a[key].dispose();
    b[key].dispose();
  }
  return out as unknown as SaeGrads;
}

export function disposeGrads(g: SaeGrads): void {
  for (const t of Object.values(g)) t.dispose();
}
