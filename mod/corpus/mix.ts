/**
 * Mixing: each source contributes its weight's share of the rows, sampled deterministically for a
 * seed. Sources smaller than their share are repeated (upsampled), and the composition table says
 * by how much.
 *
 * @module
 */
import type { RunConfig, SourceSpec } from "../run/mod.ts";
import { loadNpmCorpora } from "./npm.ts";
import {
  expandGlob,
  expandRanges,
  fetchToCache,
  newTextNotes,
  rowsFromFile,
  type TextNotes,
} from "./files.ts";
import { deriveSeed, log, Rng } from "../run/mod.ts";
import { join } from "node:path";

export interface MixedSource {
  name: string;
  standsFor: string;
  targetShare: number;
  texts: string[];
  /** Index of each row's document within its source (repeats share an id). */
  docIds: Int32Array;
  distinctDocs: number;
}

/** Rows per source: largest-remainder rounding of share x total, so they sum to `total`. */
export function allocateRows(weights: number[], total: number): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  const exact = weights.map((w) => (w / sum) * total);
  const rows = exact.map(Math.floor);
  const order = exact.map((e, i) => [e - Math.floor(e), i]).sort((a, b) =>
    b[0] - a[0] || a[1] - b[1]
  );
  for (let r = total - rows.reduce((a, b) => a + b, 0), k = 0; r > 0; r--, k++) rows[order[k][1]]++;
  return rows;
}

/** The local files a config reads (for the stage manifest's input hashes). */
export async function localInputs(cfg: RunConfig): Promise<string[]> {
  const files: string[] = [];
  for (const s of cfg.mix.sources) {
    if (s.kind === "files" && s.weight > 0) {
      for (const p of s.paths!) files.push(...(await expandGlob(p)));
    }
  }
  return [...new Set(files)];
}

/** Reads files (or downloads shards) in order until `need` rows are in hand. */
async function readInOrder(
  paths: string[],
  need: number,
  read: (p: string) => Promise<string[]>,
): Promise<string[]> {
  const rows: string[] = [];
  for (const p of paths) {
    if (rows.length >= need) break;
    for (const r of await read(p)) rows.push(r);
  }
  return rows.slice(0, Math.max(need, 0));
}

/** Says what reading a source's files mended or left out (binary files, invalid UTF-8). */
function reportNotes(s: SourceSpec, notes: TextNotes): void {
  const n = notes.binaryFiles.length;
  if (n > 0) {
    log(
      `mix: source "${s.name}": skipped ${n} binary file${n > 1 ? "s" : ""} (${
        notes.binaryFiles.slice(0, 3).join(", ")
      }${n > 3 ? ", ..." : ""})`,
    );
  }
  if (notes.replacedDocs > 0) {
    log(
      `mix: source "${s.name}": ${notes.replacedDocs} document${
        notes.replacedDocs > 1 ? "s" : ""
      } held invalid UTF-8, replaced with U+FFFD`,
    );
  }
}

async function sourceDocs(s: SourceSpec, need: number, cfg: RunConfig): Promise<string[]> {
  const notes = newTextNotes();
  const opts = { textField: s.textField ?? "text", maxChars: cfg.mix.maxDocChars, notes };
  if (s.kind === "npm") return loadNpmCorpora(s.corpora!, cfg.mix.maxDocChars);
  if (s.kind === "files") {
    const paths: string[] = [];
    for (const p of s.paths!) paths.push(...(await expandGlob(p)));
    const rows = await readInOrder(paths, need, (p) => rowsFromFile(p, opts));
    reportNotes(s, notes);
    return rows;
  }
  const cache = join(cfg.dataDir, "cache", "http");
  const urls = s.urls!.flatMap(expandRanges);
  for (const u of urls) {
    if (!/^https?:\/\//.test(u)) {
      throw new Error(`Source "${s.name}": "${u}" is not an http(s) URL`);
    }
  }
  const rows = await readInOrder(
    urls,
    need,
    async (u) => rowsFromFile(await fetchToCache(u, cache), opts),
  );
  reportNotes(s, notes);
  return rows;
}

/** Samples every source's rows. npm corpora are shuffled; files and URLs keep their order. */
export async function mixSources(cfg: RunConfig): Promise<MixedSource[]> {
  const active = cfg.mix.sources.filter((s) => s.weight > 0);
  const need = allocateRows(active.map((s) => s.weight), cfg.mix.rows);
  const total = active.reduce((a, s) => a + s.weight, 0);
  const out: MixedSource[] = [];
  for (let i = 0; i < active.length; i++) {
    const s = active[i];
    const docs = (await sourceDocs(s, need[i], cfg)).filter((d) => d.trim().length > 0);
    if (docs.length === 0) throw new Error(`Source "${s.name}" has no documents: empty corpus`);
    const rng = new Rng(deriveSeed(cfg.seed, `mix:${s.name}`));
    const docIds = new Int32Array(need[i]);
    // Shuffled passes over the source: without replacement until every document is used once.
    for (let filled = 0; filled < need[i];) {
      const order = s.kind === "npm" ? rng.permutation(docs.length) : Int32Array.from(docs.keys());
      const take = Math.min(order.length, need[i] - filled);
      docIds.set(order.subarray(0, take), filled);
      filled += take;
    }
    out.push({
      name: s.name,
      standsFor: s.standsFor ?? "",
      targetShare: s.weight / total,
      texts: Array.from(docIds, (d) => docs[d]),
      docIds,
      distinctDocs: Math.min(docs.length, need[i]),
    });
  }
  return out;
}
