/**
 * The run report: one self-contained HTML page with the run's summary and a feature browser.
 *
 *   deno task report --preset demo [--shard-size 256]
 *
 * Runs the scaling stage (and so everything upstream) first if it is out of date. Reads
 * data/<run>/composition.parquet, results/<run>/transformer/summary.parquet, the SAE and features
 * summaries, results/<run>/scaling.parquet, results/<run>/plots/*.svg and, per SAE,
 * results/<run>/sae/f<N>/{feature_stats,examples,logits}.parquet (and, with several
 * sae.architectures, the same of each other architecture's f<N>-<arch>-<init>-r0/) plus
 * steering.parquet and explanations.parquet when present. Writes results/<run>/report/index.html
 * (open it from disk: no server, no network) and results/<run>/report/data/<name>.js,
 * <name>-<k>.js per SAE folder name (loaded by the page when an SAE or a feature is selected).
 * Prints the page's path.
 *
 * @module
 */
import { browsedSlots, runUpstream, SAE_FILES, stageSource } from "../mod/run/mod.ts";
import { join, resolve } from "node:path";
import {
  CONFIG_OPTIONS,
  fmtInt,
  log,
  parseTaskArgs,
  runMain,
  type TaskSpec,
} from "../mod/run/mod.ts";
import { configSources, loadConfig, lockRun, type RunConfig } from "../mod/run/mod.ts";
import { exists } from "../mod/io/mod.ts";
import { runPaths } from "../mod/run/mod.ts";
import { runStage, setTopStage, type StageResult } from "../mod/run/mod.ts";
import { buildReport, DEFAULT_SHARD_SIZE, summaryInputs } from "../mod/report/mod.ts";

export const SPEC: TaskSpec = {
  name: "report",
  summary: "Write the run report: summary, plots and a feature browser in one HTML page",
  details: "Writes results/<run>/report/index.html and results/<run>/report/data/*.js.",
  options: {
    ...CONFIG_OPTIONS,
    "shard-size": {
      type: "string",
      arg: "N",
      description: `Features per data file the page loads at once (default ${DEFAULT_SHARD_SIZE})`,
    },
  },
};

export async function run(
  cfg: RunConfig,
  opts: { force?: boolean; shardSize?: number } = {},
): Promise<StageResult & { index: string }> {
  // Steering samples are not upstream of scaling; the graph lists both (so the browser can show them).
  await runUpstream("report", cfg);
  const paths = runPaths(cfg);
  const shardSize = opts.shardSize ?? DEFAULT_SHARD_SIZE;
  const sizes = [...cfg.sae.sizes].sort((a, b) => a - b);
  const inputs = summaryInputs(paths, sizes);
  const saes = browsedSlots(cfg.sae);
  for (const slot of saes) {
    const dir = paths.slotDir(slot);
    inputs.push(
      join(dir, SAE_FILES.featureStats),
      join(dir, SAE_FILES.examples),
      join(dir, SAE_FILES.logits),
    );
    // Optional inputs: their arrival (autointerp, steer) changes the input list and reruns this.
    for (const f of [SAE_FILES.steering, SAE_FILES.explanations]) {
      if (await exists(join(dir, f))) inputs.push(join(dir, f));
    }
  }
  const index = paths.reportIndex;
  const outputs = [
    index,
    ...saes.flatMap((slot) => [
      join(paths.reportDir, "data", `${slot.name}.js`),
      ...Array.from(
        { length: Math.ceil(slot.size / shardSize) },
        (_, k) => join(paths.reportDir, "data", `${slot.name}-${k}.js`),
      ),
    ]),
  ];
  const result = await runStage({
    name: "report",
    dir: paths.reportDir,
    inputs,
    params: {
      run: cfg.run,
      sizes,
      saes: saes.map((s) => s.name),
      quantileBins: cfg.features.quantileBins,
      shardSize,
    },
    source: stageSource("report"),
    outputs,
    force: opts.force,
    run: async () => {
      const t0 = performance.now();
      const out = await buildReport({
        run: cfg.run,
        paths,
        sizes,
        saes,
        quantileBins: cfg.features.quantileBins,
        shardSize,
      });
      const seconds = (performance.now() - t0) / 1000;
      log(
        `report: index.html ${fmtInt(out.indexBytes / 1024)} KB; ${out.files.length - 1} data ` +
          `files, ${fmtInt(out.dataBytes / 1024)} KB, for ${fmtInt(out.features)} features ` +
          `(${fmtInt(out.explained)} explained); ${seconds.toFixed(1)} s`,
      );
      return {
        index_bytes: out.indexBytes,
        data_bytes: out.dataBytes,
        data_files: out.files.length - 1,
        features: out.features,
        explained: out.explained,
        seconds,
      };
    },
  });
  log(`report: open file://${resolve(index)}`);
  return { ...result, index };
}

export async function main(args: string[] = Deno.args): Promise<void> {
  const { values } = parseTaskArgs(SPEC, args);
  setTopStage(SPEC.name);
  let shardSize: number | undefined;
  if (values["shard-size"] !== undefined) {
    shardSize = Number(values["shard-size"]);
    if (!Number.isInteger(shardSize) || shardSize < 1) {
      throw new Error(`--shard-size "${values["shard-size"]}" must be a positive integer`);
    }
  }
  const cfg = await loadConfig(configSources(values));
  await lockRun(cfg, SPEC.name);
  await run(cfg, { force: values.force as boolean, shardSize });
}

if (import.meta.main) await runMain(main);
