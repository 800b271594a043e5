/**
 * Tests for mod/features/loss_recovered.ts on the cpu backend: an SAE that reconstructs exactly recovers
 * all of the loss, one that outputs zeros none of it, a shrunken one some of it; the clean and
 * ablated losses match the model's own evaluation; tensor bookkeeping.
 *
 *   deno test --allow-read --allow-env tests/loss_recovered_test.ts
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { lossRecovered, saeReconstructionHook } from "../mod/features/mod.ts";
import { disposeSae, fromArrays, type Sae } from "../mod/sae/mod.ts";
import {
  createTransformer,
  evalLoss,
  makeOptimizer,
  replaceMlpPost,
  trainStep,
  type Transformer,
  transformerConfig,
} from "../mod/transformer/mod.ts";
import { Rng } from "../mod/run/mod.ts";
import { assert, assertAlmostEquals, assertEquals, assertRejects } from "./assert.ts";

await tf.setBackend("cpu");

const M = 32;
// d_model 4 cannot carry a 13-token lookup on its own: the MLP does the work, so ablating it hurts.
const CFG = transformerConfig({ dModel: 4, nHeads: 1, dMlp: M, nCtx: 6, dVocab: 13 });

/**
 * d_sae = 2 M, W_enc = [I, −I], W_dec = [s·I; −s·I], b = 0: f = (ReLU(x), ReLU(−x)) and
 * x̂ = s·(ReLU(x) − ReLU(−x)) = s·x, exactly x for s = 1 and 0 for s = 0.
 */
function scaledIdentitySae(s: number): Sae {
  const wEnc = new Float32Array(M * 2 * M), wDec = new Float32Array(2 * M * M);
  for (let i = 0; i < M; i++) {
    wEnc[i * 2 * M + i] = 1;
    wEnc[i * 2 * M + M + i] = -1;
    wDec[i * M + i] = s;
    wDec[(M + i) * M + i] = -s;
  }
  return fromArrays({ dIn: M, dSae: 2 * M, architecture: "standard", l1Coefficient: 0 }, {
    W_enc: wEnc,
    b_enc: new Float32Array(2 * M),
    W_dec: wDec,
    b_dec: new Float32Array(M),
  });
}

/** Sequences of the map t -> (t² + 3t + 1) mod 13 from random starts. */
function sequences(rng: Rng, b: number): tf.Tensor2D {
  const a: number[] = [];
  for (let i = 0; i < b; i++) {
    for (let j = 0, t = rng.int(13); j < 6; j++, t = (t * t + 3 * t + 1) % 13) a.push(t);
  }
  return tf.tensor2d(a, [b, 6], "int32");
}

const batches = () => {
  const rng = new Rng(5);
  return [3, 2].map((b) => sequences(rng, b));
};

/** A model trained on the map for 120 steps (about 2 s): clean loss ~0.003, ablated ~3.6. */
async function trainedModel(): Promise<Transformer> {
  const m = createTransformer(CFG, { seed: 1, initStd: 0.3 });
  const opt = makeOptimizer(m, { lr: 3e-2, weightDecay: 0 });
  const rng = new Rng(2);
  for (let step = 0; step < 120; step++) {
    const x = sequences(rng, 16);
    await trainStep(m, opt, x, { lr: 3e-2 });
    x.dispose();
  }
  opt.dispose();
  return m;
}
const TRAINED = await trainedModel();
const model = () => TRAINED;

Deno.test("lossRecovered() is 1 for an exact reconstruction and 0 for zeros", async () => {
  const m = model(), tokens = batches();
  const perfect = scaledIdentitySae(1), zero = scaledIdentitySae(0);
  const a = await lossRecovered(m, perfect, tokens);
  assertEquals(a.nTokens, 3 * 5 + 2 * 5);
  assert(
    a.zeroAblationLoss - a.cleanLoss > 1,
    `ablation gap ${a.zeroAblationLoss - a.cleanLoss}`,
  );
  assertAlmostEquals(a.saeLoss, a.cleanLoss, 1e-6);
  assertAlmostEquals(a.lossRecovered, 1, 1e-5);
  const z = await lossRecovered(m, zero, tokens);
  assertAlmostEquals(z.saeLoss, z.zeroAblationLoss, 1e-6);
  assertAlmostEquals(z.lossRecovered, 0, 1e-5);
  // The three losses against the model's own evaluation (token-weighted mean of the batches).
  const mean = async (hooks?: Parameters<typeof evalLoss>[2]) => {
    const l = await Promise.all(tokens.map((t) => evalLoss(m, t, hooks)));
    return (3 * l[0] + 2 * l[1]) / 5;
  };
  assertAlmostEquals(a.cleanLoss, await mean(), 1e-5);
  const zeros = { hooks: { mlpPost: replaceMlpPost((p) => tf.zerosLike(p)) } };
  assertAlmostEquals(a.zeroAblationLoss, await mean(zeros), 1e-5);
  const half = scaledIdentitySae(0.5);
  assertAlmostEquals(
    (await lossRecovered(m, half, tokens)).saeLoss,
    await mean({ hooks: saeReconstructionHook(half) }),
    1e-5,
  );
  tf.dispose(tokens);
  [perfect, zero, half].forEach(disposeSae);
});

Deno.test("lossRecovered() of a shrunken reconstruction lies between 0 and 1", async () => {
  const m = model(), tokens = batches();
  const scores = [];
  for (const s of [0.3, 0.7, 0.9]) {
    const sae = scaledIdentitySae(s);
    scores.push((await lossRecovered(m, sae, tokens)).lossRecovered);
    disposeSae(sae);
  }
  assert(scores.every((x) => x > 0 && x < 1), `scores ${scores}`);
  assert(scores[0] < scores[1] && scores[1] < scores[2], `scores ${scores} not increasing`);
  tf.dispose(tokens);
});

Deno.test("lossRecovered() leaves tf.memory().numTensors level and checks its inputs", async () => {
  const m = model(), tokens = batches(), sae = scaledIdentitySae(0.5);
  await lossRecovered(m, sae, tokens);
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) await lossRecovered(m, sae, tokens);
  assertEquals(tf.memory().numTensors, before);
  const narrow = fromArrays({ dIn: 4, dSae: 2, architecture: "standard", l1Coefficient: 0 }, {
    W_enc: new Float32Array(8),
    b_enc: new Float32Array(2),
    W_dec: new Float32Array(8),
    b_dec: new Float32Array(4),
  });
  await assertRejects(() => lossRecovered(m, narrow, tokens), /d_in 4 does not match .* 32/);
  await assertRejects(() => lossRecovered(m, sae, []), /at least one batch/);
  tf.dispose(tokens);
  [sae, narrow].forEach(disposeSae);
});
