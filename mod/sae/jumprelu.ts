/**
 * JumpReLU SAEs (Rajamanoharan et al. 2024, "Jumping Ahead"): a per-feature threshold θ below
 * which a feature is silent, trained with straight-through estimators and an L0 penalty.
 *
 *   pre = x̄ W_enc + b_enc;   θ = exp(log_threshold)  (kept positive)
 *   f   = pre ⊙ H(pre − θ)                             (H: the Heaviside step)
 *   x̂   = f W_dec + b_dec
 *   loss = mse + λ₀ · l0,   l0 = (1/n) Σ_b Σ_i H(pre_bi − θ_i)     (λ₀: l0Coefficient)
 *
 * H has no useful derivative in θ, so θ's gradient is the paper's pseudo-derivative with the
 * rectangle kernel K(u) = 1[|u| < ½] of bandwidth ε:
 *   ∂f_bi/∂θ_i      := −(θ_i/ε) K((pre_bi − θ_i)/ε)
 *   ∂H(pre − θ)/∂θ_i := −(1/ε) K((pre_bi − θ_i)/ε)
 * (the derivatives of the kernel-smoothed step; pre itself gets the plain ∂f/∂pre = H(pre − θ)
 * and nothing from the L0 term). With g_f = ∂mse/∂f:
 *   ∂loss/∂θ_i = −(1/ε) Σ_b K((pre_bi − θ_i)/ε) (θ_i g_f,bi + λ₀/n)
 *   ∂loss/∂log_threshold_i = θ_i ∂loss/∂θ_i
 * The rest is as for the ReLU SAE. The paper's pseudo-code trains log θ, as does SAELens, which
 * saves exp(log_threshold) under the name `threshold`; so does saveSae. Defaults ε = 0.001,
 * θ₀ = 0.001 (SAELens's jumprelu_bandwidth and jumprelu_init_threshold): both are in units of the
 * pre-activations, so inputs of a very different scale want them scaled too.
 *
 * Shape key: B batch rows, D input width, F features.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { checkInput, type Sae } from "./sae.ts";
import { colSum, type SaeGradsOptions, type SaeGradsResult } from "./grads.ts";

/** θ = exp(log_threshold), [F]. */
export function jumpReluThreshold(sae: Sae): tf.Tensor1D {
  return tf.exp(sae.extra.log_threshold);
}

/** f = pre ⊙ H(pre − θ) (a select, so that entries off are +0, not −0 from pre < 0 times 0). */
export function jumpReluEncode(sae: Sae, preBF: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const onBF = tf.greater(preBF, jumpReluThreshold(sae));
    return tf.where(onBF, preBF, tf.zerosLike(preBF)) as tf.Tensor2D;
  });
}

export function jumpReluGrads(
  sae: Sae,
  xBD: tf.Tensor2D,
  opts: SaeGradsOptions = {},
): SaeGradsResult {
  checkInput(sae, xBD);
  const n = opts.normBatch ?? xBD.shape[0];
  const lambda0 = sae.cfg.l0Coefficient ?? 0;
  const eps = sae.cfg.bandwidth ?? 1e-3;
  return tf.tidy(() => {
    const xBarBD = tf.sub(xBD, sae.bDecD);
    const preBF = tf.add(tf.matMul(xBarBD, sae.wEncDF), sae.bEncF) as tf.Tensor2D;
    const thetaF = jumpReluThreshold(sae);
    const onBF = tf.cast(tf.greater(preBF, thetaF), "float32");
    const fBF = tf.mul(preBF, onBF) as tf.Tensor2D;
    const xHatBD = tf.add(tf.matMul(fBF, sae.wDecFD), sae.bDecD);
    const errBD = tf.sub(xHatBD, xBD);
    const mse = tf.div(tf.sum(tf.square(errBD)), n) as tf.Scalar;
    const l1 = tf.div(tf.sum(tf.abs(fBF)), n) as tf.Scalar;
    const fireCountF = colSum(onBF);
    const l0 = tf.div(tf.sum(fireCountF), n) as tf.Scalar;
    const loss = tf.add(mse, tf.mul(l0, lambda0)) as tf.Scalar;

    const gXHatBD = tf.mul(errBD, 2 / n);
    const gWDecFD = tf.transpose(tf.matMul(tf.transpose(gXHatBD), fBF)) as tf.Tensor2D;
    const wDecTDF = opts.wDecTDF ?? tf.transpose(sae.wDecFD);
    const gFBF = tf.matMul(gXHatBD, wDecTDF);
    const gPreBF = tf.mul(gFBF, onBF);
    // The rectangle kernel: 1 where pre lies within ε/2 of θ.
    const inWindowBF = tf.cast(tf.less(tf.abs(tf.sub(preBF, thetaF)), eps / 2), "float32");
    const gThetaF = tf.mul(
      colSum(tf.mul(inWindowBF, tf.add(tf.mul(gFBF, thetaF), lambda0 / n))),
      -1 / eps,
    );
    const gLogThetaF = tf.mul(gThetaF, thetaF) as tf.Tensor1D;
    const gWEncDF = tf.matMul(tf.transpose(xBarBD), gPreBF) as tf.Tensor2D;
    const gBEncF = colSum(gPreBF);
    const gBDecViaEncD1 = tf.matMul(sae.wEncDF, tf.reshape(gBEncF, [-1, 1]));
    const gBDecD = tf.sub(colSum(gXHatBD), tf.reshape(gBDecViaEncD1, [-1])) as tf.Tensor1D;
    return {
      grads: {
        W_enc: gWEncDF,
        b_enc: gBEncF,
        W_dec: gWDecFD,
        b_dec: gBDecD,
        log_threshold: gLogThetaF,
      },
      loss,
      mse,
      l1,
      l0,
      fireCountF,
    };
  });
}
