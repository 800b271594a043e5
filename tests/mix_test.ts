import * as arrow from "apache-arrow";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { allocateRows, mixSources } from "../mod/corpus/mod.ts";
import { expandRanges } from "../mod/corpus/mod.ts";
import { detagBrown, udhrArticles } from "../mod/corpus/mod.ts";
import { encodeParquet, readParquet } from "../mod/io/mod.ts";
import { run as runMix } from "../tasks/mix.ts";
import { tempConfig } from "./helpers.ts";
import type { SourceSpec } from "../mod/run/mod.ts";

async function gzip(text: string): Promise<Uint8Array<ArrayBuffer>> {
  const s = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(s).arrayBuffer());
}

Deno.test("allocateRows gives every source its share and sums to the total", () => {
  const rows = allocateRows([70.42, 14.08, 3.52, 3.52, 3.52, 2.46, 1.41, 1.06], 1000);
  assertEquals(rows.reduce((a, b) => a + b, 0), 1000);
  assertEquals(rows, [704, 141, 35, 35, 35, 25, 14, 11]);
});

Deno.test("the embedded mix hits every target share within one row and is deterministic", async () => {
  const { cfg, cleanup } = await tempConfig(["mix.rows=500"]);
  try {
    const a = await mixSources(cfg);
    const total = a.reduce((s, x) => s + x.texts.length, 0);
    assertEquals(total, 500);
    for (const s of a) {
      const achieved = s.texts.length / total;
      assert(
        Math.abs(achieved - s.targetShare) <= 1 / total,
        `${s.name}: ${achieved} vs ${s.targetShare}`,
      );
    }
    const b = await mixSources(cfg);
    assertEquals(b.map((s) => Array.from(s.docIds)), a.map((s) => Array.from(s.docIds)));
    const other = await mixSources({ ...cfg, seed: 1 });
    assert(other[0].docIds.some((d, i) => d !== a[0].docIds[i]), "another seed samples other rows");
    // The stand-ins really are in their languages.
    const byName = Object.fromEntries(a.map((s) => [s.name, s.texts.join(" ")]));
    assert(/[\u0600-\u06FF]/.test(byName.wiki_ar), "Arabic script in wiki_ar");
    assert(/[\u3040-\u30FF\u4E00-\u9FFF]/.test(byName.wiki_ja), "Japanese script in wiki_ja");
    assert(/[ẹọṣ]/i.test(byName.wiki_yo), "Yoruba letters in wiki_yo");
    assert(!/[\u064B-\u0652]/.test(byName.wiki_ar), "Arabic diacritics stripped");
    assert(!/<[a-z]+[ >]/.test(byName.wiki_yo), "no HTML tags left");
  } finally {
    await cleanup();
  }
});

Deno.test("markup and tags are stripped from UDHR HTML and Brown's word/TAG files", () => {
  const html = `<html><body><h1>Title &amp; more</h1><header><p>Pre</p></header>
    <article data-number="1"><h2>Article 1</h2><p>One &lt;two&gt;</p></article></body></html>`;
  assertEquals(udhrArticles(html), ["Title & more\nPre", "Article 1\nOne <two>"]);
  assertEquals(
    detagBrown("\tThe/at jury/nn said/vbd ``/`` no/at ''/'' ,/, he/pps said/vbd ./."),
    'The jury said "no", he said.',
  );
});

Deno.test("local txt, jsonl, jsonl.gz and parquet files and globs are read as sources", async () => {
  const { cfg, dir, cleanup } = await tempConfig();
  try {
    const src = `${dir}/src`;
    await Deno.mkdir(`${src}/sub`, { recursive: true });
    await Deno.writeTextFile(`${src}/a.txt`, "Plain text file.");
    await Deno.writeTextFile(`${src}/b.jsonl`, '{"text":"json one"}\n{"text":"json two"}\n');
    await Deno.writeFile(`${src}/sub/c.jsonl.gz`, await gzip('{"body":"gz one"}\n'));
    await Deno.writeFile(
      `${src}/d.parquet`,
      encodeParquet(arrow.tableFromArrays({ text: ["pq one", "pq two", "pq three"] })),
    );
    const sources: SourceSpec[] = [
      {
        name: "files",
        weight: 3,
        kind: "files",
        paths: [`${src}/*.txt`, `${src}/b.jsonl`, `${src}/d.parquet`],
      },
      { name: "gz", weight: 1, kind: "files", paths: [`${src}/**/*.gz`], textField: "body" },
    ];
    const mixed = await mixSources({ ...cfg, mix: { ...cfg.mix, rows: 8, sources } });
    assertEquals(mixed[0].texts, [
      "Plain text file.",
      "json one",
      "json two",
      "pq one",
      "pq two",
      "pq three",
    ]);
    assertEquals(mixed[1].texts, ["gz one", "gz one"]); // one row, repeated to fill its share
    assertEquals(mixed[1].distinctDocs, 1);
  } finally {
    await cleanup();
  }
});

Deno.test("http(s) Parquet and JSONL shards are downloaded once, read in order, and cached", async () => {
  const { cfg, cleanup } = await tempConfig();
  const hits: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    hits.push(path);
    if (path === "/shard-00000.parquet") {
      return new Response(encodeParquet(arrow.tableFromArrays({ text: ["p0", "p1"], id: [1, 2] })));
    }
    if (path === "/shard-00001.json.gz") {
      return new Response(await gzip('{"text":"j0"}\n{"text":"j1"}\n'));
    }
    return new Response("not found", { status: 404 });
  });
  try {
    const base = `http://127.0.0.1:${server.addr.port}`;
    const sources: SourceSpec[] = [{
      name: "web",
      weight: 1,
      kind: "urls",
      urls: [
        `${base}/shard-00000.parquet`,
        `${base}/shard-00001.json.gz`,
        `${base}/shard-00002.parquet`,
      ],
    }];
    const mcfg = { ...cfg, mix: { ...cfg.mix, rows: 3, sources } };
    const mixed = await mixSources(mcfg);
    assertEquals(mixed[0].texts, ["p0", "p1", "j0"]);
    assertEquals(
      hits,
      ["/shard-00000.parquet", "/shard-00001.json.gz"],
      "the third shard is not needed",
    );
    await mixSources(mcfg);
    assertEquals(hits.length, 2, "a rerun reads the cache");
    const missing = {
      ...mcfg,
      mix: { ...mcfg.mix, rows: 10, sources: [{ ...sources[0], urls: [`${base}/gone.parquet`] }] },
    };
    await assertRejects(() => mixSources(missing), /Cannot download ".*gone.parquet": HTTP 404/);
  } finally {
    await server.shutdown();
    await cleanup();
  }
});

Deno.test("range patterns expand with zero padding", () => {
  assertEquals(expandRanges("x-{00008..00010}-of-00041.parquet"), [
    "x-00008-of-00041.parquet",
    "x-00009-of-00041.parquet",
    "x-00010-of-00041.parquet",
  ]);
});

Deno.test("a missing source file and an empty corpus are clear errors", async () => {
  const { cfg, dir, cleanup } = await tempConfig();
  try {
    const missing: SourceSpec[] = [{
      name: "x",
      weight: 1,
      kind: "files",
      paths: [`${dir}/nope.txt`],
    }];
    await assertRejects(
      () => mixSources({ ...cfg, mix: { ...cfg.mix, sources: missing } }),
      /Cannot read source file ".*nope.txt": file does not exist/,
    );
    await Deno.writeTextFile(`${dir}/empty.jsonl`, "");
    const empty: SourceSpec[] = [{
      name: "e",
      weight: 1,
      kind: "files",
      paths: [`${dir}/empty.jsonl`],
    }];
    await assertRejects(
      () => mixSources({ ...cfg, mix: { ...cfg.mix, sources: empty } }),
      /Source "e" has no documents: empty corpus/,
    );
  } finally {
    await cleanup();
  }
});

Deno.test("the mix stage writes mix.parquet, composition.parquet and the resolved config", async () => {
  const { cfg, cleanup } = await tempConfig(["mix.rows=120"]);
  try {
    const { manifest } = await runMix(cfg);
    const dir = `${cfg.dataDir}/${cfg.run}`;
    const mix = await readParquet(`${dir}/mix.parquet`);
    assertEquals(mix.schema.fields.map((f) => f.name), ["text", "source", "doc_id"]);
    assertEquals(mix.numRows, 120);
    const comp = await readParquet(`${dir}/composition.parquet`);
    assertEquals(comp.numRows, cfg.mix.sources.length);
    const shares = comp.getChild("achieved_share")!.toArray() as Float64Array;
    assert(Math.abs(shares.reduce((a, b) => a + b, 0) - 1) < 1e-9);
    const saved = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
    assertEquals(saved.mix.rows, 120);
    assertEquals(manifest.stats.rows, 120);
  } finally {
    await cleanup();
  }
});
