/**
 * Tests for mod/activations/shards.ts: a shard larger than one write part (64K rows) round-trips
 * exactly through the chunked writer (mod/io/parquet.ts writeParquetParts) and the chunked reader,
 * whole and by row groups; an empty shard round-trips too. (A 1M x 512 shard, 2 GB, was checked by
 * hand: one-piece writing trapped in parquet-wasm's heap, the chunked one wrote it in 67 s and
 * read it back in 40 s.)
 *
 *   deno test --allow-read --allow-write tests/shards_test.ts
 *
 * @module
 */
import { join } from "node:path";
import { parquetInfo } from "../mod/io/mod.ts";
import { readActivationShard, writeActivationShard } from "../mod/activations/mod.ts";
import { assertEquals } from "./assert.ts";

function rows(n: number, d: number) {
  return {
    acts: Float32Array.from({ length: n * d }, (_, i) => (i % 1013) / 7 - 50),
    seq: Int32Array.from({ length: n }, (_, i) => i >> 3),
    pos: Int32Array.from({ length: n }, (_, i) => i & 7),
    token: Int32Array.from({ length: n }, (_, i) => (i * 31) % 50257),
    dIn: d,
  };
}

Deno.test("a 70,000-row shard round-trips through the chunked writer and reader", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "train-00000.parquet"), r = rows(70_000, 3);
    await writeActivationShard(path, r, { run: "t" });
    const info = await parquetInfo(path);
    assertEquals(info.numRows, 70_000);
    assertEquals(info.numRowGroups, 9); // 8,192-row groups
    assertEquals(info.metadata.d_in, "3");
    const back = await readActivationShard(path, { dIn: 3 });
    assertEquals(back.acts, r.acts);
    assertEquals([back.seq, back.pos, back.token], [r.seq, r.pos, r.token]);
    const part = await readActivationShard(path, { rowGroups: [8], columns: ["act", "seq"] });
    assertEquals(part.seq, r.seq.subarray(8 * 8192));
    assertEquals(part.acts, r.acts.subarray(8 * 8192 * 3));
    assertEquals(part.pos.length, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an empty shard round-trips", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "heldout.parquet");
    await writeActivationShard(path, rows(0, 4), {});
    const back = await readActivationShard(path);
    assertEquals([back.acts.length, back.seq.length, back.dIn], [0, 0, 4]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
