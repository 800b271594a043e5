import { DuckDBInstance } from "@duckdb/node-api";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { run as runTokenize } from "../tasks/tokenize.ts";
import { readTokens } from "../mod/tokenize/mod.ts";
import { parquetInfo, readParquet } from "../mod/io/mod.ts";
import { createTokenizer, EOT_TOKEN } from "../mod/tokenize/mod.ts";
import { tempConfig } from "./helpers.ts";

Deno.test("tokenize --preset test writes sequences that decode back to the mix's text", async () => {
  const { cfg, cleanup } = await tempConfig();
  try {
    const t0 = performance.now();
    await runTokenize(cfg);
    assert(performance.now() - t0 < 60_000, "the test preset tokenizes in under a minute");
    const dir = `${cfg.dataDir}/${cfg.run}`;
    const info = await parquetInfo(`${dir}/tokens.parquet`);
    assertEquals(info.columns, ["seq", "split", "source", "tokens"]);
    assertEquals(info.metadata.context_length, String(cfg.tokenize.contextLength));
    assertEquals(info.metadata.vocab_size, "50257");
    const train = await readTokens(`${dir}/tokens.parquet`, "train", {
      contextLength: 32,
      vocabSize: 50257,
    });
    const val = await readTokens(`${dir}/tokens.parquet`, "val");
    const n = train.seq.length + val.seq.length;
    assertEquals(n, info.numRows);
    assert(Math.abs(val.seq.length / n - cfg.tokenize.valFraction) < 0.02, "validation fraction");
    // Every sequence's text (split at end-of-text) is a piece of some document of its source.
    const mix = await readParquet(`${dir}/mix.parquet`);
    const texts = mix.getChild("text")!.toArray() as string[];
    const sources = mix.getChild("source")!.toArray() as string[];
    const tok = createTokenizer();
    for (let s = 0; s < 20; s++) {
      const ids = Array.from(train.tokens.subarray(s * 32, (s + 1) * 32));
      const pieces: number[][] = [[]];
      for (const id of ids) id === EOT_TOKEN ? pieces.push([]) : pieces.at(-1)!.push(id);
      const longest = pieces.sort((a, b) => b.length - a.length)[0];
      // Decode without the first and last token, which may be cut mid-character.
      const text = tok.decode(longest.slice(1, -1)).replace(/^\uFFFD+|\uFFFD+$/g, "");
      const found = texts.some((t, i) => sources[i] === train.source[s] && t.includes(text));
      assert(
        found,
        `sequence ${s} (${train.source[s]}) not found in its source: ${JSON.stringify(text)}`,
      );
    }
    tok.free();
  } finally {
    await cleanup();
  }
});

Deno.test("DuckDB reads mix.parquet and tokens.parquet", async () => {
  const { cfg, cleanup } = await tempConfig();
  try {
    await runTokenize(cfg);
    const dir = `${cfg.dataDir}/${cfg.run}`;
    const con = await (await DuckDBInstance.create(":memory:")).connect();
    const mix = (await con.runAndReadAll(
      `select count(*), count(distinct source) from '${dir}/mix.parquet'`,
    )).getRowsJson();
    assertEquals(mix, [[String(cfg.mix.rows), String(cfg.mix.sources.length)]]);
    const types = (await con.runAndReadAll(`describe select * from '${dir}/tokens.parquet'`))
      .getRowsJson().map((r) => [r[0], r[1]]);
    assertEquals(types, [["seq", "INTEGER"], ["split", "VARCHAR"], ["source", "VARCHAR"], [
      "tokens",
      "USMALLINT[]",
    ]]);
    const lens = (await con.runAndReadAll(
      `select min(len(tokens)), max(len(tokens)), max(list_max(tokens)) from '${dir}/tokens.parquet'`,
    )).getRowsJson();
    assertEquals(lens[0].slice(0, 2), ["32", "32"]);
    assert(Number(lens[0][2]) <= EOT_TOKEN);
    con.closeSync();
  } finally {
    await cleanup();
  }
});

Deno.test("a rerun with nothing changed skips both stages; a changed value reruns only its stage", async () => {
  const { cfg, cleanup } = await tempConfig();
  try {
    await runTokenize(cfg);
    const t0 = performance.now();
    const again = await runTokenize(cfg);
    assert(again.skipped);
    assert(performance.now() - t0 < 1000, "skipping takes under a second");
    const mixBefore = await Deno.stat(`${cfg.dataDir}/${cfg.run}/mix.parquet`);
    const changed = await runTokenize({ ...cfg, tokenize: { ...cfg.tokenize, valFraction: 0.2 } });
    assertEquals(changed.skipped, false);
    const mixAfter = await Deno.stat(`${cfg.dataDir}/${cfg.run}/mix.parquet`);
    assertEquals(mixAfter.mtime, mixBefore.mtime, "mix was not rerun");
  } finally {
    await cleanup();
  }
});

Deno.test("reading tokens for a model of another context length or vocabulary is an error", async () => {
  const { cfg, cleanup } = await tempConfig();
  try {
    await runTokenize(cfg);
    const path = `${cfg.dataDir}/${cfg.run}/tokens.parquet`;
    await assertRejects(
      () => readTokens(path, "train", { contextLength: 64 }),
      /has context length 32, but the model expects 64/,
    );
    await assertRejects(
      () => readTokens(path, "train", { vocabSize: 1000 }),
      /uses a vocabulary of 50257, but the model has 1000/,
    );
  } finally {
    await cleanup();
  }
});
