/**
 * Gated SAEs (Rajamanoharan et al. 2024, "Improving Dictionary Learning with Gated Sparse
 * Autoencoders"): one path decides which features fire, another how strongly, so the L1 penalty
 * (on the gate) no longer shrinks the magnitudes.
 *
 *   u      = x̄ W_enc                                (shared by both paths: weight tying)
 *   π_gate = u + b_gate                             (b_gate is sae.bEncF, saved as b_gate)
 *   π_mag  = u ⊙ exp(r_mag) + b_mag                 (= x̄ (W_enc ⊙ exp(r_mag)) + b_mag)
 *   f      = H(π_gate) ⊙ ReLU(π_mag);   x̂ = f W_dec + b_dec
 *   loss   = mse + λ · l1 + aux
 *     l1  = (1/n) Σ_b Σ_i ReLU(π_gate)                 (decoder rows are held at unit norm, so
 *                                                      the paper's ‖W_dec,i‖ factor is 1)
 *     aux = (1/n) Σ_b ‖x − (ReLU(π_gate) sg(W_dec) + sg(b_dec))‖²   (sg: no gradient)
 * H(π_gate) passes no gradient (the gate learns through the L1 and aux terms only). With
 * g_f = ∂mse/∂f = (2/n)(x̂ − x) W_decᵀ and g_a = λ/n + (2/n)(ReLU(π_gate) W_dec + b_dec − x) W_decᵀ:
 *   ∂/∂π_mag = g_f ⊙ H(π_gate) ⊙ H(π_mag);     ∂/∂π_gate = g_a ⊙ H(π_gate)
 *   ∂/∂r_mag = Σ_b ∂/∂π_mag ⊙ u ⊙ exp(r_mag);  ∂/∂b_mag = Σ_b ∂/∂π_mag;  ∂/∂b_gate = Σ_b ∂/∂π_gate
 *   ∂/∂u = ∂/∂π_gate + ∂/∂π_mag ⊙ exp(r_mag), then W_enc and b_dec (via x̄) as for ReLU SAEs;
 *   W_dec gets only the mse's fᵀ(2/n)(x̂ − x).
 * The reported l1 is the gate's (the penalised quantity); l0 counts f > 0.
 *
 * Init: b_gate = b_mag = r_mag = 0, so both paths start as one ReLU SAE (SAELens's init).
 * Saved (SAELens layout): W_enc, b_gate, b_mag, r_mag, W_dec, b_dec; architecture "gated".
 *
 * Shape key: B batch rows, D input width, F features.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { checkInput, type Sae } from "./sae.ts";
import { colSum, type SaeGradsOptions, type SaeGradsResult } from "./grads.ts";

/** f = H(π_gate) ⊙ ReLU(π_mag) from u = x̄ W_enc. */
export function gatedEncode(sae: Sae, uBF: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const gateBF = tf.step(tf.add(uBF, sae.bEncF));
    const magBF = tf.relu(tf.add(tf.mul(uBF, tf.exp(sae.extra.r_mag)), sae.extra.b_mag));
    return tf.mul(gateBF, magBF) as tf.Tensor2D;
  });
}

export function gatedGrads(sae: Sae, xBD: tf.Tensor2D, opts: SaeGradsOptions = {}): SaeGradsResult {
  checkInput(sae, xBD);
  const n = opts.normBatch ?? xBD.shape[0];
  const lambda = sae.cfg.l1Coefficient;
  return tf.tidy(() => {
    const xBarBD = tf.sub(xBD, sae.bDecD);
    const uBF = tf.matMul(xBarBD, sae.wEncDF) as tf.Tensor2D;
    const piGateBF = tf.add(uBF, sae.bEncF);
    const gateOnBF = tf.step(piGateBF); // 1 where π_gate > 0
    const scaleF = tf.exp(sae.extra.r_mag);
    const piMagBF = tf.add(tf.mul(uBF, scaleF), sae.extra.b_mag);
    const fBF = tf.mul(gateOnBF, tf.relu(piMagBF)) as tf.Tensor2D;
    const gateReluBF = tf.relu(piGateBF) as tf.Tensor2D;

    const errBD = tf.sub(tf.add(tf.matMul(fBF, sae.wDecFD), sae.bDecD), xBD);
    const auxErrBD = tf.sub(tf.add(tf.matMul(gateReluBF, sae.wDecFD), sae.bDecD), xBD);
    const mse = tf.div(tf.sum(tf.square(errBD)), n) as tf.Scalar;
    const l1 = tf.div(tf.sum(gateReluBF), n) as tf.Scalar;
    const aux = tf.div(tf.sum(tf.square(auxErrBD)), n) as tf.Scalar;
    const loss = tf.addN([mse, tf.mul(l1, lambda), aux]) as tf.Scalar;
    const activeBF = tf.step(fBF);
    const fireCountF = colSum(activeBF);
    const l0 = tf.div(tf.sum(fireCountF), n) as tf.Scalar;

    const gXHatBD = tf.mul(errBD, 2 / n);
    const gWDecFD = tf.transpose(tf.matMul(tf.transpose(gXHatBD), fBF)) as tf.Tensor2D;
    const wDecTDF = opts.wDecTDF ?? tf.transpose(sae.wDecFD);
    const gMagBF = tf.mul(tf.matMul(gXHatBD, wDecTDF), activeBF); // H(π_gate)·H(π_mag) = f > 0
    const gAuxBF = tf.matMul(tf.mul(auxErrBD, 2 / n), wDecTDF);
    const gGateBF = tf.mul(tf.add(gAuxBF, lambda / n), gateOnBF);
    const gBMagF = colSum(gMagBF);
    const gRMagF = tf.mul(colSum(tf.mul(gMagBF, uBF)), scaleF) as tf.Tensor1D;
    const gBGateF = colSum(gGateBF);
    const gUBF = tf.add(gGateBF, tf.mul(gMagBF, scaleF));
    const gWEncDF = tf.matMul(tf.transpose(xBarBD), gUBF) as tf.Tensor2D;
    const gUSumF1 = tf.reshape(colSum(gUBF), [-1, 1]);
    const gBDecD = tf.sub(
      colSum(gXHatBD),
      tf.reshape(tf.matMul(sae.wEncDF, gUSumF1), [-1]),
    ) as tf.Tensor1D;
    return {
      grads: {
        W_enc: gWEncDF,
        b_enc: gBGateF,
        W_dec: gWDecFD,
        b_dec: gBDecD,
        b_mag: gBMagF,
        r_mag: gRMagF,
      },
      loss,
      mse,
      l1,
      l0,
      fireCountF,
    };
  });
}
