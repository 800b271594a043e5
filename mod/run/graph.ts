/**
 * The stage graph, declared once: each stage of the pipeline, the stages upstream of it, the
 * config sections it reads and its task file. The sweep runs STAGES in this order; a stage's
 * run() brings its upstream stages up to date through `runUpstream` (make-style: each skips
 * itself when current), so tasks never import tasks; and a stage's source hash is the hash of its
 * own task's import graph (`stageSourceHash`), which holds the libraries it uses and not the
 * upstream tasks' code, so a log-line edit in tasks/train.ts reruns train only.
 *
 * Upstream stages are loaded with a computed import specifier: the hash walk (mod/run/hash.ts)
 * follows literal relative imports only, so no stage's hash reaches another stage's task.
 *
 * @module
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { RunConfig } from "./config_types.ts";
import { hashSource } from "./hash.ts";
import { PROJECT_ROOT } from "./layout.ts";

/** The pipeline's stages, in the order the sweep runs them. */
export const STAGE_NAMES = [
  "mix",
  "tokenize",
  "train",
  "activations",
  "sae",
  "features",
  "steer",
  "autointerp",
  "scaling",
  "report",
] as const;

export type StageName = typeof STAGE_NAMES[number];

export interface StageNode {
  /** The stage, also its deno.json task name and its manifest's name. */
  name: StageName;
  /** Stages whose outputs this one reads; run (or skipped as current) before it, in this order. */
  upstream: readonly StageName[];
  /** The config sections the stage reads: its parameter hash covers these (and its own flags). */
  sections: readonly (keyof RunConfig)[];
}

/** Every stage with its upstream stages and config sections, keyed by name. */
export const STAGES: { readonly [K in StageName]: StageNode & { name: K } } = {
  mix: { name: "mix", upstream: [], sections: ["seed", "mix"] },
  tokenize: { name: "tokenize", upstream: ["mix"], sections: ["seed", "tokenize"] },
  train: {
    name: "train",
    upstream: ["tokenize"],
    sections: ["seed", "model", "train", "tokenize"],
  },
  activations: { name: "activations", upstream: ["train"], sections: ["seed", "activations"] },
  // "activations": with activations.store = "stream" the SAE stage computes its own rows.
  sae: { name: "sae", upstream: ["activations"], sections: ["seed", "activations", "sae"] },
  features: { name: "features", upstream: ["sae"], sections: ["seed", "features"] },
  steer: { name: "steer", upstream: ["features"], sections: ["seed", "steer"] },
  autointerp: { name: "autointerp", upstream: ["features"], sections: ["seed", "autointerp"] },
  scaling: { name: "scaling", upstream: ["features"], sections: ["seed", "features"] },
  // Steering samples are not upstream of scaling; the report builds them too so that the browser
  // can show them.
  report: { name: "report", upstream: ["steer", "scaling"], sections: ["run", "sae", "features"] },
};

/** The task file of a stage, relative to the project root: tasks/<stage>.ts. */
export function stageTask(name: StageName): string {
  return `tasks/${name}.ts`;
}

/** The task file's URL under `root` (the project by default): the entry of its source hash. */
export function stageSource(name: StageName, root: string = PROJECT_ROOT): URL {
  return pathToFileURL(join(root, stageTask(name)));
}

/** The stage's source hash: its task file and the project modules it imports, transitively. */
export async function stageSourceHash(
  name: StageName,
  root: string = PROJECT_ROOT,
): Promise<string> {
  return await hashSource(stageSource(name, root), root);
}

/** The config sections a stage reads, picked from the run config (its parameter hash input). */
export function stageParams(cfg: RunConfig, name: StageName): Partial<RunConfig> {
  return Object.fromEntries(STAGES[name].sections.map((k) => [k, cfg[k]])) as Partial<RunConfig>;
}

/** Options passed on to upstream stages (never --force: that reruns the asked-for stage only). */
export interface UpstreamOptions {
  backend?: string;
}

interface StageModule {
  run(cfg: RunConfig, opts: UpstreamOptions): Promise<unknown>;
}

/** Brings `names` up to date for this config, in order, each with its own upstream first. */
export async function runStages(
  names: readonly StageName[],
  cfg: RunConfig,
  opts: UpstreamOptions = {},
): Promise<Partial<Record<StageName, unknown>>> {
  const results: Partial<Record<StageName, unknown>> = {};
  for (const name of names) {
    // A computed specifier on purpose: see the module header.
    const url = stageSource(name).href;
    const mod = (await import(url)) as StageModule;
    results[name] = await mod.run(cfg, { backend: opts.backend });
  }
  return results;
}

/** Brings the stages upstream of `name` up to date for this config (see STAGES); their results. */
export async function runUpstream(
  name: StageName,
  cfg: RunConfig,
  opts: UpstreamOptions = {},
): Promise<Partial<Record<StageName, unknown>>> {
  return await runStages(STAGES[name].upstream, cfg, opts);
}
