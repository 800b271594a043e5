/**
 * Tests for mod/activations/model_stream.ts and collect.ts: the stream computed from the model
 * gives exactly the rows of the cached shards (shardRows, what the activations stage writes), in
 * the same order across shard boundaries; skip() resumes mid-shard at the same row; a shard's
 * rows are a permutation of its sequences' tokens; the plan rejects nothing silently.
 *
 *   deno test --allow-read --allow-env tests/model_stream_test.ts
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  collectActivations,
  ModelActivationStream,
  shardPlan,
  shardRows,
  shardSequences,
} from "../mod/activations/mod.ts";
import { createTransformer, transformerConfig } from "../mod/transformer/mod.ts";
import type { TokenSplit } from "../mod/tokenize/mod.ts";
import { assert, assertEquals } from "./assert.ts";

await tf.setBackend("cpu");

const T = 8, VOCAB = 50, N_SEQ = 13;
const model = createTransformer(
  transformerConfig({ dModel: 16, nHeads: 2, dMlp: 24, nCtx: T, dVocab: VOCAB }),
  { seed: 5 },
);
const split: TokenSplit = {
  tokens: Uint16Array.from({ length: N_SEQ * T }, (_, i) => (i * 7 + 3) % VOCAB),
  seq: Int32Array.from({ length: N_SEQ }, (_, i) => 100 + i),
  source: [],
  contextLength: T,
};
// 5 sequences per shard, 3 shards: 13 sequences, the last shard partial.
const plan = shardPlan(
  { trainTokens: 13 * T, shardTokens: 5 * T, contextLength: T, seed: 9 },
  N_SEQ,
);

async function allShardRows(): Promise<Float32Array> {
  const parts: Float32Array[] = [];
  for (let k = 0; k < plan.nShards; k++) {
    parts.push((await shardRows(model, split, plan, k, 4)).acts);
  }
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) out.set(p, (o += p.length) - p.length);
  return out;
}

Deno.test("shard plan: 3 shards of 5, 5 and 3 sequences covering each sequence once", () => {
  assertEquals(plan.nShards, 3);
  const seen = [0, 1, 2].flatMap((k) => Array.from(shardSequences(plan, k)));
  assertEquals([0, 1, 2].map((k) => shardSequences(plan, k).length), [5, 5, 3]);
  assertEquals([...seen].sort((a, b) => a - b), Array.from({ length: N_SEQ }, (_, i) => i));
});

Deno.test("a shard's rows are its sequences' rows, shuffled", async () => {
  const rows = await shardRows(model, split, plan, 1, 4);
  const plain = await collectActivations(model, split, shardSequences(plan, 1), 4);
  const key = (seq: Int32Array, pos: Int32Array) =>
    Array.from(seq, (s, i) => `${s}:${pos[i]}`).sort();
  assertEquals(key(rows.seq, rows.pos), key(plain.seq, plain.pos));
  assert(rows.seq.some((s, i) => s !== plain.seq[i] || rows.pos[i] !== plain.pos[i]), "shuffled");
});

Deno.test("the model stream yields the cached shards' rows in order, batch by batch", async () => {
  const want = await allShardRows();
  const D = model.config.dMlp, B = 7;
  const stream = new ModelActivationStream(model, split, plan, { batchSize: B, batchSequences: 4 });
  assertEquals(await stream.totalRows(), N_SEQ * T);
  assertEquals(await stream.batches(), Math.floor((N_SEQ * T) / B));
  let b = 0;
  for (let batch = await stream.next(); batch; batch = await stream.next(), b++) {
    assertEquals(Array.from(batch), Array.from(want.subarray(b * B * D, (b + 1) * B * D)));
  }
  assertEquals(b, Math.floor((N_SEQ * T) / B));
});

Deno.test("skip() resumes mid-shard at the row an unbroken stream would give", async () => {
  const want = await allShardRows();
  const D = model.config.dMlp, B = 6;
  for (const skipBatches of [0, 3, 7, 10]) {
    const s = new ModelActivationStream(model, split, plan, { batchSize: B, batchSequences: 4 });
    await s.skip(skipBatches * B);
    const batch = await s.next();
    assert(batch !== null);
    const from = skipBatches * B * D;
    assertEquals(Array.from(batch), Array.from(want.subarray(from, from + B * D)));
  }
});
