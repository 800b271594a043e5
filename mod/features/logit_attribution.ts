/**
 * Logit attribution of SAE features (the seed paper's "Positive/Negative Logits" tables; the
 * method of Anthropic's "Towards Monosemanticity"): the vocabulary tokens whose logits feature i's
 * decoder direction raises and lowers most, through the MLP output weights and the unembedding,
 * with the final LayerNorm approximated as a fixed linear map:
 *
 *   v = W_dec[i] W_out                      what one unit of feature i adds to the residual [D]
 *   u = (v − mean(v)) ⊙ ln_final.w / σ      LN's centring and gain; σ = lnScale, the typical
 *                                           per-token std of the residual at ln_final
 *   logits = u W_U                          [V]; b_U is left out: it does not depend on i
 *
 * The top and bottom N tokens come from tf.topk per chunk of features, so at most chunk × V
 * logits exist at once (never F × V). residualScale() measures σ on held-out tokens.
 *
 * Shape key: C chunk of features, M d_mlp (= SAE d_in), D d_model, V vocabulary, N top tokens,
 * B batch, T positions.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Sae } from "../sae/mod.ts";
import { blockForward, checkTokens, LN_EPS, type Transformer } from "../transformer/mod.ts";

export type LogitSign = "positive" | "negative";

export interface LogitAttributionOptions {
  /** Tokens per sign and feature. */
  topN: number;
  /** Features to attribute (default all), in the order the output lists them. */
  features?: number[];
  /** Features per chunk (default: about 2^24 logits per chunk). */
  chunk?: number;
  /** σ, the residual's typical std at ln_final (residualScale()); default 1. */
  lnScale?: number;
}

/**
 * One row per (feature, sign, rank): for each feature in order, its positive tokens (rank 0 =
 * largest weight) then its negative tokens (rank 0 = most negative weight).
 */
export interface LogitAttribution {
  feature: Int32Array;
  sign: LogitSign[];
  rank: Int32Array;
  token: Int32Array;
  weight: Float32Array;
}

/** Top and bottom `topN` vocabulary tokens of each feature's direction, through W_out and W_U. */
export async function logitAttribution(
  model: Transformer,
  sae: Sae,
  opts: LogitAttributionOptions,
): Promise<LogitAttribution> {
  const { dMlp, dVocab } = model.config, F = sae.cfg.dSae, N = opts.topN;
  if (sae.cfg.dIn !== dMlp) {
    throw new Error(`SAE d_in ${sae.cfg.dIn} does not match the model's d_mlp ${dMlp}`);
  }
  if (!Number.isInteger(N) || N < 1 || N > dVocab) {
    throw new Error(`Logit attribution topN "${N}" must be an integer in [1, ${dVocab}]`);
  }
  const lnScale = opts.lnScale ?? 1;
  if (!(lnScale > 0) || !Number.isFinite(lnScale)) {
    throw new Error(`Logit attribution lnScale "${lnScale}" must be a positive number`);
  }
  const chunk = opts.chunk ?? Math.max(1, Math.floor(2 ** 24 / dVocab));
  if (!Number.isInteger(chunk) || chunk < 1) {
    throw new Error(`Logit attribution chunk "${chunk}" must be a positive integer`);
  }
  const features = opts.features ?? Array.from({ length: F }, (_, i) => i);
  for (const f of features) {
    if (!Number.isInteger(f) || f < 0 || f >= F) {
      throw new Error(`Feature ${f} is outside [0, ${F})`);
    }
  }

  const S = features.length, rows = 2 * N;
  const out: LogitAttribution = {
    feature: new Int32Array(S * rows),
    sign: new Array(S * rows),
    rank: new Int32Array(S * rows),
    token: new Int32Array(S * rows),
    weight: new Float32Array(S * rows),
  };
  const p = model.params;
  for (let c0 = 0; c0 < S; c0 += chunk) {
    const ids = features.slice(c0, c0 + chunk), C = ids.length;
    const parts = tf.tidy(() => {
      const idsC = tf.tensor1d(ids, "int32");
      const vCD = tf.matMul(tf.gather(sae.wDecFD, idsC), p["blocks.0.mlp.W_out"] as tf.Tensor2D);
      const uCD = tf.div(tf.mul(tf.sub(vCD, tf.mean(vCD, 1, true)), p["ln_final.w"]), lnScale);
      const logitsCV = tf.matMul(uCD as tf.Tensor2D, p["unembed.W_U"] as tf.Tensor2D);
      const top = tf.topk(logitsCV, N, true);
      const bottom = tf.topk(tf.neg(logitsCV), N, true);
      return [top.values, top.indices, tf.neg(bottom.values), bottom.indices];
    });
    const [topV, topI, botV, botI] = await Promise.all(parts.map((t) => t.data()));
    tf.dispose(parts);
    for (let c = 0; c < C; c++) {
      for (let r = 0; r < N; r++) {
        for (
          const [k, sign, v, i] of [[0, "positive", topV, topI], [
            N,
            "negative",
            botV,
            botI,
          ]] as const
        ) {
          const o = (c0 + c) * rows + k + r;
          out.feature[o] = ids[c];
          out.sign[o] = sign;
          out.rank[o] = r;
          out.token[o] = i[c * N + r];
          out.weight[o] = v[c * N + r];
        }
      }
    }
  }
  return out;
}

/**
 * σ for logitAttribution(): the mean over tokens of the residual stream's standard deviation
 * where it enters ln_final, sqrt(var + eps) as LayerNorm divides by it (biased variance over
 * d_model), over every position of every batch given.
 */
export async function residualScale(
  model: Transformer,
  tokens: tf.Tensor2D | tf.Tensor2D[],
): Promise<number> {
  let sum = 0, count = 0;
  for (const tokensBT of Array.isArray(tokens) ? tokens : [tokens]) {
    checkTokens(model, tokensBT);
    const s = tf.tidy(() => {
      const { variance } = tf.moments(blockForward(model, tokensBT).residBTD, -1);
      return tf.sum(tf.sqrt(tf.add(variance, LN_EPS)));
    });
    sum += (await s.data())[0];
    s.dispose();
    count += tokensBT.shape[0] * tokensBT.shape[1];
  }
  if (count === 0) throw new Error("residualScale needs at least one token");
  return sum / count;
}
