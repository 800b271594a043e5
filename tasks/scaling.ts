/**
 * How density scales with SAE size, across the run's SAEs, and every plot of the run.
 *
 *   deno task scaling --preset demo
 *
 * Runs the features stage first if it is out of date. Reads results/<run>/sae/summary.parquet,
 * features_summary.parquet, each size's feature_stats.parquet and metrics.parquet, and the
 * transformer's loss.parquet. Writes results/<run>/scaling.parquet (per size: features, alive and
 * its fraction, dead fraction, mean L0, variance explained, loss recovered; and the least-squares
 * fit of log10 fraction-alive on log10 size: slope, intercept, R², bootstrap 95% CI on the slope,
 * and whether it agrees with the paper's slope of -1) and results/<run>/plots/*.svg (and .png
 * where headless Chromium is available): density_overlay, density_f<N>, log_density_f<largest>,
 * scaling, transformer_loss, sae_metrics.
 *
 * @module
 */
import * as arrow from "apache-arrow";
import { join } from "node:path";
import { CONFIG_OPTIONS, log, parseTaskArgs, runMain, type TaskSpec } from "../mod/cli.ts";
import { configSources, loadConfig, pick, type RunConfig } from "../mod/config.ts";
import { readParquet, writeParquet } from "../mod/parquet.ts";
import { runPaths } from "../mod/paths.ts";
import { runStage, setTopStage, type StageResult } from "../mod/stage.ts";
import { densityHistogram } from "../mod/density.ts";
import { agreesWithPaper, fitPowerLaw } from "../mod/fit.ts";
import {
  densityChart,
  densityOverlayChart,
  logDensityChart,
  lossCurveChart,
  saeMetricsChart,
  scalingChart,
  writeCharts,
} from "../mod/plot.ts";
import * as features from "./features.ts";
import { SAE_FILES } from "./sae.ts";

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
  await features.run(cfg);
  const paths = runPaths(cfg);
  const saeRoot = join(paths.results, "sae");
  const plotsDir = join(paths.results, "plots");
  const sizes = [...cfg.sae.sizes].sort((a, b) => a - b);
  const largest = sizes.at(-1)!;
  const inputs = [
    join(saeRoot, "summary.parquet"),
    join(saeRoot, "features_summary.parquet"),
    join(paths.transformerDir, "loss.parquet"),
    ...sizes.flatMap((
      n,
    ) => [join(paths.saeDir(n), SAE_FILES.featureStats), join(paths.saeDir(n), SAE_FILES.metrics)]),
  ];
  const plots = [...PLOT_NAMES, ...sizes.map((n) => `density_f${n}`), `log_density_f${largest}`];
  return await runStage({
    name: "scaling",
    dir: paths.results,
    inputs,
    params: { ...pick(cfg, ["seed", "features"]), png: opts.png ?? true },
    source: import.meta.url,
    outputs: [paths.scaling, ...plots.map((p) => join(plotsDir, `${p}.svg`))],
    force: opts.force,
    run: async () => {
      const summary = await readParquet(join(saeRoot, "summary.parquet"));
      const featSummary = await readParquet(join(saeRoot, "features_summary.parquet"));
      const bySize = new Map(numbers(summary, "size").map((n, i) => [n, i]));
      const featBySize = new Map(numbers(featSummary, "size").map((n, i) => [n, i]));
      const rows = [];
      const hists = [];
      let largestDensities: number[] = [];
      let nTokens = 0;
      for (const n of sizes) {
        const i = bySize.get(n), j = featBySize.get(n);
        if (i === undefined || j === undefined) {
          throw new Error(`No summary row for SAE size ${n}: rerun the sae stage`);
        }
        const stats = await readParquet(join(paths.saeDir(n), SAE_FILES.featureStats), {
          columns: ["count", "density"],
        });
        const counts = numbers(stats, "count");
        nTokens = numbers(summary, "heldout_tokens")[i];
        const alive = counts.filter((c) => c > 0).length;
        hists.push({
          size: n,
          hist: densityHistogram(counts, nTokens, {
            ultraLow: cfg.features.ultraLow,
            binsPerDecade: cfg.features.binsPerDecade,
          }),
        });
        if (n === largest) largestDensities = numbers(stats, "density");
        rows.push({
          size: n,
          alive,
          alive_fraction: alive / n,
          dead_fraction: 1 - alive / n,
          l0: numbers(summary, "l0")[i],
          fve: numbers(summary, "fve")[i],
          loss_recovered: numbers(featSummary, "loss_recovered")[j],
          heldout_tokens: nTokens,
          resolution: 1 / nTokens,
        });
      }
      // Two readings of the paper's claim: the fraction of features alive at all (the issue's
      // "fraction nonzero") and the fraction active on a token, L0 / size ("the number of active
      // features stays roughly constant" makes it fall as 1 / size).
      const usable = rows.filter((r) => r.alive > 0);
      const fit = usable.length >= 2
        ? fitPowerLaw(usable.map((r) => r.size), usable.map((r) => r.alive_fraction), {
          seed: cfg.seed,
        })
        : null;
      const withL0 = rows.filter((r) => r.l0 > 0);
      const activeFit = withL0.length >= 2
        ? fitPowerLaw(withL0.map((r) => r.size), withL0.map((r) => r.l0 / r.size), {
          seed: cfg.seed,
        })
        : null;
      const tooFew = "inconclusive: fewer than two SAE sizes to fit";
      const verdict = fit ? agreesWithPaper(fit) : tooFew;
      const activeVerdict = activeFit ? agreesWithPaper(activeFit) : tooFew;
      const table = arrow.tableFromJSON(rows.map((r) => ({
        ...r,
        active_fraction: r.l0 / r.size,
        fit_slope: fit?.slope ?? null,
        fit_intercept: fit?.intercept ?? null,
        fit_r2: fit?.r2 ?? null,
        fit_slope_ci_low: fit?.ci.low ?? null,
        fit_slope_ci_high: fit?.ci.high ?? null,
        fit_predicted_alive_fraction: fit
          ? 10 ** (fit.intercept + fit.slope * Math.log10(r.size))
          : null,
        verdict,
        active_fit_slope: activeFit?.slope ?? null,
        active_fit_intercept: activeFit?.intercept ?? null,
        active_fit_r2: activeFit?.r2 ?? null,
        active_fit_slope_ci_low: activeFit?.ci.low ?? null,
        active_fit_slope_ci_high: activeFit?.ci.high ?? null,
        active_verdict: activeVerdict,
      })));
      await writeParquet(paths.scaling, table, {
        metadata: {
          verdict,
          active_verdict: activeVerdict,
          paper_claim:
            "fraction of nonzero features ~ 1 / size (slope -1); active features per token roughly constant",
        },
      });
      for (const r of rows) {
        log(
          `scaling: f${r.size}: alive ${r.alive} (${(100 * r.alive_fraction).toFixed(1)}%), L0 ${
            r.l0.toFixed(1)
          } ` +
            `(${(100 * r.l0 / r.size).toFixed(3)}% of features per token), fve ${
              r.fve.toFixed(3)
            }, ` +
            `loss recovered ${r.loss_recovered.toFixed(3)} [dead = no firing in ${nTokens} tokens]`,
        );
      }
      for (const [label, f] of [["alive fraction", fit], ["L0 / size", activeFit]] as const) {
        if (!f) continue;
        log(
          `scaling: log10(${label}) = ${f.intercept.toFixed(3)} + ${
            f.slope.toFixed(3)
          } log10(size); ` +
            `R² ${f.r2.toFixed(3)}; slope 95% CI [${f.ci.low.toFixed(3)}, ${f.ci.high.toFixed(3)}]`,
        );
      }
      log(`scaling: paper: fraction nonzero ~ 1/size, active features roughly constant.`);
      log(`scaling: this run, fraction of features alive: ${verdict}`);
      log(`scaling: this run, fraction active per token (L0 / size): ${activeVerdict}`);

      // Plots.
      const lossRows = (await readParquet(join(paths.transformerDir, "loss.parquet"))).toArray()
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
            rows.map((r) => ({
              size: r.size,
              aliveFraction: r.alive_fraction,
              alive: r.alive,
              l0: r.l0,
            })),
            fit ?? undefined,
            activeFit ?? undefined,
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
      return { verdict, activeVerdict, fit, activeFit, rows };
    },
  });
}

export async function main(args: string[] = Deno.args): Promise<void> {
  const { values } = parseTaskArgs(SPEC, args);
  setTopStage(SPEC.name);
  const cfg = await loadConfig(configSources(values));
  await run(cfg, { force: values.force as boolean, png: !values["no-png"] });
}

if (import.meta.main) await runMain(main);
