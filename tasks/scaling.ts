/**
 * How L0, the dead / ultra-low fraction and the variance explained scale with SAE size, per
 * (architecture, initialisation) and pooled over replicate SAEs, and every plot of the run.
 *
 *   deno task scaling --preset demo
 *
 * Runs the features stage first if it is out of date. Reads results/<run>/sae/summary.parquet (one
 * row per trained SAE), every SAE's feature_stats.parquet, features_summary.parquet (loss
 * recovered of the SAEs the features stage read), the primary SAEs' metrics.parquet and the transformer's
 * loss.parquet. Writes
 * - results/<run>/scaling.parquet: one row per (architecture, init, size): replicates, held-out tokens and the
 *   density resolution, and for L0, fve, dead fraction, dead-or-ultra-low fraction and alive
 *   fraction the mean, 95% t interval over replicates (the single value when there is one), min
 *   and max; loss recovered of the primary SAE;
 * - results/<run>/scaling_fits.parquet: one row per (architecture, init, statistic): the OLS fit
 *   of log10 L0, of the dead-or-ultra-low fraction and (descriptive) of log10 alive fraction and
 *   of fve on log10 size, with
 *   slope, SE, df, Student-t 95% CI, R², n and the verdict (mod/scaling/scaling.ts says why these);
 * - results/<run>/plots/*.svg (and .png where headless Chromium is available): density_overlay,
 *   density_f<N>, log_density_f<largest> (primary SAEs), scaling, transformer_loss, sae_metrics.
 *
 * @module
 */
import {
  CONFIG_OPTIONS,
  configSources,
  loadConfig,
  lockRun,
  parseTaskArgs,
  type RunConfig,
  runMain,
  setTopStage,
  type StageResult,
  type TaskSpec,
} from "../mod/run/mod.ts";
import { runScalingStage } from "../mod/scaling/stage.ts";

export { PLOT_NAMES } from "../mod/plot/mod.ts";

export const SPEC: TaskSpec = {
  name: "scaling",
  summary: "Fit how feature density scales with SAE size, and draw every plot of the run",
  details: "Writes results/<run>/scaling.parquet and results/<run>/plots/.",
  options: {
    ...CONFIG_OPTIONS,
    "no-png": { type: "boolean", description: "Write SVG only (no headless Chromium)" },
  },
};

/**
 * The scaling stage (mod/scaling/stage.ts), plots included (mod/plot/run_plots.ts): upstream
 * stages first, skipped when its outputs are current.
 */
export async function run(
  cfg: RunConfig,
  opts: { force?: boolean; png?: boolean } = {},
): Promise<StageResult> {
  return await runScalingStage(cfg, opts);
}

export async function main(args: string[] = Deno.args): Promise<void> {
  const { values } = parseTaskArgs(SPEC, args);
  setTopStage(SPEC.name);
  const cfg = await loadConfig(configSources(values));
  await lockRun(cfg, SPEC.name);
  await run(cfg, { force: values.force as boolean, png: !values["no-png"] });
}

if (import.meta.main) await runMain(main);
