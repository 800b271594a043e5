/**
 * The run layout: where a run's files live and what they are called. Every output file name and
 * the hook name are spelled here and nowhere else in mod/ or tasks/ (tests/layout_test.ts checks);
 * other modules import these names (as SAELens keeps `sae_weights.safetensors` and `cfg.json` in
 * one constants module).
 *
 * data/<run>/      inputs and intermediate datasets (mix, tokens, activations)
 * results/<run>/   models, metrics, plots, reports
 *
 * Both roots are relative to the working directory (deno task runs from the project root) unless
 * the config's dataDir / resultsDir say otherwise (tests point them at a temporary folder).
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { join } from "node:path";

/** The transformer hook whose output the activation cache holds and the SAEs read (TransformerLens). */
export const HOOK_NAME = "blocks.0.mlp.hook_post";

/** Files of data/<run>/ (mix, tokenize). */
export const DATA_FILES = {
  mix: "mix.parquet",
  composition: "composition.parquet",
  /** The resolved run config, written by mix. */
  config: "config.json",
  tokens: "tokens.parquet",
  tokenizeStats: "tokenize_stats.parquet",
} as const;

/** Files of results/<run>/transformer/ (train). */
export const TRANSFORMER_FILES = {
  weights: "model.safetensors",
  config: "config.json",
  loss: "loss.parquet",
  summary: "summary.parquet",
  checkpoint: "checkpoint.safetensors",
} as const;

/** Files of data/<run>/activations/ (activations), besides the training shards. */
export const ACTIVATION_FILES = {
  heldout: "heldout.parquet",
  stats: "stats.parquet",
  progress: "progress.json",
} as const;

/** The name of training shard i of the activation cache: train-00000.parquet, ... */
export function trainShardName(i: number): string {
  return `train-${String(i).padStart(5, "0")}.parquet`;
}

/**
 * Files inside one SAE folder results/<run>/sae/f<N>/, whichever stage writes them (SAE_STAGE_FILES
 * says which): weights named as the design card says, SAELens's cfg.json.
 */
export const SAE_FILES = {
  weights: "sae.safetensors",
  cfg: "cfg.json",
  metrics: "metrics.parquet",
  resamples: "resamples.parquet",
  featureStats: "feature_stats.parquet",
  histogram: "density_histogram.parquet",
  examples: "examples.parquet",
  logits: "logits.parquet",
  lossRecovered: "loss_recovered.parquet",
  steering: "steering.parquet",
  explanations: "explanations.parquet",
} as const;

export type SaeFile = keyof typeof SAE_FILES;

/** Which stage writes which files of an SAE folder. */
export const SAE_STAGE_FILES = {
  sae: ["weights", "cfg", "metrics", "resamples", "featureStats"],
  features: ["histogram", "examples", "logits", "lossRecovered"],
  steer: ["steering"],
  autointerp: ["explanations"],
} as const satisfies Record<string, readonly SaeFile[]>;

/** Files of results/<run>/sae/ beside the SAE folders. */
export const SAE_ROOT_FILES = {
  /** One row per SAE (sae stage). */
  summary: "summary.parquet",
  /** One row per primary SAE (features stage). */
  featuresSummary: "features_summary.parquet",
  /** The sae stage's resume point, in its checkpoint folder: one file, metrics rows included. */
  sweepStateTensors: "sweep_state.safetensors",
  /** A readable copy of the checkpoint's scalars, written after it; resume never reads it. */
  sweepStateJson: "sweep_state.json",
} as const;

/** Files of results/<run>/ (scaling, report). */
export const RESULTS_FILES = {
  scaling: "scaling.parquet",
  /** The per-fit companion of scaling.parquet. */
  scalingFits: "scaling_fits.parquet",
  plotsDir: "plots",
  reportDir: "report",
  reportIndex: "index.html",
} as const;

/** The run lock, in data/<run>/ and results/<run>/: who runs a stage on the run now. */
export const RUN_LOCK = "run.lock";

/** A stage's manifest file name, beside its outputs. */
export function manifestName(stage: string): string {
  return `${stage}.manifest.json`;
}

export interface RunPaths {
  data: string;
  results: string;
  mix: string;
  composition: string;
  tokens: string;
  /** data/<run>/config.json: the resolved config. */
  runConfig: string;
  tokenizeStats: string;
  transformerDir: string;
  /** results/<run>/transformer/<file>. */
  transformer: { [K in keyof typeof TRANSFORMER_FILES]: string };
  activationsDir: string;
  /** data/<run>/activations/<file>. */
  activations: { [K in keyof typeof ACTIVATION_FILES]: string };
  /** results/<run>/sae/ */
  saeRoot: string;
  /** results/<run>/sae/summary.parquet */
  saeSummary: string;
  /** results/<run>/sae/features_summary.parquet */
  featuresSummary: string;
  /**
   * An SAE's folder, results/<run>/sae/<saeDirName(features, slot)>: no slot (or a slot marked
   * primary, as saeSlots() marks them) = the primary f<N>.
   */
  saeDir: (features: number, slot?: SaeSlotId) => string;
  /** The folder of a slot from saeSlots(): results/<run>/sae/<slot.name>. */
  slotDir: (slot: { name: string }) => string;
  /** A file of an SAE's folder (see saeDir for `slot`). */
  saeFile: (features: number, file: SaeFile, slot?: SaeSlotId) => string;
  scaling: string;
  scalingFits: string;
  plotsDir: string;
  reportDir: string;
  reportIndex: string;
}

export function runPaths(cfg: { run: string; dataDir: string; resultsDir: string }): RunPaths {
  const data = join(cfg.dataDir, cfg.run);
  const results = join(cfg.resultsDir, cfg.run);
  const transformerDir = join(results, "transformer");
  const activationsDir = join(data, "activations");
  const saeRoot = join(results, "sae");
  const reportDir = join(results, RESULTS_FILES.reportDir);
  const saeDir = (features: number, slot?: SaeSlotId) => join(saeRoot, saeDirName(features, slot));
  return {
    data,
    results,
    mix: join(data, DATA_FILES.mix),
    composition: join(data, DATA_FILES.composition),
    runConfig: join(data, DATA_FILES.config),
    tokens: join(data, DATA_FILES.tokens),
    tokenizeStats: join(data, DATA_FILES.tokenizeStats),
    transformerDir,
    transformer: inDir(transformerDir, TRANSFORMER_FILES),
    activationsDir,
    activations: inDir(activationsDir, ACTIVATION_FILES),
    saeRoot,
    saeSummary: join(saeRoot, SAE_ROOT_FILES.summary),
    featuresSummary: join(saeRoot, SAE_ROOT_FILES.featuresSummary),
    saeDir,
    slotDir: (slot: { name: string }) => join(saeRoot, slot.name),
    saeFile: (features: number, file: SaeFile, slot?: SaeSlotId) =>
      join(saeDir(features, slot), SAE_FILES[file]),
    scaling: join(results, RESULTS_FILES.scaling),
    scalingFits: join(results, RESULTS_FILES.scalingFits),
    plotsDir: join(results, RESULTS_FILES.plotsDir),
    reportDir,
    reportIndex: join(reportDir, RESULTS_FILES.reportIndex),
  };
}

function inDir<T extends Record<string, string>>(
  dir: string,
  files: T,
): { [K in keyof T]: string } {
  return Object.fromEntries(Object.entries(files).map(([k, f]) => [k, join(dir, f)])) as {
    [K in keyof T]: string;
  };
}

/** One trained SAE of a size: its init and replicate (0-based), and its architecture. */
export interface SaeSlotId {
  init: string;
  replicate: number;
  /**
   * The architecture as the config names it (relu, topk, ...). saeDirName spells it only when
   * `namedArchitecture` is set, which saeSlots does when the run trains more than one.
   */
  architecture?: string;
  namedArchitecture?: boolean;
}

/**
 * The folder name of one SAE of the sweep:
 *
 *   f<N>                      the primary SAE of size N (the first architecture, the first of
 *                             sae.inits, replicate 0): the folder that features, steer,
 *                             autointerp and report read; also when no slot is given
 *   f<N>-<init>-r<r>          every other SAE of a run with one architecture (as before
 *                             sae.architectures existed), e.g. f4096-parallel-r0
 *   f<N>-<arch>-<init>-r<r>   every other SAE of a run with several architectures, the first one
 *                             included, e.g. f4096-topk-independent-r0, f4096-relu-parallel-r1
 *
 * So a run with one architecture keeps the names it always had, and in a run with several every
 * name but the primary's says its architecture.
 */
export function saeDirName(
  features: number,
  slot?: SaeSlotId & { primary?: boolean },
): string {
  if (!slot || slot.primary) return `f${features}`;
  const arch = slot.namedArchitecture && slot.architecture ? `-${slot.architecture}` : "";
  return `f${features}${arch}-${slot.init}-r${slot.replicate}`;
}

export interface SaeSlot extends SaeSlotId {
  size: number;
  architecture: string;
  /** First architecture, first init, replicate 0: written to f<N>/. */
  primary: boolean;
  /**
   * First init, replicate 0, any architecture: the SAE of its (architecture, size) that the
   * features stage reads and the report's browser shows (the primary ones among them).
   */
  browsed: boolean;
  /** saeDirName of this slot (also its name in logs, checkpoints and summary.parquet). */
  name: string;
}

/** The SAE config keys that decide the slots (RunConfig["sae"] has them all). */
export interface SaeSweepKeys {
  sizes: number[];
  inits: string[];
  seeds: number;
  /** The single-architecture key; read only when `architectures` is absent or empty. */
  architecture?: string;
  architectures?: readonly string[];
}

/**
 * The architectures a run trains, the first being primary: sae.architectures when it lists any,
 * else [sae.architecture] (a run that never sets sae.architectures trains one, as before).
 */
export function saeArchitectures(
  sae: Pick<SaeSweepKeys, "architecture" | "architectures">,
): string[] {
  return sae.architectures && sae.architectures.length > 0
    ? [...sae.architectures]
    : [sae.architecture ?? "relu"];
}

/**
 * Every SAE the sae stage trains, one per (architecture, init, replicate, size), in that nesting
 * order: the sizes of the first architecture's first init's replicate 0, the primary SAEs, come
 * first.
 */
export function saeSlots(sae: SaeSweepKeys): SaeSlot[] {
  const out: SaeSlot[] = [];
  const archs = saeArchitectures(sae);
  const namedArchitecture = archs.length > 1;
  for (const [a, architecture] of archs.entries()) {
    for (const [i, init] of sae.inits.entries()) {
      for (let replicate = 0; replicate < sae.seeds; replicate++) {
        for (const size of sae.sizes) {
          const browsed = i === 0 && replicate === 0;
          const primary = browsed && a === 0;
          const id = { init, replicate, architecture, namedArchitecture, primary };
          out.push({ size, ...id, browsed, name: saeDirName(size, id) });
        }
      }
    }
  }
  return out;
}

/**
 * The browsed SAEs (see SaeSlot), architecture by architecture, each in the order of sae.sizes:
 * the primaries f<N> first.
 */
export function browsedSlots(sae: SaeSweepKeys): SaeSlot[] {
  return saeSlots(sae).filter((s) => s.browsed);
}

/** The project root (the folder holding deno.json), from this file's location. */
export const PROJECT_ROOT = fileURLToPath(new URL("../..", import.meta.url)).replace(/\/$/, "");

/** The folder of an installed npm package (deno.json sets nodeModulesDir to "auto"). */
export function npmPackageDir(name: string): string {
  return join(PROJECT_ROOT, "node_modules", name);
}
