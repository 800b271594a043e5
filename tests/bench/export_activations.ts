/**
 * Exports a run's cached MLP activations as raw little-endian float32 matrices, for readers
 * without a Parquet library (tests/bench/sae_recipe_ref.py reads them with numpy.fromfile):
 *
 *   data/<run>/recipe_ref/train.f32     every training shard, in shard order (the order the
 *                                       project's SAE stage streams them), rows x d_in
 *   data/<run>/recipe_ref/heldout.f32   heldout.parquet, rows x d_in
 *   data/<run>/recipe_ref/export.json   d_in, row counts and the fingerprint (size, mtime) of
 *                                       every source shard; a rerun with unchanged shards reuses
 *                                       the export
 *
 *   deno run --allow-read=. --allow-write=data tests/bench/export_activations.ts --run demo
 *
 * @module
 */
import { join } from "node:path";
import { listTrainShards, readActivationShard } from "../../mod/activations/mod.ts";
import { ACTIVATION_FILES } from "../../mod/run/mod.ts";
import { arg } from "./args.ts";

/** What export.json records. */
export interface ActivationExport {
  dIn: number;
  trainRows: number;
  heldoutRows: number;
  train: string;
  heldout: string;
  /** Shard path -> "size:mtimeMs" at export time. */
  sources: Record<string, string>;
  exportSeconds: number;
}

async function fingerprint(path: string): Promise<string> {
  const st = await Deno.stat(path);
  return `${st.size}:${st.mtime?.getTime() ?? 0}`;
}

async function appendShard(file: Deno.FsFile, path: string, dIn?: number): Promise<number> {
  const rows = await readActivationShard(path, { dIn, columns: ["act"] });
  const bytes = new Uint8Array(rows.acts.buffer, rows.acts.byteOffset, rows.acts.byteLength);
  for (let off = 0; off < bytes.length;) off += await file.write(bytes.subarray(off));
  return rows.dIn;
}

/**
 * Writes (or reuses) the raw export of `<dataDir>/<run>/activations/` under
 * `<dataDir>/<run>/recipe_ref/`. Returns what export.json holds and whether it was reused.
 */
export async function exportActivations(
  run: string,
  dataDir = "data",
): Promise<ActivationExport & { reused: boolean }> {
  const actDir = join(dataDir, run, "activations");
  const outDir = join(dataDir, run, "recipe_ref");
  const shards = await listTrainShards(actDir);
  if (shards.length === 0) throw new Error(`No training shards in "${actDir}"`);
  const heldout = join(actDir, ACTIVATION_FILES.heldout);
  const sources: Record<string, string> = {};
  for (const p of [...shards, heldout]) sources[p] = await fingerprint(p);
  const metaPath = join(outDir, "export.json");
  try {
    const old = JSON.parse(await Deno.readTextFile(metaPath)) as ActivationExport;
    const same = JSON.stringify(old.sources) === JSON.stringify(sources);
    const sizes = (await Deno.stat(old.train)).size === old.trainRows * old.dIn * 4 &&
      (await Deno.stat(old.heldout)).size === old.heldoutRows * old.dIn * 4;
    if (same && sizes) return { ...old, reused: true };
  } catch {
    // no usable earlier export
  }
  await Deno.mkdir(outDir, { recursive: true });
  const t0 = performance.now();
  const trainPath = join(outDir, "train.f32"), heldPath = join(outDir, "heldout.f32");
  let dIn: number | undefined;
  for (const [path, inputs] of [[trainPath, shards], [heldPath, [heldout]]] as const) {
    const file = await Deno.open(path + ".tmp", { write: true, create: true, truncate: true });
    try {
      for (const s of inputs) dIn = await appendShard(file, s, dIn);
    } finally {
      file.close();
    }
    await Deno.rename(path + ".tmp", path);
  }
  const rowsOf = async (p: string) => (await Deno.stat(p)).size / (4 * dIn!);
  const meta: ActivationExport = {
    dIn: dIn!,
    trainRows: await rowsOf(trainPath),
    heldoutRows: await rowsOf(heldPath),
    train: trainPath,
    heldout: heldPath,
    sources,
    exportSeconds: (performance.now() - t0) / 1000,
  };
  await Deno.writeTextFile(metaPath, JSON.stringify(meta, null, 2) + "\n");
  return { ...meta, reused: false };
}

if (import.meta.main) {
  const meta = await exportActivations(arg("run", "demo"), arg("data-dir", "data"));
  console.log(JSON.stringify({ ...meta, sources: Object.keys(meta.sources).length }));
}
