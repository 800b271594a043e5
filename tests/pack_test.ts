import { assertEquals } from "./assert.ts";
import { pack, packStream } from "../mod/pack.ts";
import { EOT_TOKEN } from "../mod/tokenizer.ts";

const E = EOT_TOKEN;

Deno.test("packStream joins documents with end-of-text and drops the ragged tail", () => {
  const ids = Uint16Array.from([1, 2, 3, 4, 5]);
  const offsets = Float64Array.from([0, 3, 5]); // documents [1,2,3] and [4,5]
  const { seqs, count, dropped } = packStream(ids, offsets, 3);
  assertEquals(count, 2);
  assertEquals(Array.from(seqs), [1, 2, 3, E, 4, 5]);
  assertEquals(dropped, 1); // the final end-of-text
});

Deno.test("pack keeps one source per sequence, splits by fraction and is deterministic", () => {
  const a = {
    name: "a",
    ids: new Uint16Array(100).fill(1),
    offsets: Float64Array.from([0, 50, 100]),
  };
  const b = { name: "b", ids: new Uint16Array(40).fill(2), offsets: Float64Array.from([0, 40]) };
  const opts = { contextLength: 10, valFraction: 0.25, seed: 1 };
  const p = pack([a, b], opts);
  // a: 102 tokens -> 10 sequences; b: 41 -> 4.
  assertEquals(p.perSource.map((s) => [s.source, s.sequences, s.val_sequences, s.dropped_tokens]), [
    ["a", 10, 3, 2],
    ["b", 4, 1, 1],
  ]);
  for (let s = 0; s < 14; s++) {
    const row = p.tokens.subarray(s * 10, s * 10 + 10).filter((t) => t !== E);
    const expected = p.sourceNames[p.sourceIdx[s]] === "a" ? 1 : 2;
    assertEquals(row.every((t) => t === expected), true, `sequence ${s} mixes sources`);
  }
  assertEquals(p.isVal.reduce((x, y) => x + y, 0), 4);
  const again = pack([a, b], opts);
  assertEquals(Array.from(again.sourceIdx), Array.from(p.sourceIdx));
  assertEquals(Array.from(again.isVal), Array.from(p.isVal));
});
