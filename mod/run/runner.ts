/**
 * The stage runner: runs a pipeline stage only when something it depends on changed.
 *
 * Beside each stage's outputs sits `<stage>.manifest.json` with hashes of its input files, of the
 * config sections it reads and of its own source (the task and the modules it imports), plus the
 * outputs' hashes, row counts, versions and timing. A stage whose inputs, parameters and source
 * hash as recorded, and whose outputs are still as it wrote them, is skipped; `--force` reruns it.
 *
 * To stay fast on multi-GB files, a file whose size and modification time match the manifest is
 * taken to have the recorded hash; any other file is hashed again. A stage that runs hashes every
 * input in full, and an input that differs from what its upstream stage recorded in this process
 * (changed in place with its size and time kept) marks that stage's manifest stale and stops with
 * an error saying so, so that the rerun rebuilds it rather than reading a damaged file.
 *
 * Before a stage runs, `*.tmp` files left by a killed writer of another process (atomic writes'
 * temp files, partial checkpoints) are removed from its folders.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
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
  /**
   * Inputs this process may not read (a mix source outside the project, checked from a downstream
   * stage that may read the project only): taken as the previous manifest recorded them. When the
   * stage must run anyway, it stops with `blockedFix` instead.
   */
  blocked?: string[];
  blockedFix?: string;
  /** Folders besides `dir` and the outputs' where the stage keeps scratch files (checkpoints). */
  scratch?: string[];
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
  blocked: string[] = [],
): Promise<Record<string, FileRecord | null>> {
  const out: Record<string, FileRecord | null> = {};
  for (const p of paths) {
    out[p] = blocked.includes(p) ? known[p] ?? null : await fingerprint(p, known[p]);
  }
  return out;
}

/** What each stage of this process recorded for its outputs: path -> (stage, manifest, record). */
const recorded = new Map<string, { stage: string; manifest: string; rec: FileRecord }>();

function remember(spec: StageSpec, manifest: Manifest): void {
  for (const [p, rec] of Object.entries(manifest.outputs)) {
    recorded.set(p, { stage: spec.name, manifest: manifestPath(spec.dir, spec.name), rec });
  }
}

/**
 * Compares the full hashes of a running stage's inputs with what their upstream stages recorded.
 * A mismatch (a file changed in place with its size and modification time kept) marks the
 * upstream manifest stale, so that the next run rebuilds the file, and stops with that advice.
 */
async function checkRecorded(
  spec: StageSpec,
  inputs: Record<string, FileRecord | null>,
): Promise<void> {
  for (const [p, rec] of Object.entries(inputs)) {
    const known = recorded.get(p);
    if (!rec || !known || known.rec.sha256 === rec.sha256) continue;
    const prev = await readManifest(dirname(known.manifest), known.stage);
    if (prev?.outputs[p]) {
      prev.outputs[p] = { ...prev.outputs[p], mtimeMs: -1 }; // never matches: hashed again
      await writeJsonAtomic(known.manifest, prev);
    }
    recorded.delete(p);
    throw new Error(
      `Input "${p}" of ${spec.name} is not what ${known.stage} wrote (its content changed, its ` +
        `size and time did not): ${known.stage} is marked out of date; rerun and it rebuilds the file`,
    );
  }
}

/** Removes `*.tmp` files that other processes left in `dirs` (writers killed mid-write). */
async function removeStaleTemps(dirs: string[]): Promise<void> {
  const own = new RegExp(`\\.${Deno.pid}\\.[0-9a-f]{8}\\.tmp$`);
  for (const dir of new Set(dirs)) {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch {
      continue; // not there yet, or not ours to read
    }
    for (const e of entries) {
      if (!e.isFile || !e.name.endsWith(".tmp") || own.test(e.name)) continue;
      await Deno.remove(join(dir, e.name)).catch(() => {});
      log(`${basename(dir)}: removed the partial file "${e.name}" a killed run left`);
    }
  }
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
  const inputs = await fingerprints(spec.inputs, prev.inputs, spec.blocked);
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
    remember(spec, prev);
    return { skipped: true, manifest: prev };
  }
  if (spec.blocked && spec.blocked.length > 0) {
    throw new Error(
      spec.blockedFix ??
        `Cannot run ${spec.name} (${reason}): this task may not read "${spec.blocked[0]}"`,
    );
  }
  for (const p of spec.inputs) {
    if (!(await exists(p))) throw new Error(`Cannot run ${spec.name}: input "${p}" does not exist`);
  }
  log(`${spec.name}: running (${reason})`);
  const inputs = await fingerprints(spec.inputs);
  await checkRecorded(spec, inputs);
  await removeStaleTemps([spec.dir, ...(spec.scratch ?? []), ...spec.outputs.map(dirname)]);
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
  remember(spec, manifest);
  return { skipped: false, manifest };
}

async function versions(): Promise<Record<string, string>> {
  const out: Record<string, string> = { deno: Deno.version.deno, v8: Deno.version.v8 };
  for (const [name, spec] of Object.entries(await pinnedDependencies())) {
    out[name] = spec.replace(/^npm:/, "").replace(/^.*@/, "");
  }
  return out;
}
