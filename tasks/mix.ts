/**
 * Mix the corpus: sample each source's share of rows and write them in one Parquet file.
 *
 *   deno task mix --preset demo
 *
 * Reads the sources the config lists (npm-shipped corpora, local files, http(s) shards).
 * Writes data/<run>/mix.parquet (text: utf8, source: utf8, doc_id: int32) and
 * data/<run>/composition.parquet (per source: target and achieved share of rows, rows, characters,
 * distinct documents, repeat factor), and prints the composition.
 *
 * @module
 */
import * as arrow from "apache-arrow";
import { CONFIG_OPTIONS, fmtInt, log, runMain, type TaskSpec } from "../mod/run/mod.ts";
import { type RunConfig, stageParams, stageSource } from "../mod/run/mod.ts";
import { localInputs, mixSources } from "../mod/corpus/mod.ts";
import { writeParquet } from "../mod/io/mod.ts";
import { runPaths } from "../mod/run/mod.ts";
import { readManifest, runStage, type StageResult } from "../mod/run/mod.ts";
import { stageMain } from "../mod/run/mod.ts";
import { writeJsonAtomic } from "../mod/io/mod.ts";

export const SPEC: TaskSpec = {
  name: "mix",
  summary: "Mix the corpus sources by row share into data/<run>/mix.parquet",
  details: "Writes mix.parquet (text, source, doc_id) and composition.parquet.",
  options: CONFIG_OPTIONS,
};

export interface CompositionRow {
  source: string;
  stands_for: string;
  target_share: number;
  achieved_share: number;
  rows: number;
  chars: number;
  char_share: number;
  distinct_docs: number;
  repeat_factor: number;
}

function printComposition(rows: CompositionRow[]): void {
  const head = ["source", "target", "achieved", "rows", "chars", "char share", "repeat"];
  const lines = rows.map((r) => [
    r.source,
    `${(100 * r.target_share).toFixed(2)}%`,
    `${(100 * r.achieved_share).toFixed(2)}%`,
    fmtInt(r.rows),
    fmtInt(r.chars),
    `${(100 * r.char_share).toFixed(2)}%`,
    r.repeat_factor > 1.0001 ? `x${r.repeat_factor.toFixed(2)}` : "-",
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  log(fmt(head));
  for (const l of lines) log(fmt(l));
}

function mayRead(path: string): boolean {
  return Deno.permissions.querySync({ name: "read", path }).state === "granted";
}

/** The part of a path or glob before its first wildcard: what must be readable to expand it. */
function globRoot(pattern: string): string {
  const parts = pattern.split("/");
  const first = parts.findIndex((p) => /[*?]/.test(p));
  return first < 0 ? pattern : parts.slice(0, first).join("/") || ".";
}

/**
 * The mix's local input files. Seen from a downstream task (tokenize and the tensor stages may
 * read the project only), a `files` source outside the project cannot be listed or hashed: its
 * files are then taken as the last mix recorded them (`blocked`), and if the mix must run anyway
 * the error says to run `deno task mix`, which may read anywhere.
 */
async function mixInputs(
  cfg: RunConfig,
): Promise<{ inputs: string[]; blocked: string[]; outside: string[] }> {
  const outside = cfg.mix.sources
    .filter((s) => s.kind === "files" && s.weight > 0)
    .flatMap((s) => s.paths!)
    .filter((p) => !mayRead(globRoot(p)));
  if (outside.length === 0) return { inputs: await localInputs(cfg), blocked: [], outside };
  const prev = await readManifest(runPaths(cfg).data, "mix");
  const blocked = Object.keys(prev?.inputs ?? {}).filter((p) => !mayRead(p));
  const readable: RunConfig = {
    ...cfg,
    mix: {
      ...cfg.mix,
      sources: cfg.mix.sources.map((s) =>
        s.kind === "files" ? { ...s, paths: s.paths!.filter((p) => mayRead(globRoot(p))) } : s
      ),
    },
  };
  const inputs = [...new Set([...(await localInputs(readable)), ...blocked])];
  return { inputs, blocked: blocked.length > 0 ? blocked : outside, outside };
}

export async function run(cfg: RunConfig, opts: { force?: boolean } = {}): Promise<StageResult> {
  const paths = runPaths(cfg);
  const { inputs, blocked, outside } = await mixInputs(cfg);
  return await runStage({
    name: "mix",
    dir: paths.data,
    inputs,
    blocked,
    blockedFix: `Cannot run mix from this task: source "${outside[0]}" lies outside the ` +
      `project, which this task may not read; run \`deno task mix\` first with the same ` +
      `--preset/--run/--set/--config flags (mix may read anywhere), then this task again`,
    params: stageParams(cfg, "mix"),
    source: stageSource("mix"),
    outputs: [paths.mix, paths.composition],
    force: opts.force,
    run: async () => {
      const sources = await mixSources(cfg);
      const texts = sources.flatMap((s) => s.texts);
      const totalRows = texts.length;
      const totalChars = texts.reduce((a, t) => a + t.length, 0);
      if (totalRows === 0 || totalChars === 0) throw new Error("Empty corpus: the mix has no text");
      const table = new arrow.Table({
        text: arrow.vectorFromArray(texts, new arrow.Utf8()),
        source: arrow.vectorFromArray(
          sources.flatMap((s) => s.texts.map(() => s.name)),
          new arrow.Utf8(),
        ),
        doc_id: arrow.makeVector(Int32Array.from(sources.flatMap((s) => Array.from(s.docIds)))),
      });
      const composition: CompositionRow[] = sources.map((s) => {
        const chars = s.texts.reduce((a, t) => a + t.length, 0);
        return {
          source: s.name,
          stands_for: s.standsFor,
          target_share: s.targetShare,
          achieved_share: s.texts.length / totalRows,
          rows: s.texts.length,
          chars,
          char_share: chars / totalChars,
          distinct_docs: s.distinctDocs,
          repeat_factor: s.texts.length / s.distinctDocs,
        };
      });
      await writeParquet(paths.mix, table, { rowGroupSize: 4096 });
      await writeParquet(
        paths.composition,
        arrow.tableFromJSON(composition as unknown as Record<string, unknown>[]),
      );
      await writeJsonAtomic(paths.runConfig, cfg);
      log(`mix: wrote ${fmtInt(totalRows)} rows, ${fmtInt(totalChars)} characters to ${paths.mix}`);
      printComposition(composition);
      return { rows: totalRows, chars: totalChars, composition };
    },
  });
}

export const main = stageMain(SPEC, run);

if (import.meta.main) await runMain(main);
