/**
 * Tokenization throughput on the demo corpus (data/demo/mix.parquet, built first if missing):
 * the wasm encoder on 0 and 2 worker threads, and the pure-JS encoder on a sample.
 *
 *   deno task bench tests/bench/tokenize_bench.ts
 *
 * @module
 */
import { loadConfig } from "../../mod/run/mod.ts";
import { encodeDocs } from "../../mod/tokenize/mod.ts";
import { readParquet } from "../../mod/io/mod.ts";
import { runPaths } from "../../mod/run/mod.ts";
import { run as runMix } from "../../tasks/mix.ts";

const cfg = await loadConfig({ preset: "demo" });
await runMix(cfg);
const texts = (await readParquet(runPaths(cfg).mix, { columns: ["text"] })).getChild("text")!
  .toArray() as string[];
const sample = texts.filter((_, i) => i % 50 === 0);

function report(label: string, tokens: number, seconds: number): void {
  console.log(
    `${label}: ${Math.round(tokens / seconds).toLocaleString("en-US")} tokens/s ` +
      `(${tokens.toLocaleString("en-US")} tokens in ${seconds.toFixed(2)} s)`,
  );
}

for (
  const [encoder, workers, docs] of [
    ["tiktoken", 2, texts],
    ["tiktoken", 0, texts],
    ["js-tiktoken", 0, sample],
  ] as const
) {
  const label = `${encoder}, ${workers} workers, ${docs === texts ? "demo corpus" : "2% sample"}`;
  Deno.bench({ name: label, n: 3, warmup: 1 }, async (b) => {
    b.start();
    const t0 = performance.now();
    const out = await encodeDocs(docs as string[], { encoder, workers });
    const s = (performance.now() - t0) / 1000;
    b.end();
    report(label, out.ids.length, s);
  });
}
