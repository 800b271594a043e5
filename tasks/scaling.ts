/**
 * How L0 and the dead / ultra-low fraction scale with SAE size, per initialisation and pooled over
 * replicate SAEs, and every plot of the run.
 *
 *   deno task scaling --preset demo
 *
 * Runs the features stage first if it is out of date. Reads results/<run>/sae/summary.parquet (one
 * row per trained SAE), every SAE's feature_stats.parquet, features_summary.parquet (loss
 * recovered of the primary SAEs f<N>), the primary SAEs' metrics.parquet and the transformer's
 * loss.parquet. Writes
 * - results/<run>/scaling.parquet: one row per (init, size): replicates, held-out tokens and the
 *   density resolution, and for L0, fve, dead fraction, dead-or-ultra-low fraction and alive
 *   fraction the mean, 95% t interval over replicates (the single value when there is one), min
 *   and max; loss recovered of the primary SAE;
 * - results/<run>/scaling_fits.parquet: one row per (init, statistic): the OLS fit of log10 L0, of
 *   the dead-or-ultra-low fraction and (descriptive) of log10 alive fraction on log10 size, with
 *   slope, SE, df, Student-t 95% CI, R², n and the verdict (mod/scaling/scaling.ts says why these);
 * - results/<run>/plots/*.svg (and .png where headless Chromium is available): density_overlay,
 *   density_f<N>, log_density_f<largest> (primary SAEs), scaling, transformer_loss, sae_metrics.
 *
 * @module
 */
import { RESULTS_FILES, runUpstream, SAE_FILES, stageParams, stageSource } from "../mod/run/mod.ts";
import * as arrow from "apache-arrow";
import { join } from "node:path";
import { CONFIG_OPTIONS, log, parseTaskArgs, runMain, type TaskSpec } from "../mod/run/mod.ts";
import { configSources, loadConfig, lockRun, type RunConfig } from "../mod/run/mod.ts";
import { readParquet, writeParquet } from "../mod/io/mod.ts";
import { runPaths } from "../mod/run/mod.ts";
import { runStage, setTopStage, type StageResult } from "../mod/run/mod.ts";
import { densityHistogram } from "../mod/features/mod.ts";
import {
  analyseScaling,
  deadOrUltraLowLabel,
  type FitRow,
  intervalText,
  readSaeSummary,
  type SaeScalingInput,
  SIZE_STATS,
  type SizeRow,
} from "../mod/scaling/mod.ts";
import {
  densityChart,
  densityOverlayChart,
  logDensityChart,
  lossCurveChart,
  saeMetricsChart,
  scalingChart,
  type ScalingFitLine,
  type SizedHistogram,
  writeCharts,
} from "../mod/plot/mod.ts";

export const SPEC: TaskSpec = {
  name: "scaling",
  summary: "Fit how feature density scales with SAE size, and draw every plot of the run",
  details: "Writes results/<run>/scaling.parquet and results/<run>/plots/.",
  options: {
    ...CONFIG_OPTIONS,
    "no-png": { type: "boolean", description: "Write SVG only (no headless Chromium)" },
  },
};

/** Column of a Parquet table as plain numbers. */
function numbers(t: arrow.Table, name: string): number[] {
  return Array.from(t.getChild(name)!.toArray() as ArrayLike<number>, Number);
}

export const PLOT_NAMES = ["density_overlay", "scaling", "transformer_loss", "sae_metrics"];

export async function run(
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
    { init: (cfg.sae as { inits?: string[] }).inits?.[0], seed: cfg.seed },
    `SAE summary "${summaryPath}"`,
  );
  const inputs = [
    summaryPath,
    paths.featuresSummary,
    paths.transformer.loss,
    ...saes.map((s) => join(saeRoot, s.name, SAE_FILES.featureStats)),
    ...sizes.map((n) => join(paths.saeDir(n), SAE_FILES.metrics)),
  ];
  const plots = [...PLOT_NAMES, ...sizes.map((n) => `density_f${n}`), `log_density_f${largest}`];
  return await runStage({
    name: "scaling",
    dir: paths.results,
    inputs,
    params: { ...stageParams(cfg, "scaling"), png: opts.png ?? true },
    source: stageSource("scaling"),
    outputs: [paths.scaling, fitsPath, ...plots.map((p) => join(plotsDir, `${p}.svg`))],
    force: opts.force,
    run: async () => {
      const featSummary = await readParquet(paths.featuresSummary);
      const recovered = new Map(
        numbers(featSummary, "size").map((n, j) => [n, numbers(featSummary, "loss_recovered")[j]]),
      );
      // Per SAE: the dead or ultra-low count from its feature_stats, and the histograms of the
      // primary SAEs (f<N>) for the density plots.
      const inputsBySae: SaeScalingInput[] = [];
      const hists: SizedHistogram[] = [];
      let largestDensities: number[] = [];
      let nTokens = 0;
      for (const s of saes) {
        const statsPath = join(saeRoot, s.name, SAE_FILES.featureStats);
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
          lossRecovered: primary ? recovered.get(s.size) ?? null : null,
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

      const { sizes: rows, fits, notes } = analyseScaling(inputsBySae, {
        ultraLow: cfg.features.ultraLow,
      });
      await writeParquet(paths.scaling, sizeTable(rows), {
        metadata: { paper_claim: PAPER_CLAIM, fits_file: RESULTS_FILES.scalingFits },
      });
      await writeParquet(fitsPath, fitTable(fits), {
        metadata: Object.fromEntries(
          fits.map((f) => [`verdict_${f.init}_${f.statistic}`, f.verdict]),
        ),
      });

      for (const r of rows) {
        const st = r.stats;
        log(
          `scaling: ${r.init} f${r.size} (${r.replicates} SAE${r.replicates > 1 ? "s" : ""}): ` +
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
      for (const f of fits) log(`scaling: ${f.init}, ${f.statistic}: ${f.verdict}`);

      // Plots.
      const lossRows = (await readParquet(paths.transformer.loss)).toArray()
        .map((r) => ({
          step: Number(r.step),
          train_loss: Number(r.train_loss),
          val_loss: r.val_loss === null ? null : Number(r.val_loss),
        }));
      const saeSeries = [];
      for (const n of sizes) {
        const m = await readParquet(join(paths.saeDir(n), SAE_FILES.metrics));
        saeSeries.push({
          size: n,
          rows: m.toArray().map((r) => ({
            step: Number(r.step),
            mse: Number(r.mse),
            l0: Number(r.l0),
            dead_fraction: Number(r.dead_fraction),
          })),
        });
      }
      const worstTokens = Math.min(...saes.map((s) => s.heldoutTokens));
      const charts = [
        { path: join(plotsDir, "density_overlay"), chart: await densityOverlayChart(hists) },
        ...await Promise.all(
          hists.map(async (h) => ({
            path: join(plotsDir, `density_f${h.size}`),
            chart: await densityChart(h.size, h.hist),
          })),
        ),
        {
          path: join(plotsDir, `log_density_f${largest}`),
          chart: await logDensityChart(largest, largestDensities, {
            nTokens,
            binsPerDecade: cfg.features.binsPerDecade,
          }),
        },
        {
          path: join(plotsDir, "scaling"),
          chart: await scalingChart(
            inputsBySae.map((s) => ({
              name: s.name,
              init: s.init,
              size: s.size,
              l0: s.l0,
              deadOrUltraLowFraction: s.deadOrUltraLow / s.size,
            })),
            fits.filter((f): f is typeof f & { statistic: ScalingFitLine["statistic"] } =>
              f.statistic !== "alive_fraction"
            ),
            { deadLabel: deadOrUltraLowLabel(worstTokens, cfg.features.ultraLow) },
          ),
        },
        {
          path: join(plotsDir, "transformer_loss"),
          chart: await lossCurveChart(lossRows, "Transformer loss"),
        },
        { path: join(plotsDir, "sae_metrics"), chart: await saeMetricsChart(saeSeries) },
      ];
      const written = await writeCharts(charts, { png: opts.png ?? true, spec: true });
      log(
        `scaling: wrote ${written.length} plots to ${plotsDir}${
          written[0]?.png ? " (SVG and PNG)" : " (SVG)"
        }`,
      );
      return { rows, fits };
    },
  });
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

/** scaling.parquet: one row per (init, size), every statistic as mean, interval, min and max. */
function sizeTable(rows: SizeRow[]): arrow.Table {
  return typedTable(rows.map((r) => ({
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

/** scaling_fits.parquet: one row per (init, statistic) line fit. */
function fitTable(fits: FitRow[]): arrow.Table {
  return typedTable(fits.map((f) => ({
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

export async function main(args: string[] = Deno.args): Promise<void> {
  const { values } = parseTaskArgs(SPEC, args);
  setTopStage(SPEC.name);
  const cfg = await loadConfig(configSources(values));
  await lockRun(cfg, SPEC.name);
  await run(cfg, { force: values.force as boolean, png: !values["no-png"] });
}

if (import.meta.main) await runMain(main);
