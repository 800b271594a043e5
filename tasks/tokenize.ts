/**
 * Tokenize the mix with the GPT-2 tokenizer and pack it into fixed-length sequences.
 *
 *   deno task tokenize --preset demo
 *
 * Runs mix first if it is out of date. Reads data/<run>/mix.parquet. Writes
 * data/<run>/tokens.parquet, one row per sequence: seq (int32), split ("train" | "val"),
 * source (utf8), tokens (fixed_size_list<uint16>[contextLength]); its footer metadata records
 * tokenizer, vocab_size, context_length and eot_token. Also data/<run>/tokenize_stats.parquet
 * (per source: docs, tokens, sequences, validation sequences, distinct train and validation
 * documents, dropped tokens; and throughput). The split is by document, before packing: a
 * document and its repeats are on one side only (mod/tokenize/pack.ts).
 *
 * @module
 */
import * as arrow from "apache-arrow";
import { CONFIG_OPTIONS, fmtInt, log, runMain, type TaskSpec } from "../mod/run/mod.ts";
import { type RunConfig, runUpstream, stageParams, stageSource } from "../mod/run/mod.ts";
import { readParquet, requireColumns, writeParquet } from "../mod/io/mod.ts";
import { runPaths } from "../mod/run/mod.ts";
import { runStage, type StageResult } from "../mod/run/mod.ts";
import { stageMain } from "../mod/run/mod.ts";
import { encodeDocs } from "../mod/tokenize/mod.ts";
import { pack, type SourceStream } from "../mod/tokenize/mod.ts";
import { EOT_TOKEN, GPT2_VOCAB_SIZE } from "../mod/tokenize/mod.ts";
import { tokensTable } from "../mod/tokenize/mod.ts";

export const SPEC: TaskSpec = {
  name: "tokenize",
  summary: "Tokenize data/<run>/mix.parquet (GPT-2) into fixed-length sequences",
  details: "Runs mix first when it is out of date. Writes data/<run>/tokens.parquet.",
  options: CONFIG_OPTIONS,
};

export async function run(cfg: RunConfig, opts: { force?: boolean } = {}): Promise<StageResult> {
  await runUpstream("tokenize", cfg);
  const paths = runPaths(cfg);
  const statsPath = paths.tokenizeStats;
  return await runStage({
    name: "tokenize",
    dir: paths.data,
    inputs: [paths.mix],
    params: stageParams(cfg, "tokenize"),
    source: stageSource("tokenize"),
    outputs: [paths.tokens, statsPath],
    force: opts.force,
    run: async () => {
      const table = await readParquet(paths.mix, { columns: ["text", "source", "doc_id"] });
      requireColumns(table, ["text", "source", "doc_id"], `Mix file "${paths.mix}"`);
      const texts = table.getChild("text")!.toArray() as string[];
      const sources = table.getChild("source")!.toArray() as string[];
      const docIds = Int32Array.from(table.getChild("doc_id")!.toArray() as ArrayLike<number>);
      if (texts.length === 0) throw new Error(`Empty corpus: "${paths.mix}" has no rows`);
      const names = [...new Set(sources)];
      const rowsOf = names.map((n) => sources.flatMap((s, i) => (s === n ? [i] : [])));
      const bySource = rowsOf.map((rows) => rows.map((i) => texts[i]));

      const t0 = performance.now();
      const encoded = await encodeDocs(bySource.flat(), cfg.tokenize);
      const encodeS = (performance.now() - t0) / 1000;
      const tokensPerS = encoded.ids.length / encodeS;
      log(
        `tokenize: encoded ${fmtInt(texts.length)} documents into ${
          fmtInt(encoded.ids.length)
        } tokens in ${encodeS.toFixed(2)} s (${
          fmtInt(tokensPerS)
        } tokens/s, ${cfg.tokenize.encoder}, ${cfg.tokenize.workers} workers)`,
      );

      const streams: SourceStream[] = [];
      let doc = 0;
      for (let s = 0; s < names.length; s++) {
        const n = bySource[s].length;
        const offsets = encoded.offsets.slice(doc, doc + n + 1);
        const start = offsets[0];
        streams.push({
          name: names[s],
          ids: encoded.ids.subarray(start, offsets[n]),
          offsets: offsets.map((o) => o - start),
          docIds: Int32Array.from(rowsOf[s], (i) => docIds[i]),
        });
        doc += n;
      }
      const T = cfg.tokenize.contextLength;
      const packed = pack(streams, {
        contextLength: T,
        valFraction: cfg.tokenize.valFraction,
        seed: cfg.seed,
      });
      const nSeq = packed.sourceIdx.length;
      const nVal = packed.isVal.reduce((a, b) => a + b, 0);
      await writeParquet(paths.tokens, tokensTable(packed, T), {
        rowGroupSize: Math.max(1, Math.floor(4_000_000 / T)),
        metadata: {
          tokenizer: "gpt2",
          encoder: cfg.tokenize.encoder,
          vocab_size: String(GPT2_VOCAB_SIZE),
          context_length: String(T),
          eot_token: String(EOT_TOKEN),
        },
      });
      const stats = packed.perSource.map((p) => ({ ...p, tokens_per_s: tokensPerS }));
      await writeParquet(statsPath, arrow.tableFromJSON(stats));
      log(
        `tokenize: wrote ${fmtInt(nSeq)} sequences of ${T} tokens (${fmtInt(nSeq - nVal)} train, ${
          fmtInt(nVal)
        } val; ${fmtInt(nSeq * T)} tokens) to ${paths.tokens}`,
      );
      return {
        sequences: nSeq,
        valSequences: nVal,
        tokens: encoded.ids.length,
        tokensPerS,
        perSource: packed.perSource,
      };
    },
  });
}

export const main = stageMain(SPEC, run);

if (import.meta.main) await runMain(main);
