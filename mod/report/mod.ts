/**
 * Builds the run report: results/<run>/report/index.html (summary and feature browser, opens from
 * disk with no server or network) and, beside it, data/<key>.js (each SAE's index) and
 * data/<key>-<k>.js (its shards of `shardSize` features: examples and logits), loaded by the page
 * when an SAE or feature is selected. <key> is the SAE's folder name: f<N> for the primary SAEs,
 * f<N>-<arch>-<init>-r0 for each other architecture's (mod/run/layout.ts browsedSlots).
 *
 * Every file is written atomically and index.html last, so an index.html on disk always finds
 * its data files; data files of an earlier layout are removed.
 *
 * @module
 */
import { join } from "node:path";
import { get_encoding } from "tiktoken";
import { writeFileAtomic } from "../io/mod.ts";
import { RESULTS_FILES, type RunPaths } from "../run/mod.ts";
import { dataScript } from "./compact.ts";
import { loadSaeData } from "./sae_data.ts";
import { loadRunSummary } from "./summary.ts";
import { type PageManifest, renderPage } from "./page.ts";

export { summaryInputs } from "./summary.ts";
export { contextTexts, escapeHtml, round3, TokenTable } from "./compact.ts";
export { CLIENT_JS } from "./browser_script.ts";
export { inlineSvg } from "./page.ts";

/** Features per shard file: about 0.5-1 MB of examples at the demo preset's example counts. */
export const DEFAULT_SHARD_SIZE = 256;

export interface ReportOptions {
  run: string;
  paths: RunPaths;
  sizes: number[];
  /**
   * The SAEs the browser shows, in order (browsedSlots); default: the primary f<N> of each size
   * as the first architecture "relu".
   */
  saes?: { name: string; size: number; architecture: string }[];
  /** Quantile bins of the features stage (for the bins' labels). */
  quantileBins: number;
  shardSize?: number;
}

export interface ReportFiles {
  index: string;
  /** Every file written, index.html first. */
  files: string[];
  /** Bytes of index.html, and of every data file together. */
  indexBytes: number;
  dataBytes: number;
  features: number;
  explained: number;
}

export async function buildReport(opts: ReportOptions): Promise<ReportFiles> {
  const shardSize = opts.shardSize ?? DEFAULT_SHARD_SIZE;
  if (!Number.isInteger(shardSize) || shardSize < 1) {
    throw new Error(`Report shard size "${shardSize}" must be a positive integer`);
  }
  const sizes = [...opts.sizes].sort((a, b) => a - b);
  const dir = opts.paths.reportDir;
  const dataDir = join(dir, "data");
  const saes = opts.saes ??
    sizes.map((n) => ({ name: `f${n}`, size: n, architecture: "relu" }));
  const summary = await loadRunSummary(opts.run, opts.paths, sizes, saes.map((s) => s.name));
  const enc = get_encoding("gpt2");
  const bytes = new Map<number, Uint8Array>();
  const tokenBytes = (id: number) => {
    let b = bytes.get(id);
    if (!b) bytes.set(id, b = enc.decode_single_token_bytes(id));
    return b;
  };
  const manifest: PageManifest = { run: opts.run, saes: [] };
  const written: string[] = [];
  let dataBytes = 0, features = 0, explained = 0;
  const write = async (name: string, text: string) => {
    const path = join(dataDir, name);
    await writeFileAtomic(path, text);
    written.push(path);
    dataBytes += new TextEncoder().encode(text).length;
  };
  try {
    for (const sae of saes) {
      const n = sae.size;
      const row = summary.saes.find((r) => r.name === sae.name);
      if (!row) throw new Error(`No SAE summary row for "${sae.name}": rerun the sae stage`);
      const { index, shards } = await loadSaeData(opts.paths.slotDir(sae), n, {
        key: sae.name,
        shardSize,
        heldoutTokens: row.heldoutTokens,
        quantileBins: opts.quantileBins,
        tokenBytes,
      });
      for (const [k, shard] of shards.entries()) {
        await write(`${index.key}-${k}.js`, dataScript(shard.key, shard));
      }
      await write(`${index.key}.js`, dataScript(index.key, index));
      const nExplained = index.expl?.f.length ?? 0;
      manifest.saes.push({
        key: index.key,
        size: n,
        architecture: sae.architecture,
        shards: shards.length,
        shardSize,
        explained: nExplained,
      });
      features += n;
      explained += nExplained;
    }
  } finally {
    enc.free();
  }
  const keep = new Set(written.map((p) => p.slice(dataDir.length + 1)));
  for await (const e of Deno.readDir(dataDir)) {
    if (e.isFile && e.name.endsWith(".js") && !keep.has(e.name)) {
      await Deno.remove(join(dataDir, e.name));
    }
  }
  const html = renderPage(summary, manifest);
  const index = join(dir, RESULTS_FILES.reportIndex);
  await writeFileAtomic(index, html);
  return {
    index,
    files: [index, ...written],
    indexBytes: new TextEncoder().encode(html).length,
    dataBytes,
    features,
    explained,
  };
}
