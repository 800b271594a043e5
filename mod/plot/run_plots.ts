/**
 * Every plot of a run, drawn by the scaling stage once its tables are written (`drawRunPlots`):
 * density_overlay, density_f<N> and log_density_f<largest> (primary SAEs), scaling (L0 and the
 * dead / ultra-low fraction against size, with the fits), transformer_loss and sae_metrics (the
 * training curves, read here from the transformer's loss.parquet and each primary SAE's
 * metrics.parquet). Written to <plotsDir>/<name>.svg, with .vl.json specs and, where headless
 * Chromium is available and asked for, .png.
 *
 * @module
 */
import { join } from "node:path";
import { readParquet } from "../io/mod.ts";
import {
  densityChart,
  densityOverlayChart,
  logDensityChart,
  scalingChart,
  type ScalingFitLine,
  type ScalingPoint,
  type SizedHistogram,
} from "./density.ts";
import { lossCurveChart, saeMetricsChart } from "./training.ts";
import { writeCharts, type WrittenChart } from "./plot.ts";

/** The plots drawn once per run, whatever the sizes. */
export const PLOT_NAMES = ["density_overlay", "scaling", "transformer_loss", "sae_metrics"];

/** Every plot name `drawRunPlots` writes for these SAE sizes (sorted ascending). */
export function runPlotNames(sizes: number[]): string[] {
  return [...PLOT_NAMES, ...sizes.map((n) => `density_f${n}`), `log_density_f${sizes.at(-1)!}`];
}

/** What the run's plots are drawn from; the training curves are read from the files named. */
export interface RunPlotInputs {
  /** Held-out density histograms of the primary SAEs, by ascending size. */
  hists: SizedHistogram[];
  /** The largest size, and its primary SAE's per-feature densities over `nTokens` tokens. */
  largest: number;
  largestDensities: number[];
  nTokens: number;
  binsPerDecade: number;
  /** Every SAE of the sweep on the scaling chart, with the L0 and dead / ultra-low fits. */
  points: ScalingPoint[];
  fits: ScalingFitLine[];
  deadLabel: string;
  /** The legend's title for the groups the points are coloured by (default "initialisation"). */
  groupTitle?: string;
  /** The transformer's loss.parquet. */
  transformerLoss: string;
  /** Each primary SAE's metrics.parquet, by ascending size. */
  saeMetrics: { size: number; path: string }[];
}

/** Draws and writes every plot of the run into `plotsDir`; what was written, in order. */
export async function drawRunPlots(
  plotsDir: string,
  inputs: RunPlotInputs,
  opts: { png: boolean },
): Promise<WrittenChart[]> {
  const lossRows = (await readParquet(inputs.transformerLoss)).toArray()
    .map((r) => ({
      step: Number(r.step),
      train_loss: Number(r.train_loss),
      val_loss: r.val_loss === null ? null : Number(r.val_loss),
    }));
  const saeSeries = [];
  for (const { size, path } of inputs.saeMetrics) {
    const m = await readParquet(path);
    saeSeries.push({
      size,
      rows: m.toArray().map((r) => ({
        step: Number(r.step),
        mse: Number(r.mse),
        l0: Number(r.l0),
        dead_fraction: Number(r.dead_fraction),
      })),
    });
  }
  const { hists, largest } = inputs;
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
      chart: await logDensityChart(largest, inputs.largestDensities, {
        nTokens: inputs.nTokens,
        binsPerDecade: inputs.binsPerDecade,
      }),
    },
    {
      path: join(plotsDir, "scaling"),
      chart: await scalingChart(inputs.points, inputs.fits, {
        deadLabel: inputs.deadLabel,
        groupTitle: inputs.groupTitle,
      }),
    },
    {
      path: join(plotsDir, "transformer_loss"),
      chart: await lossCurveChart(lossRows, "Transformer loss"),
    },
    { path: join(plotsDir, "sae_metrics"), chart: await saeMetricsChart(saeSeries) },
  ];
  return await writeCharts(charts, { png: opts.png, spec: true });
}
