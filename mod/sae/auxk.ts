/**
 * The AuxK loss of Gao et al. 2024 ("Scaling and evaluating sparse autoencoders", §A.2), the
 * alternative to resampling for TopK and BatchTopK SAEs: the dead features are asked to explain
 * what the live ones leave over, so they get gradient and come back to life.
 *
 *   e     = x − x̂                                   the residual, held fixed (no gradient)
 *   a     = TopK_kaux(ReLU(pre) ⊙ dead)             the k_aux largest dead pre-activations
 *   ê     = a W_dec                                 (no b_dec: ê models the residual)
 *   L_aux = α · (1/n) Σ_b ‖e − ê‖²                  added to the loss (α: auxkCoefficient)
 *
 * Gao et al. take α = 1/32 and k_aux = 512 for d_in 768 or more; this project's default k_aux is
 * d_in / 2 (SAELens's choice, which scales down to small models). "Dead" is the trainer's
 * window: no firing over the last deadWindow steps. With no dead feature, a = 0 and L_aux is the
 * constant α·mse, with no gradient.
 *
 * Gradients (r = ê − e = a W_dec + x̂ − x):
 *   ∂L_aux/∂W_dec = aᵀ (2α r / n);   ∂L_aux/∂pre = (2α r / n) W_decᵀ ⊙ 1[a > 0]
 * and ∂pre flows on to W_enc, b_enc and b_dec like the main loss's.
 *
 * Shape key: B batch rows, D input width, F features.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

export interface AuxkTerm {
  loss: tf.Scalar;
  gPreBF: tf.Tensor2D;
  gWDecFD: tf.Tensor2D;
}

/**
 * The AuxK loss and its gradients with respect to the pre-activations and W_dec. `reluBF` is
 * ReLU(pre), `deadF` 1 for dead features, `errBD` = x̂ − x (treated as a constant).
 */
export function auxkTerm(
  reluBF: tf.Tensor2D,
  deadF: tf.Tensor1D,
  errBD: tf.Tensor2D,
  opts: { wDecFD: tf.Tensor2D; wDecTDF: tf.Tensor2D; k: number; coefficient: number; n: number },
): AuxkTerm {
  return tf.tidy(() => {
    const { coefficient: alpha, n } = opts;
    const k = Math.min(opts.k, reluBF.shape[1]);
    const candBF = tf.mul(reluBF, deadF);
    const { values, indices } = tf.topk(candBF, k, true);
    indices.dispose();
    const kthB1 = tf.slice(values, [0, k - 1], [-1, 1]);
    // Zeros (live or silent features) stay out whatever the threshold.
    const keepBF = tf.mul(tf.cast(tf.greaterEqual(candBF, kthB1), "float32"), tf.step(candBF));
    const aBF = tf.mul(candBF, keepBF) as tf.Tensor2D;
    const rBD = tf.add(tf.matMul(aBF, opts.wDecFD), errBD);
    const loss = tf.mul(tf.div(tf.sum(tf.square(rBD)), n), alpha) as tf.Scalar;
    const gRBD = tf.mul(rBD, (2 * alpha) / n);
    const gWDecFD = tf.transpose(tf.matMul(tf.transpose(gRBD), aBF)) as tf.Tensor2D;
    const gPreBF = tf.mul(tf.matMul(gRBD, opts.wDecTDF), keepBF) as tf.Tensor2D;
    return { loss, gPreBF, gWDecFD };
  });
}
