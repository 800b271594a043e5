/**
 * Cross-entropy loss recovered by an SAE (Bricken et al. 2023): the model's next-token loss with
 * the MLP post-activation left alone (clean), replaced by the SAE's reconstruction
 * decode(encode(post)) (sae), and replaced by zeros (zero ablation), and
 *
 *   lossRecovered = (zero − sae) / (zero − clean)
 *
 * 1 for a perfect reconstruction, 0 for one no better than zeros. Losses are the mean CE over
 * every predicted position (T − 1 per sequence) of every batch, summed in float64 across batches.
 *
 * Shape key: B batch, T positions, M d_mlp (= SAE d_in).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { decode, encode, type Sae } from "../sae/mod.ts";
import {
  type FusedCeOptions,
  replaceMlpPost,
  tokenLosses,
  type Transformer,
  type TransformerHooks,
} from "../transformer/mod.ts";

export interface LossRecovered {
  cleanLoss: number;
  saeLoss: number;
  zeroAblationLoss: number;
  /** (zero − sae) / (zero − clean); NaN when zero ablation costs nothing. */
  lossRecovered: number;
  /** Predicted positions averaged over: Σ B × (T − 1). */
  nTokens: number;
}

/** The hook that splices the SAE's reconstruction in place of the MLP post-activation. */
export function saeReconstructionHook(sae: Sae): TransformerHooks {
  return {
    mlpPost: replaceMlpPost((postBTM) => {
      const [b, t, m] = postBTM.shape;
      const xHatNM = decode(sae, encode(sae, tf.reshape(postBTM, [b * t, m]) as tf.Tensor2D));
      return tf.reshape(xHatNM, [b, t, m]);
    }),
  };
}

const zeroHook: TransformerHooks = { mlpPost: replaceMlpPost((postBTM) => tf.zerosLike(postBTM)) };

/** Clean, SAE-spliced and zero-ablated mean next-token losses over the batches, and their ratio. */
export async function lossRecovered(
  model: Transformer,
  sae: Sae,
  batches: tf.Tensor2D[],
  opts: { fused?: FusedCeOptions } = {},
): Promise<LossRecovered> {
  if (sae.cfg.dIn !== model.config.dMlp) {
    throw new Error(
      `SAE d_in ${sae.cfg.dIn} does not match the model's d_mlp ${model.config.dMlp}`,
    );
  }
  if (batches.length === 0) throw new Error("lossRecovered needs at least one batch of tokens");
  const variants: (TransformerHooks | undefined)[] = [
    undefined,
    saeReconstructionHook(sae),
    zeroHook,
  ];
  const sums = [0, 0, 0];
  let nTokens = 0;
  for (const tokensBT of batches) {
    const totals = variants.map((hooks) =>
      tf.tidy(() => tf.sum(tokenLosses(model, tokensBT, { hooks, fused: opts.fused })))
    );
    const values = await Promise.all(totals.map((t) => t.data()));
    tf.dispose(totals);
    values.forEach((v, i) => (sums[i] += v[0]));
    nTokens += tokensBT.shape[0] * (tokensBT.shape[1] - 1);
  }
  const [cleanLoss, saeLoss, zeroAblationLoss] = sums.map((s) => s / nTokens);
  const gap = zeroAblationLoss - cleanLoss;
  return {
    cleanLoss,
    saeLoss,
    zeroAblationLoss,
    lossRecovered: gap !== 0 ? (zeroAblationLoss - saeLoss) / gap : NaN,
    nTokens,
  };
}
