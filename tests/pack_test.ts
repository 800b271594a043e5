import { assert, assertEquals, assertThrows } from "./assert.ts";
import { pack, packStream, splitDocs } from "../mod/tokenize/mod.ts";
import { EOT_TOKEN } from "../mod/tokenize/mod.ts";

const E = EOT_TOKEN;

Deno.test("packStream joins documents with end-of-text and drops the ragged tail", () => {
  const ids = Uint16Array.from([1, 2, 3, 4, 5]);
  const offsets = Float64Array.from([0, 3, 5]); // documents [1,2,3] and [4,5]
  const { seqs, count, dropped } = packStream(ids, offsets, 3);
  assertEquals(count, 2);
  assertEquals(Array.from(seqs), [1, 2, 3, E, 4, 5]);
  assertEquals(dropped, 1); // the final end-of-text
});

Deno.test("pack keeps one source per sequence, splits by document and is deterministic", () => {
  const a = {
    name: "a",
    ids: new Uint16Array(100).fill(1),
    offsets: Float64Array.from([0, 50, 100]),
  };
  const b = { name: "b", ids: new Uint16Array(40).fill(2), offsets: Float64Array.from([0, 40]) };
  const opts = { contextLength: 10, valFraction: 0.25, seed: 1 };
  const p = pack([a, b], opts);
  // a: two documents of 51 tokens (with their end-of-text); a quarter of 102 is 25.5, and one
  // document (51) is as close to that as none, so one goes to validation: 5 + 5 sequences, one
  // token dropped on each side. b: its only document stays in training (41 -> 4 sequences).
  assertEquals(
    p.perSource.map((s) => [s.source, s.sequences, s.val_sequences, s.val_docs, s.dropped_tokens]),
    [["a", 10, 5, 1, 2], ["b", 4, 0, 0, 1]],
  );
  for (let s = 0; s < 14; s++) {
    const row = p.tokens.subarray(s * 10, s * 10 + 10).filter((t) => t !== E);
    const expected = p.sourceNames[p.sourceIdx[s]] === "a" ? 1 : 2;
    assertEquals(row.every((t) => t === expected), true, `sequence ${s} mixes sources`);
  }
  assertEquals(p.isVal.reduce((x, y) => x + y, 0), 5);
  const again = pack([a, b], opts);
  assertEquals(Array.from(again.sourceIdx), Array.from(p.sourceIdx));
  assertEquals(Array.from(again.isVal), Array.from(p.isVal));
});

Deno.test("pack puts a document and all its repeats on one side of the split", () => {
  // 40 distinct documents of 9 tokens, each repeated 3 times (an upsampled source); document d's
  // tokens all have the value 100 + d, so every token names its document.
  const nDistinct = 40, repeats = 3, len = 9;
  const docIds = new Int32Array(nDistinct * repeats);
  const ids = new Uint16Array(nDistinct * repeats * len);
  const offsets = new Float64Array(nDistinct * repeats + 1);
  for (let r = 0, k = 0; r < repeats; r++) {
    for (let d = 0; d < nDistinct; d++, k++) {
      docIds[k] = d;
      ids.fill(100 + d, k * len, (k + 1) * len);
      offsets[k + 1] = (k + 1) * len;
    }
  }
  const p = pack([{ name: "up", ids, offsets, docIds }], {
    contextLength: 8,
    valFraction: 0.2,
    seed: 3,
  });
  const sides = new Map<number, Set<number>>();
  for (let s = 0; s < p.isVal.length; s++) {
    for (const t of p.tokens.subarray(s * 8, s * 8 + 8)) {
      if (t === E) continue;
      if (!sides.has(t)) sides.set(t, new Set());
      sides.get(t)!.add(p.isVal[s]);
    }
  }
  for (const [t, side] of sides) assertEquals(side.size, 1, `document ${t - 100} is on both sides`);
  const valDocs = [...sides.values()].filter((s) => s.has(1)).length;
  assertEquals(valDocs, p.perSource[0].val_docs);
  assertEquals(valDocs, 8); // 20% of 40 equal documents
  const valShare = p.isVal.reduce((x, y) => x + y, 0) / p.isVal.length;
  assert(Math.abs(valShare - 0.2) < 0.03, `validation share ${valShare}`);
});

Deno.test("splitDocs rejects doc ids that do not match the documents", () => {
  const s = {
    name: "x",
    ids: new Uint16Array(4),
    offsets: Float64Array.from([0, 2, 4]),
    docIds: Int32Array.from([0]),
  };
  assertThrows(() => splitDocs(s, 0.5, 1), /Source "x": 1 doc ids for 2 documents/);
});
