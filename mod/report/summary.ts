/**
 * The run summary the report's first half shows: corpus composition (target vs achieved share),
 * the transformer's final losses beside the unigram entropy, the SAE sweep table (the browsed
 * SAEs: the primary f<N> and, with several architectures, each one's first-init replicate 0), the
 * scaling fits (L0, the dead / ultra-low fraction and fve against size, per architecture and init)
 * with their verdicts, and the run's plots as SVG text.
 *
 * Reads data/<run>/composition.parquet, results/<run>/transformer/summary.parquet and
 * config.json, results/<run>/sae/summary.parquet and features_summary.parquet,
 * results/<run>/scaling_fits.parquet and results/<run>/plots/*.svg.
 *
 * @module
 */
import { join } from "node:path";
import { exists, readJson } from "../io/mod.ts";
import { readParquet } from "../io/mod.ts";
import type { RunPaths } from "../run/mod.ts";
import { hasColumn, numberCol, numbers, stringCol } from "./arrow_cols.ts";

export interface CompositionRow {
  source: string;
  standsFor: string;
  targetShare: number;
  achievedShare: number;
  rows: number;
  chars: number;
}

export interface TransformerSummary {
  steps: number;
  tokensSeen: number;
  finalTrainLoss: number;
  finalValLoss: number | null;
  unigramEntropy: number;
  tokensPerS: number;
  backend: string;
  config: Record<string, unknown> | null;
}

export interface SaeRow {
  /** Folder name: f<N>, or f<N>-<arch>-<init>-r0 for another architecture's. */
  name: string;
  size: number;
  architecture: string;
  l0: number;
  fve: number;
  lossRecovered: number | null;
  deadFraction: number;
  alive: number;
  heldoutTokens: number;
  tokensPerS: number;
}

/** One line fit of the scaling stage (results/<run>/scaling_fits.parquet). */
export interface Fit {
  /** Empty in a scaling_fits.parquet older than the architecture column. */
  architecture: string;
  init: string;
  /** "l0", "dead_or_ultra_low_fraction", "alive_fraction" or "fve" (descriptive). */
  statistic: string;
  slope: number | null;
  ciLow: number | null;
  ciHigh: number | null;
  df: number | null;
  /** Sizes (points of the fit) and SAEs behind them. */
  n: number | null;
  saes: number | null;
  r2: number | null;
  verdict: string;
}

export interface Plot {
  name: string;
  title: string;
  /** The SVG document, or null when the file is missing. */
  svg: string | null;
  path: string;
}

export interface RunSummary {
  run: string;
  composition: CompositionRow[];
  transformer: TransformerSummary;
  saes: SaeRow[];
  /** Every fit of the scaling stage; empty when it wrote none. */
  fits: Fit[];
  plots: Plot[];
}

/** Plot names (results/<run>/plots/<name>.svg) and titles, in the order the page shows them. */
export function plotList(sizes: number[]): { name: string; title: string }[] {
  const sorted = [...sizes].sort((a, b) => a - b);
  const largest = sorted.at(-1);
  return [
    { name: "transformer_loss", title: "Transformer loss" },
    { name: "sae_metrics", title: "SAE training metrics" },
    { name: "density_overlay", title: "Feature density, every SAE" },
    ...sorted.map((n) => ({ name: `density_f${n}`, title: `Feature density, f${n}` })),
    ...(largest === undefined ? [] : [{
      name: `log_density_f${largest}`,
      title: `Log feature density, f${largest}`,
    }]),
    { name: "scaling", title: "Dead / ultra-low fraction and L0 against SAE size" },
  ];
}

/** The files `loadRunSummary` reads, for the stage's manifest. */
export function summaryInputs(paths: RunPaths, sizes: number[]): string[] {
  return [
    paths.composition,
    paths.transformer.summary,
    paths.saeSummary,
    paths.featuresSummary,
    paths.scaling,
    paths.scalingFits,
    ...plotList(sizes).map((p) => join(paths.plotsDir, `${p.name}.svg`)),
  ];
}

/**
 * Reads the run's summary. `browsed` names the SAEs whose rows the sweep table shows, in order
 * (default: the primary f<N> of each size).
 */
export async function loadRunSummary(
  run: string,
  paths: RunPaths,
  sizes: number[],
  browsed: string[] = [...sizes].sort((a, b) => a - b).map((n) => `f${n}`),
): Promise<RunSummary> {
  const comp = await readParquet(paths.composition);
  const cl = `Composition "${paths.composition}"`;
  const source = stringCol(comp, "source", cl), standsFor = stringCol(comp, "stands_for", cl);
  const target = numbers(comp, "target_share", cl), achieved = numbers(comp, "achieved_share", cl);
  const rows = numbers(comp, "rows", cl), chars = numbers(comp, "chars", cl);
  const composition = source.map((s, i) => ({
    source: s ?? "",
    standsFor: standsFor[i] ?? "",
    targetShare: target[i],
    achievedShare: achieved[i],
    rows: rows[i],
    chars: chars[i],
  }));

  const tPath = paths.transformer.summary;
  const t = await readParquet(tPath);
  const tl = `Transformer summary "${tPath}"`;
  const cfgPath = paths.transformer.config;
  const transformer: TransformerSummary = {
    steps: numbers(t, "steps", tl)[0],
    tokensSeen: numbers(t, "tokens_seen", tl)[0],
    finalTrainLoss: numbers(t, "final_train_loss", tl)[0],
    finalValLoss: numberCol(t, "final_val_loss", tl)[0],
    unigramEntropy: numbers(t, "unigram_entropy", tl)[0],
    tokensPerS: numbers(t, "train_tokens_per_s", tl)[0],
    backend: stringCol(t, "backend", tl)[0] ?? "",
    config: (await exists(cfgPath)) ? await readJson<Record<string, unknown>>(cfgPath) : null,
  };

  const sPath = paths.saeSummary;
  const s = await readParquet(sPath);
  const sl = `SAE summary "${sPath}"`;
  const fPath = paths.featuresSummary;
  const fs = await readParquet(fPath);
  const fl = `Features summary "${fPath}"`;
  // By SAE name (an older features summary has one row per size, for f<N>).
  const fsNames = hasColumn(fs, "name")
    ? stringCol(fs, "name", fl).map((x) => x ?? "")
    : numbers(fs, "size", fl).map((n) => `f${n}`);
  const recovered = new Map(fsNames.map((name, i) => [name, numbers(fs, "loss_recovered", fl)[i]]));
  const arch = stringCol(s, "architecture", sl);
  // One row per trained SAE (replicates, other inits): the table shows each size's primary f<N>.
  const names = s.schema.fields.some((f) => f.name === "name") ? stringCol(s, "name", sl) : null;
  const [size, l0, fve, dead, alive, held, tps] = [
    "size",
    "l0",
    "fve",
    "dead_fraction",
    "alive",
    "heldout_tokens",
    "tokens_per_s",
  ].map((c) => numbers(s, c, sl));
  const rowNames = size.map((n, i) => names?.[i] ?? `f${n}`);
  const all = size.map((n, i) => ({
    name: rowNames[i],
    size: n,
    architecture: arch[i] ?? "",
    l0: l0[i],
    fve: fve[i],
    lossRecovered: recovered.get(rowNames[i]) ?? null,
    deadFraction: dead[i],
    alive: alive[i],
    heldoutTokens: held[i],
    tokensPerS: tps[i],
  }));
  const saes = browsed.flatMap((b) => all.filter((r) => r.name === b));

  const fitsPath = paths.scalingFits;
  const sc = await readParquet(fitsPath);
  const scl = `Scaling fits "${fitsPath}"`;
  const fitNum = (c: string) => numberCol(sc, c, scl);
  const [slope, ciLow, ciHigh, df, n, nSaes, r2] = [
    "slope",
    "ci_low",
    "ci_high",
    "df",
    "n",
    "saes",
    "r2",
  ].map(fitNum);
  const fitInit = stringCol(sc, "init", scl), fitStat = stringCol(sc, "statistic", scl);
  const fitArch = hasColumn(sc, "architecture") ? stringCol(sc, "architecture", scl) : [];
  const verdicts = stringCol(sc, "verdict", scl);
  const fits: Fit[] = fitInit.map((init, i) => ({
    architecture: fitArch[i] ?? "",
    init: init ?? "",
    statistic: fitStat[i] ?? "",
    slope: slope[i],
    ciLow: ciLow[i],
    ciHigh: ciHigh[i],
    df: df[i],
    n: n[i],
    saes: nSaes[i],
    r2: r2[i],
    verdict: verdicts[i] ?? "",
  }));

  const plots: Plot[] = [];
  for (const p of plotList(sizes)) {
    const path = join(paths.plotsDir, `${p.name}.svg`);
    plots.push({ ...p, path, svg: (await exists(path)) ? await Deno.readTextFile(path) : null });
  }
  return { run, composition, transformer, saes, fits, plots };
}
