/**
 * Tests for mod/features/max_activating.ts on the cpu backend: top examples and their ties on a hand-set
 * SAE, one example per sequence (top = the sequence's max) on a feature that fires on runs,
 * contexts clipped to their sequence, random examples with silent windows, quantile samples
 * checked against a brute-force answer, independence from microBatch, feature subsets, TopK
 * contexts, statistics against evaluateSae, the Parquet table and tensor bookkeeping.
 *
 *   deno test --allow-read --allow-env tests/max_activating_test.ts
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { ActivationRows } from "../mod/activations/mod.ts";
import {
  collectFeatureExamples,
  type ExampleOptions,
  examplesTable,
  type FeatureExamples,
  quantileBin,
  sampleKey,
} from "../mod/features/mod.ts";
import { decodeParquet, encodeParquet } from "../mod/io/mod.ts";
import { disposeSae, encode, fromArrays, type Sae, type SaeConfig } from "../mod/sae/mod.ts";
import { evaluateSae } from "../mod/sae/mod.ts";
import { Rng } from "../mod/run/mod.ts";
import { assert, assertAllClose, assertEquals, assertNotEquals, assertRejects } from "./assert.ts";

await tf.setBackend("cpu");

/** f0 = ReLU(x0), f1 = ReLU(x1), f2 = ReLU(x0 + x1 − 1). */
function handSae(): Sae {
  return fromArrays({ dIn: 2, dSae: 3, architecture: "standard", l1Coefficient: 0 }, {
    W_enc: new Float32Array([1, 0, 1, 0, 1, 1]),
    b_enc: new Float32Array([0, 0, -1]),
    W_dec: new Float32Array([1, 0, 0, 1, 0.6, 0.8]),
    b_dec: new Float32Array([0, 0]),
  });
}

// Sequences 10 (pos 0-4), 11 (pos 0-2), 12 (pos 0-5); x0 ties at 3 on rows 1, 3 and 12.
const X0 = [0, 3, 1, 3, 0, 2, 0, 5, 0, 1, 4, 0, 3, 0];
const X1 = [-1, 0, 2, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2];
function handRows(): ActivationRows {
  const seq = [10, 10, 10, 10, 10, 11, 11, 11, 12, 12, 12, 12, 12, 12];
  const pos = [0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 2, 3, 4, 5];
  return {
    acts: Float32Array.from(X0.flatMap((x, i) => [x, X1[i]])),
    seq: Int32Array.from(seq),
    pos: Int32Array.from(pos),
    token: Int32Array.from(seq, (s, i) => 100 * s + pos[i]),
    dIn: 2,
  };
}

const BASE: ExampleOptions = {
  topK: 3,
  quantileBins: 4,
  perQuantile: 2,
  random: 3,
  contextBefore: 2,
  contextAfter: 1,
  microBatch: 4,
  seed: 7,
};

function pick(ex: FeatureExamples, feature: number, kind: string) {
  const out = [];
  for (let e = 0; e < ex.feature.length; e++) {
    if (ex.feature[e] !== feature || ex.kind[e] !== kind) continue;
    const [a, b] = [ex.contextOffsets[e], ex.contextOffsets[e + 1]];
    out.push({
      rank: ex.rank[e],
      quantile: ex.quantile[e],
      row: ex.row[e],
      seq: ex.seq[e],
      pos: ex.pos[e],
      activation: ex.activation[e],
      centre: ex.centreIndex[e],
      tokens: Array.from(ex.contextTokens.subarray(a, b)),
      acts: Array.from(ex.contextActs.subarray(a, b)),
    });
  }
  return out;
}

Deno.test("collectFeatureExamples() finds the top rows, earlier rows first on ties", async () => {
  const sae = handSae();
  const { examples: ex } = await collectFeatureExamples(sae, handRows(), BASE);
  const top0 = pick(ex, 0, "top");
  assertEquals(top0.map((t) => t.row), [7, 10, 1]); // 5, 4, then the first of three 3s
  assertEquals(top0.map((t) => t.activation), [5, 4, 3]);
  assertEquals(top0.map((t) => t.rank), [0, 1, 2]);
  assert(top0.every((t) => Number.isNaN(t.quantile)));
  // f2 = ReLU(x0 + x1 − 1): 4 on row 7, 3 on row 10, 2 on rows 1, 2, 3, 5 and 12.
  assertEquals(pick(ex, 2, "top").map((t) => [t.row, t.activation]), [[7, 4], [10, 3], [1, 2]]);
  // f1 fires on rows 2, 5 and 13 only: three top examples, in order of value then row.
  assertEquals(pick(ex, 1, "top").map((t) => [t.row, t.activation]), [[2, 2], [13, 2], [5, 1]]);
  disposeSae(sae);
});

Deno.test("collectFeatureExamples() contexts stay inside their sequence and carry activations", async () => {
  const sae = handSae();
  const { examples: ex } = await collectFeatureExamples(sae, handRows(), BASE);
  const [r7, r10, r1] = pick(ex, 0, "top");
  // Row 7 is the last of sequence 11: two tokens before it, none after.
  assertEquals([r7.seq, r7.pos, r7.centre], [11, 2, 2]);
  assertEquals(r7.tokens, [1100, 1101, 1102]);
  assertEquals(r7.acts, [2, 0, 5]);
  assertEquals([r10.seq, r10.pos, r10.centre], [12, 2, 2]);
  assertEquals(r10.tokens, [1200, 1201, 1202, 1203]);
  assertEquals(r10.acts, [0, 1, 4, 0]);
  // Row 1 is pos 1 of sequence 10: one token before (the start), one after.
  assertEquals([r1.centre, r1.tokens, r1.acts], [1, [1000, 1001, 1002], [0, 3, 1]]);
  for (let e = 0; e < ex.feature.length; e++) {
    const [a, b] = [ex.contextOffsets[e], ex.contextOffsets[e + 1]];
    assertEquals(ex.contextActs[a + ex.centreIndex[e]], ex.activation[e], `example ${e}`);
    assertEquals(ex.contextTokens[a + ex.centreIndex[e]], 100 * ex.seq[e] + ex.pos[e]);
    // Every context token is from the example's sequence (tokens encode seq * 100 + pos).
    for (let k = a; k < b; k++) assertEquals(Math.floor(ex.contextTokens[k] / 100), ex.seq[e]);
    assert(ex.centreIndex[e] <= 2 && b - a - ex.centreIndex[e] <= 2);
  }
  disposeSae(sae);
});

Deno.test("collectFeatureExamples() ends a context where the sequence id changes", async () => {
  // Sequence 5 holds pos 0-2 and sequence 6 continues at pos 3-5 (pieces of one document):
  // positions alone would join them.
  const sae = handSae(), x0 = [1, 0, 2, 9, 0, 1];
  const rows: ActivationRows = {
    acts: Float32Array.from(x0.flatMap((x) => [x, -1])),
    seq: Int32Array.from([5, 5, 5, 6, 6, 6]),
    pos: Int32Array.from([0, 1, 2, 3, 4, 5]),
    token: Int32Array.from([50, 51, 52, 63, 64, 65]),
    dIn: 2,
  };
  const opts = { ...BASE, topK: 2, contextBefore: 3, contextAfter: 3, features: [0] };
  const [a, b] = pick((await collectFeatureExamples(sae, rows, opts)).examples, 0, "top");
  assertEquals([a.row, a.tokens, a.acts, a.centre], [3, [63, 64, 65], [9, 0, 1], 0]);
  assertEquals([b.row, b.tokens, b.acts, b.centre], [2, [50, 51, 52], [1, 0, 2], 2]);
  disposeSae(sae);
});

Deno.test("collectFeatureExamples() draws random rows uniformly over the pass", async () => {
  // One feature silent on all 120 rows; 5 drawn per seed: each row expects 5/120 of the draws.
  const sae = fromArrays({ dIn: 1, dSae: 1, architecture: "standard", l1Coefficient: 0 }, {
    W_enc: new Float32Array([1]),
    b_enc: new Float32Array([-100]),
    W_dec: new Float32Array([1]),
    b_dec: new Float32Array([0]),
  });
  // Each row its own sequence, so that one-per-sequence leaves every row eligible.
  const n = 120,
    rows: ActivationRows = {
      acts: new Float32Array(n),
      seq: Int32Array.from({ length: n }, (_, i) => i),
      pos: new Int32Array(n),
      token: new Int32Array(n),
      dIn: 1,
    };
  const hits = new Float64Array(4); // draws per quarter of the rows
  const opts = { ...BASE, topK: 0, perQuantile: 0, random: 5, microBatch: 16 };
  for (let seed = 0; seed < 240; seed++) {
    const rand = pick(
      (await collectFeatureExamples(sae, rows, { ...opts, seed })).examples,
      0,
      "random",
    );
    assertEquals(new Set(rand.map((r) => r.row)).size, 5);
    for (const r of rand) hits[Math.floor((4 * r.row) / n)]++;
  }
  // 300 draws per quarter expected; the binomial sd is about 15.
  for (const h of hits) assert(Math.abs(h - 300) < 60, `draws per quarter ${hits}`);
  disposeSae(sae);
});

Deno.test("collectFeatureExamples() random examples: silent windows first, one per free sequence", async () => {
  const sae = handSae();
  const opts = { ...BASE, topK: 1, perQuantile: 0, random: 10 };
  const a = await collectFeatureExamples(sae, handRows(), opts);
  // f0 (x0) is silent on rows 0, 4, 6, 8, 11 and 13, but every window (2 before, 1 after) around
  // them holds a firing, or lies in sequence 11 of its top example (row 7): no silent window, so
  // centre-silent rows fill in, one from each free sequence (10 and 12).
  const rand0 = pick(a.examples, 0, "random");
  assertEquals(rand0.map((r) => r.seq), [10, 12]);
  assert(rand0.every((r) => r.activation === 0 && r.acts.some((x) => x > 0)));
  // f1 fires on rows 2 (its top, sequence 10), 5 and 13: the silent windows are around rows 8,
  // 9, 10 and 11, all in sequence 12, so exactly one of them is taken, then a centre-silent row
  // of sequence 11 (row 6 or 7) fills in.
  const rand = pick(a.examples, 1, "random");
  assertEquals(rand.map((r) => [r.seq, r.rank]), [[11, 0], [12, 1]]);
  assert([6, 7].includes(rand[0].row) && rand[0].acts.some((x) => x > 0));
  assert([8, 9, 10, 11].includes(rand[1].row), `row ${rand[1].row}`);
  assert(rand[1].acts.every((x) => x === 0) && rand[1].activation === 0);
  assertEquals(Array.from(a.stats.silentWindows), [0, 1, 1]); // f2's window at row 9 is silent
  const b = await collectFeatureExamples(sae, handRows(), { ...opts, microBatch: 3 });
  assertEquals(b, a);
  // Another seed draws another of the four (for some seed).
  const seeds = [1, 2, 3, 4, 5, 6].map(async (seed) =>
    pick((await collectFeatureExamples(sae, handRows(), { ...opts, seed })).examples, 1, "random")
  );
  const rows = (await Promise.all(seeds)).map((r) => r[1].row);
  assert(new Set(rows).size > 1, `seeds all drew ${rows[0]}`);
  disposeSae(sae);
});

Deno.test("collectFeatureExamples() takes one example per sequence for a feature that fires on runs", async () => {
  // x0 rises and falls over runs of 5 consecutive tokens in every sequence of 12 tokens: per-token
  // top examples would be one run's window shifted by a token.
  const sae = handSae(), nSeq = 20, T = 12;
  const x0 = Array.from({ length: nSeq * T }, (_, r) => {
    const q = Math.floor(r / T), p = r % T;
    return p >= 3 && p < 8 ? 1 + q + (p === 5 ? 0.5 : 0) : 0;
  });
  const rows: ActivationRows = {
    acts: Float32Array.from(x0.flatMap((x) => [x, 0])),
    seq: Int32Array.from(x0, (_, r) => 100 + Math.floor(r / T)),
    pos: Int32Array.from(x0, (_, r) => r % T),
    token: Int32Array.from(x0, (_, r) => r),
    dIn: 2,
  };
  const opts = { ...BASE, topK: 5, quantileBins: 3, perQuantile: 2, random: 4, features: [0] };
  const { examples: ex, stats } = await collectFeatureExamples(sae, rows, opts);
  const top = pick(ex, 0, "top");
  // The five strongest sequences (119 down to 115), each at its peak (pos 5).
  assertEquals(top.map((t) => t.seq), [119, 118, 117, 116, 115]);
  assert(top.every((t) => t.pos === 5 && t.activation === t.seq - 100 + 1.5));
  // No two examples of any kind share a sequence, so no two contexts overlap.
  const seqs = Array.from(ex.seq);
  assertEquals(new Set(seqs).size, seqs.length, `sequences ${seqs}`);
  assert(pick(ex, 0, "quantile").length >= 4);
  // Silent windows: 2 before and 1 after a silent token, away from pos 3-7 (pos 0 or 10-11).
  const rand = pick(ex, 0, "random");
  // The 16 zero rows drawn hold about 7 silent windows, some in sequences already used; rows
  // silent at the centre only fill the rest of the 4.
  const silent = rand.filter((r) => r.acts.every((a) => a === 0));
  assertEquals(stats.silentWindows[0], silent.length);
  assert(silent.length >= 1 && rand.length === 4, `${silent.length} of ${rand.length}`);
  assert(silent.every((r) => [0, 10, 11].includes(r.pos)));
  assert(rand.every((r) => r.activation === 0));
  disposeSae(sae);
});

function randomSae(cfg: SaeConfig, seed: number): Sae {
  const rng = new Rng(seed);
  const r = (n: number, s: number) => Float32Array.from({ length: n }, () => s * rng.normal());
  return fromArrays(cfg, {
    W_enc: r(cfg.dIn * cfg.dSae, 0.5),
    b_enc: r(cfg.dSae, 0.3),
    W_dec: r(cfg.dSae * cfg.dIn, 0.5),
    b_dec: r(cfg.dIn, 0.1),
  });
}

/** Rows whose scale grows along the pass, so each feature's max rises many times. */
function randomRows(n: number, dIn: number, seed: number, seqLen = 9): ActivationRows {
  const rng = new Rng(seed);
  const acts = new Float32Array(n * dIn);
  for (let r = 0; r < n; r++) {
    for (let d = 0; d < dIn; d++) acts[r * dIn + d] = (1 + (3 * r) / n) * rng.normal();
  }
  return {
    acts,
    seq: Int32Array.from({ length: n }, (_, r) => Math.floor(r / seqLen)),
    pos: Int32Array.from({ length: n }, (_, r) => r % seqLen),
    token: Int32Array.from({ length: n }, () => rng.int(50)),
    dIn,
  };
}

function allActs(sae: Sae, rows: ActivationRows): Float32Array {
  const f = tf.tidy(() => encode(sae, tf.tensor2d(rows.acts, [rows.seq.length, rows.dIn])));
  const data = f.dataSync() as Float32Array;
  f.dispose();
  return data;
}

/**
 * Checks each bin's quantile examples against the brute-force answer (the bin's non-top rows with
 * the smallest keys): equal when `exact`, else a prefix of it. Returns [examples, wanted].
 */
function checkQuantiles(
  ex: FeatureExamples,
  f: Float32Array,
  o: {
    n: number;
    F: number;
    topK: number;
    bins: number;
    per: number;
    seed: number;
    seq: Int32Array;
  },
  exact: boolean,
): [number, number] {
  let got = 0, wanted = 0;
  for (let feat = 0; feat < o.F; feat++) {
    const col = Array.from({ length: o.n }, (_, r) => f[r * o.F + feat]);
    const max = Math.max(...col);
    const order = col.map((a, r) => ({ a, r })).filter((x) => x.a > 0)
      .sort((x, y) => y.a - x.a || x.r - y.r);
    // Top: the best row of each sequence, the topK best of those; their sequences are used.
    const bestOfSeq = order.filter((x, i) =>
      order.findIndex((y) => o.seq[y.r] === o.seq[x.r]) === i
    );
    const used = new Set(bestOfSeq.slice(0, o.topK).map((x) => o.seq[x.r]));
    const examples = pick(ex, feat, "quantile");
    for (let b = o.bins - 1; b >= 0; b--) {
      const want: { a: number; r: number }[] = [];
      for (
        const x of order.filter((x) => quantileBin(x.a, max, o.bins) === b)
          .sort((x, y) => sampleKey(o.seed, feat, x.r) - sampleKey(o.seed, feat, y.r))
      ) {
        if (want.length >= o.per || used.has(o.seq[x.r])) continue;
        used.add(o.seq[x.r]);
        want.push(x);
      }
      const mine = examples.filter((g) => Math.abs(g.quantile - b / o.bins) < 1e-6);
      const byActivation = (x: { a: number; r: number }, y: { a: number; r: number }) =>
        y.a - x.a || x.r - y.r;
      const expected = (exact ? want : want.slice(0, mine.length)).sort(byActivation);
      assertEquals(mine.map((g) => g.row), expected.map((x) => x.r), `feature ${feat} bin ${b}`);
      for (const g of mine) {
        assert(g.activation >= (b / o.bins) * max - 1e-6, `${g.activation} below bin ${b}`);
        assert(b === o.bins - 1 || g.activation < ((b + 1) / o.bins) * max, `above bin ${b}`);
        assertEquals(g.activation, col[g.row]);
      }
      got += mine.length, wanted += want.length;
    }
  }
  return [got, wanted];
}

Deno.test("collectFeatureExamples() quantile samples are the seeded sample of each bin, one per sequence", async () => {
  const cfg: SaeConfig = { dIn: 6, dSae: 5, architecture: "standard", l1Coefficient: 0 };
  const sae = randomSae(cfg, 1), rows = randomRows(600, 6, 2);
  const o = { n: 600, F: 5, topK: 2, bins: 5, per: 3, seed: 11, seq: rows.seq };
  const opts = { ...BASE, topK: 2, quantileBins: 5, perQuantile: 3, random: 0, seed: 11 };
  const f = allActs(sae, rows);
  // Given each feature's max, the bins are fixed and the sample is exactly the brute-force one.
  const { stats } = await collectFeatureExamples(sae, rows, opts);
  const known = await collectFeatureExamples(sae, rows, {
    ...opts,
    maxActivation: stats.maxActivation,
  });
  const [got, wanted] = checkQuantiles(known.examples, f, o, true);
  assertEquals(got, wanted);
  assert(got > 60, `only ${got} quantile examples`);
  // Without it, on rows whose scale grows along the pass (the max keeps rising), each bin's
  // examples are still the first ones of the exact sample, and few are missing.
  const [some, all] = checkQuantiles(
    (await collectFeatureExamples(sae, rows, opts)).examples,
    f,
    o,
    false,
  );
  assert(some >= 0.8 * all, `${some} of ${all} quantile examples`);
  disposeSae(sae);
});

Deno.test("collectFeatureExamples() gives the same answer for every microBatch", async () => {
  const cfg: SaeConfig = { dIn: 6, dSae: 7, architecture: "standard", l1Coefficient: 0 };
  const sae = randomSae(cfg, 3), rows = randomRows(300, 6, 4);
  const opts = { ...BASE, topK: 4, quantileBins: 3, perQuantile: 2, random: 3, seed: 5 };
  const ref = await collectFeatureExamples(sae, rows, { ...opts, microBatch: 300 });
  for (const microBatch of [1, 7, 64]) {
    const got = await collectFeatureExamples(sae, rows, { ...opts, microBatch });
    assertEquals(got, ref, `microBatch ${microBatch}`);
  }
  const counts = ["top", "quantile", "random"].map((k) => ref.examples.kind.filter((x) => x === k));
  assertEquals(counts.map((c) => c.length > 0), [true, true, true]);
  disposeSae(sae);
});

Deno.test("collectFeatureExamples() on listed features equals the full run's rows for them", async () => {
  const cfg: SaeConfig = { dIn: 6, dSae: 7, architecture: "standard", l1Coefficient: 0 };
  const sae = randomSae(cfg, 3), rows = randomRows(200, 6, 4);
  const full = (await collectFeatureExamples(sae, rows, BASE)).examples;
  const some = await collectFeatureExamples(sae, rows, { ...BASE, features: [5, 2] });
  assertEquals(Array.from(some.stats.feature), [5, 2]);
  assertEquals([...new Set(some.examples.feature)], [5, 2]);
  for (const feat of [5, 2]) {
    for (const kind of ["top", "quantile", "random"]) {
      assertEquals(pick(some.examples, feat, kind), pick(full, feat, kind), `${feat} ${kind}`);
    }
  }
  await assertRejects(
    () => collectFeatureExamples(sae, rows, { ...BASE, features: [7] }),
    /Feature 7 is outside \[0, 7\)/,
  );
  await assertRejects(
    () => collectFeatureExamples(sae, { ...rows, dIn: 5 }, BASE),
    /width 5 does not match SAE d_in 6/,
  );
  disposeSae(sae);
});

Deno.test("collectFeatureExamples() statistics agree with evaluateSae", async () => {
  const cfg: SaeConfig = { dIn: 6, dSae: 7, architecture: "standard", l1Coefficient: 0 };
  const sae = randomSae(cfg, 8), rows = randomRows(250, 6, 9);
  const { stats } = await collectFeatureExamples(sae, rows, BASE);
  const x = tf.tensor2d(rows.acts, [250, 6]);
  const ref = evaluateSae(sae, x, 64).stats;
  x.dispose();
  assertEquals(stats.tokens, 250);
  assertEquals(Array.from(stats.count), Array.from(ref.count));
  assertEquals(Array.from(stats.maxActivation), Array.from(ref.maxActivation));
  assertAllClose(stats.meanActivation, ref.meanActivation, 1e-5);
  assertAllClose(stats.density, ref.density, 1e-12);
  disposeSae(sae);
});

Deno.test("collectFeatureExamples() takes TopK context activations from the real encode", async () => {
  const cfg: SaeConfig = { dIn: 6, dSae: 8, architecture: "topk", k: 2, l1Coefficient: 0 };
  const sae = randomSae(cfg, 12), rows = randomRows(120, 6, 13);
  const { examples: ex } = await collectFeatureExamples(sae, rows, { ...BASE, contextBefore: 4 });
  const f = allActs(sae, rows);
  let nonzero = 0;
  for (let e = 0; e < ex.feature.length; e++) {
    const a = ex.contextOffsets[e], lo = ex.row[e] - ex.centreIndex[e];
    for (let k = a; k < ex.contextOffsets[e + 1]; k++) {
      const want = f[(lo + k - a) * 8 + ex.feature[e]];
      assertEquals(ex.contextActs[k], want, `example ${e} token ${k - a}`);
      if (want > 0) nonzero++;
    }
  }
  assert(nonzero > 20);
  disposeSae(sae);
});

Deno.test("examplesTable() writes a Parquet table with list columns", async () => {
  const sae = handSae();
  const { examples: ex } = await collectFeatureExamples(sae, handRows(), BASE);
  const table = decodeParquet(encodeParquet(examplesTable(ex)));
  assertEquals(table.numRows, ex.feature.length);
  assertEquals(table.schema.fields.map((f) => f.name), [
    "feature",
    "kind",
    "rank",
    "quantile",
    "seq",
    "pos",
    "activation",
    "context_tokens",
    "context_acts",
    "centre_index",
  ]);
  const e = 1; // feature 0's second top example: row 10
  assertEquals(table.getChild("kind")!.get(e), "top");
  assertEquals(Array.from(table.getChild("context_tokens")!.get(e)!.toArray()), [
    1200,
    1201,
    1202,
    1203,
  ]);
  assertEquals(Array.from(table.getChild("context_acts")!.get(e)!.toArray()), [0, 1, 4, 0]);
  assertEquals(table.getChild("centre_index")!.get(e), 2);
  assert(Number.isNaN(table.getChild("quantile")!.get(e)));
  disposeSae(sae);
});

Deno.test("collectFeatureExamples() leaves tf.memory().numTensors level", async () => {
  const sae = handSae();
  await collectFeatureExamples(sae, handRows(), BASE);
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) {
    await collectFeatureExamples(sae, handRows(), { ...BASE, features: [1, 2] });
    await collectFeatureExamples(sae, handRows(), BASE);
    assertEquals(tf.memory().numTensors, before);
  }
  const a = await collectFeatureExamples(sae, handRows(), { ...BASE, seed: 1 });
  const b = await collectFeatureExamples(sae, handRows(), { ...BASE, seed: 1 });
  assertEquals(a, b);
  assertNotEquals(sampleKey(1, 0, 5), sampleKey(2, 0, 5));
  disposeSae(sae);
});
