/**
 * The stage runner: runs a pipeline stage only when something it depends on changed.
 *
 * Beside each stage's outputs sits `<stage>.manifest.json` with hashes of its input files, of the
 * config sections it reads and of its own source (the task and the modules it imports), plus the
 * outputs' hashes, row counts, versions and timing. A stage whose inputs, parameters and source
 * hash as recorded, and whose outputs are still as it wrote them, is skipped; `--force` reruns it.
 *
 * To stay fast on multi-GB files, a file whose size and modification time match the manifest is
 * taken to have the recorded hash; any other file is hashed again.
 *
 * @module
 */
import { basename, join } from "node:path";
import { hashFile, hashJson, hashSource, pinnedDependencies } from "./hash.ts";
import { exists, readJson, writeJsonAtomic } from "../io/mod.ts";
import { log } from "./cli.ts";

export interface FileRecord {
  sha256: string;
  size: number;
  mtimeMs: number;
}

export interface Manifest {
  stage: string;
  createdAt: string;
  durationS: number;
  paramsHash: string;
  params: unknown;
  sourceHash: string;
  inputs: Record<string, FileRecord>;
  outputs: Record<string, FileRecord>;
  versions: Record<string, string>;
  stats: Record<string, unknown>;
}

export interface StageSpec {
  /** Stage name, e.g. "tokenize"; the manifest is `<dir>/<name>.manifest.json`. */
  name: string;
  dir: string;
  /** Files the stage reads (upstream outputs). */
  inputs: string[];
  /** The config sections the stage reads. */
  params: unknown;
  /** The task module's URL (import.meta.url): its import graph is hashed. */
  source: string | URL;
  /** Files the stage writes; all must exist when `run` returns. */
  outputs: string[];
  force?: boolean;
  /** Does the work; returns numbers to keep in the manifest (row counts, throughput). */
  run: () => Promise<Record<string, unknown>>;
}

export interface StageResult {
  skipped: boolean;
  manifest: Manifest;
}

let topStage: string | null = null;

/**
 * Names the stage the user asked for (a task's main() calls this), so that upstream stages that
 * are up to date skip silently while the asked-for stage still says it skipped.
 */
export function setTopStage(name: string): void {
  topStage = name;
}

export function manifestPath(dir: string, name: string): string {
  return join(dir, `${name}.manifest.json`);
}

/** Fingerprint of a file, reusing `known` when size and mtime are unchanged. */
async function fingerprint(path: string, known?: FileRecord): Promise<FileRecord | null> {
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(path);
  } catch {
    return null;
  }
  const mtimeMs = st.mtime?.getTime() ?? 0;
  if (known && known.size === st.size && known.mtimeMs === mtimeMs) return known;
  return { sha256: await hashFile(path), size: st.size, mtimeMs };
}

async function fingerprints(
  paths: string[],
  known: Record<string, FileRecord> = {},
): Promise<Record<string, FileRecord | null>> {
  const out: Record<string, FileRecord | null> = {};
  for (const p of paths) out[p] = await fingerprint(p, known[p]);
  return out;
}

/** Why the stage must run, or null when it is up to date. */
async function staleReason(
  spec: StageSpec,
  prev: Manifest | null,
  paramsHash: string,
  sourceHash: string,
): Promise<string | null> {
  if (!prev) return "no earlier run";
  if (prev.paramsHash !== paramsHash) return "config changed";
  if (prev.sourceHash !== sourceHash) return "source changed";
  const inputs = await fingerprints(spec.inputs, prev.inputs);
  for (const [p, rec] of Object.entries(inputs)) {
    if (!rec) return `input "${p}" is missing`;
    if (prev.inputs[p]?.sha256 !== rec.sha256) return `input "${basename(p)}" changed`;
  }
  if (Object.keys(prev.inputs).sort().join() !== [...spec.inputs].sort().join()) {
    return "inputs changed";
  }
  const outputs = await fingerprints(spec.outputs, prev.outputs);
  for (const [p, rec] of Object.entries(outputs)) {
    if (!rec) return `output "${basename(p)}" is missing`;
    if (prev.outputs[p]?.sha256 !== rec.sha256) return `output "${basename(p)}" was modified`;
  }
  return null;
}

export async function readManifest(dir: string, name: string): Promise<Manifest | null> {
  const path = manifestPath(dir, name);
  if (!(await exists(path))) return null;
  try {
    return await readJson<Manifest>(path);
  } catch {
    return null; // an unreadable manifest only means the stage reruns
  }
}

/** Runs the stage unless it is up to date; returns its manifest either way. */
export async function runStage(spec: StageSpec): Promise<StageResult> {
  const paramsHash = hashJson(spec.params);
  const sourceHash = await hashSource(spec.source);
  const prev = await readManifest(spec.dir, spec.name);
  const reason = spec.force ? "--force" : await staleReason(spec, prev, paramsHash, sourceHash);
  if (reason === null && prev) {
    if (topStage === null || spec.name.startsWith(topStage)) {
      log(`${spec.name}: up to date, skipped (${spec.dir}; --force reruns it)`);
    }
    return { skipped: true, manifest: prev };
  }
  for (const p of spec.inputs) {
    if (!(await exists(p))) throw new Error(`Cannot run ${spec.name}: input "${p}" does not exist`);
  }
  log(`${spec.name}: running (${reason})`);
  const inputs = await fingerprints(spec.inputs);
  const t0 = performance.now();
  const stats = await spec.run();
  const durationS = (performance.now() - t0) / 1000;
  const outputs = await fingerprints(spec.outputs);
  for (const [p, rec] of Object.entries(outputs)) {
    if (!rec) throw new Error(`Stage ${spec.name} did not write its output "${p}"`);
  }
  const manifest: Manifest = {
    stage: spec.name,
    createdAt: new Date().toISOString(),
    durationS: Math.round(durationS * 1000) / 1000,
    paramsHash,
    params: spec.params,
    sourceHash,
    inputs: inputs as Record<string, FileRecord>,
    outputs: outputs as Record<string, FileRecord>,
    versions: await versions(),
    stats,
  };
  await writeJsonAtomic(manifestPath(spec.dir, spec.name), manifest);
  return { skipped: false, manifest };
}

async function versions(): Promise<Record<string, string>> {
  const out: Record<string, string> = { deno: Deno.version.deno, v8: Deno.version.v8 };
  for (const [name, spec] of Object.entries(await pinnedDependencies())) {
    out[name] = spec.replace(/^npm:/, "").replace(/^.*@/, "");
  }
  return out;
}
