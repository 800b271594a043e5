/**
 * The scaling stage's body, run by tasks/scaling.ts (`runScalingStage`): how L0 and the dead /
 * ultra-low fraction and the variance explained scale with SAE size, per (architecture,
 * initialisation) and pooled over replicate SAEs (scaling.parquet, scaling_fits.parquet), and then every plot of the run, drawn by
 * `drawRunPlots` (mod/plot/run_plots.ts). The task keeps the command line; what the stage reads
 * and writes is listed in its module header.
 *
 * In order: `readScalingInputs` (each SAE's feature_stats into the analysis inputs and the
 * primary SAEs' density histograms), `writeScalingTables`, `logScaling`, then the plots.
 *
 * Imported by tasks/scaling.ts only, not re-exported by mod.ts, so that it enters the scaling
 * stage's source hash and no other stage's.
 *
 * @module
 */
import * as arrow from "apache-arrow";
import { join } from "node:path";
import {
  browsedSlots,
  log,
  RESULTS_FILES,
  type RunConfig,
  runPaths,
  runStage,
  runUpstream,
  SAE_FILES,
  saeArchitectures,
  stageParams,
  type StageResult,
  stageSource,
} from "../run/mod.ts";
import { readParquet, writeParquet } from "../io/mod.ts";
import { densityHistogram } from "../features/mod.ts";
import {
  drawRunPlots,
  runPlotNames,
  type ScalingFitLine,
  type SizedHistogram,
} from "../plot/mod.ts";
import {
  analyseScaling,
  deadOrUltraLowLabel,
  type FitRow,
  intervalText,
  readSaeSummary,
  type SaeResult,
  type SaeScalingInput,
  SIZE_STATS,
  type SizeRow,
} from "./scaling.ts";

/** Column of a Parquet table as plain numbers. */
function numbers(t: arrow.Table, name: string): number[] {
  return Array.from(t.getChild(name)!.toArray() as ArrayLike<number>, Number);
}

/** Runs the scaling stage through the stage runner: upstream first, then skipped when current. */
export async function runScalingStage(
  cfg: RunConfig,
  opts: { force?: boolean; png?: boolean } = {},
): Promise<StageResult> {
  await runUpstream("scaling", cfg);
  const paths = runPaths(cfg);
  const saeRoot = paths.saeRoot;
  const plotsDir = paths.plotsDir;
  const fitsPath = paths.scalingFits;
  const sizes = [...cfg.sae.sizes].sort((a, b) => a - b);
  const largest = sizes.at(-1)!;
  // Every SAE of the sweep (replicates and both inits) is an input; the summary names them.
  const summaryPath = paths.saeSummary;
  const saes = readSaeSummary(
    await readParquet(summaryPath),
    {
      init: (cfg.sae as { inits?: string[] }).inits?.[0],
      seed: cfg.seed,
      architecture: saeArchitectures(cfg.sae)[0],
    },
    `SAE summary "${summaryPath}"`,
  );
  const inputs = [
    summaryPath,
    paths.featuresSummary,
    paths.transformer.loss,
    ...saes.map((s) => join(saeRoot, s.name, SAE_FILES.featureStats)),
    ...sizes.map((n) => join(paths.saeDir(n), SAE_FILES.metrics)),
  ];
  const plots = runPlotNames(sizes);
  return await runStage({
    name: "scaling",
    dir: paths.results,
    inputs,
    params: { ...stageParams(cfg, "scaling"), png: opts.png ?? true },
    source: stageSource("scaling"),
    outputs: [paths.scaling, fitsPath, ...plots.map((p) => join(plotsDir, `${p}.svg`))],
    force: opts.force,
    run: async () => {
      const read = await readScalingInputs(cfg, saes, { summaryPath, sizes });
      const { sizes: rows, fits, notes } = analyseScaling(read.inputsBySae, {
        ultraLow: cfg.features.ultraLow,
      });
      await writeScalingTables(rows, fits, { scaling: paths.scaling, fits: fitsPath });
      logScaling(rows, fits, notes);

      const worstTokens = Math.min(...saes.map((s) => s.heldoutTokens));
      // The plot colours by init; with several architectures, by architecture/init.
      const several = saeArchitectures(cfg.sae).length > 1;
      const group = (r: { architecture: string; init: string }) =>
        several ? `${r.architecture}/${r.init}` : r.init;
      const written = await drawRunPlots(plotsDir, {
        hists: read.hists,
        largest,
        largestDensities: read.largestDensities,
        nTokens: read.nTokens,
        binsPerDecade: cfg.features.binsPerDecade,
        points: read.inputsBySae.map((s) => ({
          name: s.name,
          init: group(s),
          size: s.size,
          l0: s.l0,
          deadOrUltraLowFraction: s.deadOrUltraLow / s.size,
        })),
        fits: fits.filter((f): f is typeof f & { statistic: ScalingFitLine["statistic"] } =>
          f.statistic === "l0" || f.statistic === "dead_or_ultra_low_fraction"
        ).map((f) => ({ ...f, init: group(f) })),
        deadLabel: deadOrUltraLowLabel(worstTokens, cfg.features.ultraLow),
        groupTitle: several ? "architecture / initialisation" : "initialisation",
        transformerLoss: paths.transformer.loss,
        saeMetrics: sizes.map((n) => ({ size: n, path: join(paths.saeDir(n), SAE_FILES.metrics) })),
      }, { png: opts.png ?? true });
      log(
        `scaling: wrote ${written.length} plots to ${plotsDir}${
          written[0]?.png ? " (SVG and PNG)" : " (SVG)"
        }`,
      );
      return { rows, fits };
    },
  });
}

/**
 * Per SAE: the dead or ultra-low count from its feature_stats (checked against the summary's
 * size) and its loss recovered when the features stage read it (the browsed SAEs); and the
 * histograms of the primary SAEs (f<N>) for the density plots, one per configured size.
 */
async function readScalingInputs(
  cfg: RunConfig,
  saes: SaeResult[],
  opts: { summaryPath: string; sizes: number[] },
): Promise<{
  inputsBySae: SaeScalingInput[];
  hists: SizedHistogram[];
  largestDensities: number[];
  nTokens: number;
}> {
  const paths = runPaths(cfg);
  const { sizes, summaryPath } = opts;
  const largest = sizes.at(-1)!;
  const featSummary = await readParquet(paths.featuresSummary);
  // By SAE name (an older features summary has one row per size, for f<N>).
  const fsNames = featSummary.getChild("name")
    ? Array.from(featSummary.getChild("name")!.toArray() as ArrayLike<string>, String)
    : numbers(featSummary, "size").map((n) => `f${n}`);
  const recovered = new Map(
    fsNames.map((name, j) => [name, numbers(featSummary, "loss_recovered")[j]]),
  );
  const browsed = new Set(browsedSlots(cfg.sae).map((b) => b.name));
  const inputsBySae: SaeScalingInput[] = [];
  const hists: SizedHistogram[] = [];
  let largestDensities: number[] = [];
  let nTokens = 0;
  for (const s of saes) {
    const statsPath = join(paths.saeRoot, s.name, SAE_FILES.featureStats);
    const stats = await readParquet(statsPath, { columns: ["count", "density"] });
    const counts = numbers(stats, "count");
    if (counts.length !== s.size) {
      throw new Error(
        `Feature stats "${statsPath}" has ${counts.length} features, not ${s.size} as the ` +
          `summary says: rerun the sae stage`,
      );
    }
    const hist = densityHistogram(counts, s.heldoutTokens, {
      ultraLow: cfg.features.ultraLow,
      binsPerDecade: cfg.features.binsPerDecade,
    });
    const primary = s.name === `f${s.size}`;
    inputsBySae.push({
      ...s,
      deadOrUltraLow: hist.deadOrUltraLow,
      lossRecovered: recovered.get(s.name) ?? null,
      browsed: browsed.has(s.name),
    });
    if (!primary || !sizes.includes(s.size)) continue;
    hists.push({ size: s.size, hist });
    nTokens = s.heldoutTokens;
    if (s.size === largest) largestDensities = numbers(stats, "density");
  }
  hists.sort((a, b) => a.size - b.size);
  const missing = sizes.filter((n) => !hists.some((h) => h.size === n));
  if (missing.length > 0) {
    throw new Error(
      `No primary SAE (f<N>) in "${summaryPath}" for size(s) ${missing.join(", ")}: ` +
        `rerun the sae stage`,
    );
  }
  return { inputsBySae, hists, largestDensities, nTokens };
}

/** scaling.parquet (with the paper's claim in its metadata) and scaling_fits.parquet. */
async function writeScalingTables(
  rows: SizeRow[],
  fits: FitRow[],
  to: { scaling: string; fits: string },
): Promise<void> {
  await writeParquet(to.scaling, sizeTable(rows), {
    metadata: { paper_claim: PAPER_CLAIM, fits_file: RESULTS_FILES.scalingFits },
  });
  await writeParquet(to.fits, fitTable(fits), {
    metadata: Object.fromEntries(
      fits.map((f) => [`verdict_${f.architecture}_${f.init}_${f.statistic}`, f.verdict]),
    ),
  });
}

/**
 * One line per (architecture, init, size), the analysis notes, the paper's claim and each fit's
 * verdict.
 */
function logScaling(rows: SizeRow[], fits: FitRow[], notes: string[]): void {
  for (const r of rows) {
    const st = r.stats;
    log(
      `scaling: ${r.architecture} ${r.init} f${r.size} (${r.replicates} SAE${
        r.replicates > 1 ? "s" : ""
      }): ` +
        `L0 ${intervalText(st.l0, 1)}, fve ${intervalText(st.fve)}, dead ${
          intervalText(st.dead_fraction)
        }, ${r.deadOrUltraLowLabel} ${intervalText(st.dead_or_ultra_low_fraction)}` +
        (r.lossRecovered === null ? "" : `, loss recovered ${r.lossRecovered.toFixed(3)}`),
    );
  }
  for (const n of notes) log(`scaling: ${n}`);
  log(
    `scaling: paper: L0 roughly constant with size, dead / ultra-low share grows with size.`,
  );
  for (const f of fits) {
    log(`scaling: ${f.architecture} ${f.init}, ${f.statistic}: ${f.verdict}`);
  }
}

const PAPER_CLAIM = "the number of active features (L0) stays roughly constant with size; " +
  "the fraction of dead / ultra-low features (density < 1e-6) grows with size";

/**
 * A table with explicit column types (float64, int32, utf8, bool, nulls allowed), so that a column
 * that is null in every row (no interval with two sizes) keeps its type; non-finite numbers are null.
 */
function typedTable(rows: Record<string, number | string | boolean | null>[]): arrow.Table {
  const cols: Record<string, arrow.Vector> = {};
  for (const key of Object.keys(rows[0] ?? {})) {
    const vals = rows.map((r) => r[key]);
    const kind = vals.map((v) => typeof v).find((t) => t !== "object") ?? "number";
    if (kind === "string") cols[key] = arrow.vectorFromArray(vals, new arrow.Utf8());
    else if (kind === "boolean") cols[key] = arrow.vectorFromArray(vals, new arrow.Bool());
    else {
      const nums = vals.map((v) => typeof v === "number" && Number.isFinite(v) ? v : null);
      const ints = INT_COLUMNS.has(key);
      cols[key] = arrow.vectorFromArray(nums, ints ? new arrow.Int32() : new arrow.Float64());
    }
  }
  return new arrow.Table(cols);
}

const INT_COLUMNS = new Set([
  "size",
  "replicates",
  "heldout_tokens",
  "df",
  "n",
  "saes",
  "replicates_min",
  "replicates_max",
]);

/**
 * scaling.parquet: one row per (architecture, init, size), every statistic as mean, interval,
 * min and max.
 */
function sizeTable(rows: SizeRow[]): arrow.Table {
  return typedTable(rows.map((r) => ({
    architecture: r.architecture,
    init: r.init,
    size: r.size,
    replicates: r.replicates,
    names: r.names,
    seeds: r.seeds,
    heldout_tokens: r.heldoutTokens,
    resolution: r.resolution,
    ultra_low_threshold: r.ultraLowThreshold,
    ultra_low_resolved: r.ultraLowResolved,
    dead_or_ultra_low_label: r.deadOrUltraLowLabel,
    interval: r.stats.l0.kind,
    level: 0.95,
    ...Object.fromEntries(SIZE_STATS.flatMap((k) => {
      const m = r.stats[k];
      return [
        [`${k}_mean`, m.mean],
        [`${k}_ci_low`, m.low],
        [`${k}_ci_high`, m.high],
        [`${k}_min`, m.min],
        [`${k}_max`, m.max],
      ];
    })),
    primary: r.primary,
    loss_recovered: r.lossRecovered,
  })));
}

/** scaling_fits.parquet: one row per (architecture, init, statistic) line fit. */
function fitTable(fits: FitRow[]): arrow.Table {
  return typedTable(fits.map((f) => ({
    architecture: f.architecture,
    init: f.init,
    statistic: f.statistic,
    role: f.role,
    response: f.response,
    predictor: f.predictor,
    method: f.method,
    slope: f.fit.slope,
    intercept: f.fit.intercept,
    se: f.fit.se,
    intercept_se: f.fit.interceptSe,
    residual_sd: f.fit.residualSd,
    df: f.fit.df,
    level: f.fit.level,
    t_crit: f.fit.tCrit,
    ci_low: f.fit.ciLow,
    ci_high: f.fit.ciHigh,
    r2: f.fit.r2,
    n: f.fit.n,
    saes: f.saes,
    replicates_min: f.replicatesMin,
    replicates_max: f.replicatesMax,
    x_mean: f.fit.xMean,
    sxx: f.fit.sxx,
    resolution: f.resolution,
    trend: f.trend,
    verdict: f.verdict,
  })));
}
