/**
 * A run's results as Markdown tables, read from its files (nothing is recomputed):
 *
 *   deno task tables --preset study
 *
 * Prints, from data/<run>/ and results/<run>/:
 * - stages: each stage's last run time (its manifest's durationS) and what it did;
 * - transformer: steps, tokens, validation loss with its standard error, tokens/s;
 * - SAEs: one row per SAE (sae/summary.parquet joined with features_summary.parquet by name):
 *   held-out L0, fve, dead, ultra-low (counts and fraction), CE loss recovered, resamples, the
 *   last-fifth change of MSE and L0 and the flat flag, tokens/s;
 * - sizes: scaling.parquet's per-(architecture, init, size) means with their 95% intervals;
 * - fits: scaling_fits.parquet's slope, 95% interval, df and verdict per statistic.
 * A missing file is a one-line note in place of its table, so a run in progress prints what
 * exists. The README's tables are pasted from this output, so every number names its run.
 *
 * @module
 */
import type * as arrow from "apache-arrow";
import {
  CONFIG_OPTIONS,
  configSources,
  loadConfig,
  parseTaskArgs,
  type RunConfig,
  runMain,
  runPaths,
  type TaskSpec,
} from "../mod/run/mod.ts";
import { exists, readParquet } from "../mod/io/mod.ts";
import { markdownTable, type Row, stageTimings } from "../mod/report/tables.ts";

export const SPEC: TaskSpec = {
  name: "tables",
  summary:
    "Print a run's results as Markdown tables (stage times, transformer, SAEs, scaling fits)",
  details: "Reads data/<run>/ and results/<run>/; writes nothing.",
  options: { ...CONFIG_OPTIONS },
};

async function rowsOf(path: string): Promise<Row[] | null> {
  if (!(await exists(path))) return null;
  const t: arrow.Table = await readParquet(path);
  return t.toArray().map((r) =>
    Object.fromEntries(
      Object.entries(r.toJSON() as Record<string, unknown>).map((
        [k, v],
      ) => [k, typeof v === "bigint" ? Number(v) : v]),
    )
  );
}

const pct = (v: unknown, digits = 1) =>
  typeof v === "number" && Number.isFinite(v) ? `${(100 * v).toFixed(digits)}%` : "–";
const num = (v: unknown, digits = 3) =>
  typeof v === "number" && Number.isFinite(v) ? v.toFixed(digits) : "–";
const int = (v: unknown) =>
  typeof v === "number" && Number.isFinite(v) ? Math.round(v).toLocaleString("en-US") : "–";
// One replicate has no interval: its value alone.
const interval = (r: Row, k: string, f: (v: unknown) => string) =>
  r[`${k}_ci_low`] === null || r[`${k}_ci_low`] === undefined || Number(r.replicates) < 2
    ? f(r[`${k}_mean`])
    : `${f(r[`${k}_mean`])} [${f(r[`${k}_ci_low`])}, ${f(r[`${k}_ci_high`])}]`;

export async function printTables(cfg: RunConfig, out: (s: string) => void): Promise<void> {
  const paths = runPaths(cfg);
  const section = (title: string, body: string | null, missing: string) =>
    out(`\n### ${title}\n\n${body ?? `(${missing})`}\n`);

  const stages = await stageTimings(cfg.dataDir, cfg.resultsDir, cfg.run);
  section(
    `stages (run "${cfg.run}")`,
    stages.length
      ? markdownTable(
        ["stage", "minutes", "finished (UTC)"],
        stages.map((s) => [
          s.stage,
          (s.seconds / 60).toFixed(1),
          s.createdAt.replace("T", " ").slice(0, 16),
        ]),
      )
      : null,
    "no stage has finished",
  );

  const tr = await rowsOf(paths.transformer.summary);
  section(
    "transformer",
    tr && markdownTable(
      ["steps", "tokens", "val loss ± SE", "val tokens", "unigram entropy", "tokens/s"],
      tr.map((r) => [
        int(r.steps),
        int(r.tokens_seen),
        `${num(r.final_val_loss)} ± ${num(r.final_val_loss_se)}`,
        int(r.val_tokens),
        num(r.unigram_entropy),
        int(r.train_tokens_per_s),
      ]),
    ),
    "no transformer summary yet",
  );

  const sae = await rowsOf(paths.saeSummary);
  const feats = await rowsOf(paths.featuresSummary);
  const byName = new Map((feats ?? []).map((r) => [r.name as string, r]));
  section(
    "SAEs (held-out)",
    sae && markdownTable(
      [
        "SAE",
        "arch",
        "init",
        "L0",
        "fve",
        "dead",
        "ultra-low",
        "dead or ultra-low",
        "CE recovered",
        "resamples",
        "MSE last fifth",
        "L0 last fifth",
        "flat",
        "tokens",
        "tokens/s",
      ],
      sae.map((r) => {
        const f = byName.get(r.name as string);
        return [
          r.name as string,
          r.architecture as string,
          r.init as string,
          num(r.l0, 1),
          num(r.fve),
          `${int(f?.dead ?? (r.size as number) - (r.alive as number))} (${pct(r.dead_fraction)})`,
          f ? `${int(f.ultra_low)}` : "–",
          f ? pct(f.dead_or_ultra_low_fraction) : "–",
          f ? num(f.loss_recovered) : "–",
          int(r.resample_events),
          pct(r.mse_change_last_fifth),
          pct(r.l0_change_last_fifth),
          r.flat ? "yes" : "no",
          int(r.train_tokens),
          int(r.tokens_per_s),
        ];
      }),
    ),
    "no SAE summary yet",
  );

  const sizes = await rowsOf(paths.scaling);
  section(
    "per size: mean [95% interval] over replicates",
    sizes && markdownTable(
      ["arch", "init", "size", "n", "L0", "fve", "dead", "dead or ultra-low", "resolution"],
      sizes.map((r) => [
        r.architecture as string,
        r.init as string,
        int(r.size),
        int(r.replicates),
        interval(r, "l0", (v) => num(v, 1)),
        interval(r, "fve", num),
        interval(r, "dead_fraction", pct),
        interval(r, "dead_or_ultra_low_fraction", pct),
        typeof r.resolution === "number" ? r.resolution.toExponential(1) : "–",
      ]),
    ),
    "no scaling table yet",
  );

  const fits = await rowsOf(paths.scalingFits);
  section(
    "fits against log10 size: slope [95% interval]",
    fits && markdownTable(
      ["arch", "init", "statistic", "slope [95% CI]", "df", "verdict"],
      fits.map((r) => [
        r.architecture as string,
        r.init as string,
        r.statistic as string,
        `${num(r.slope)} [${num(r.ci_low)}, ${num(r.ci_high)}]`,
        int(r.df),
        r.verdict as string,
      ]),
    ),
    "no scaling fits yet",
  );
}

export async function main(args: string[] = Deno.args): Promise<void> {
  const { values } = parseTaskArgs(SPEC, args);
  const cfg = await loadConfig(configSources(values));
  await printTables(cfg, (s) => console.log(s));
}

if (import.meta.main) runMain(main);
