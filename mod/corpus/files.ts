/**
 * Local and remote text sources for the mix: .txt, .jsonl, .jsonl.gz / .json.gz (JSON lines, as
 * Hugging Face serves C4) and .parquet files, named by path, glob or http(s) URL. Rows are read in
 * file order, and only as many files as needed are opened (or downloaded).
 *
 * Downloads go to <dataDir>/cache/http/ (temp file, then rename), so a rerun reads the cached copy.
 *
 * @module
 */
import { basename, dirname, join, relative } from "node:path";
import { createHash } from "node:crypto";
import { decodeParquet, readParquet } from "../io/mod.ts";
import { exists, writeFileAtomic } from "../io/mod.ts";
import { chunkText } from "./text.ts";

/** Expands `{00000..00040}` ranges (zero padding follows the first bound). */
export function expandRanges(pattern: string): string[] {
  const m = pattern.match(/\{(\d+)\.\.(\d+)\}/);
  if (!m) return [pattern];
  const [whole, a, b] = m;
  const lo = parseInt(a, 10), hi = parseInt(b, 10);
  if (hi < lo) throw new Error(`Bad range "${whole}" in "${pattern}": end is below start`);
  if (hi - lo > 100_000) throw new Error(`Range "${whole}" in "${pattern}" is too large`);
  const out: string[] = [];
  for (let i = lo; i <= hi; i++) {
    out.push(...expandRanges(pattern.replace(whole, String(i).padStart(a.length, "0"))));
  }
  return out;
}

function globToRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*" && glob[i + 1] === "*") {
      re += glob[i + 2] === "/" ? "(?:.*/)?" : ".*";
      i += glob[i + 2] === "/" ? 2 : 1;
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...(await walk(p)));
    else if (e.isFile) out.push(p);
  }
  return out;
}

/** Paths matching a path or glob (`*`, `?`, `**`), sorted; a plain path must exist. */
export async function expandGlob(pattern: string): Promise<string[]> {
  if (!/[*?]/.test(pattern)) {
    if (!(await exists(pattern))) {
      throw new Error(`Cannot read source file "${pattern}": file does not exist`);
    }
    return [pattern];
  }
  const parts = pattern.split("/");
  const firstGlob = parts.findIndex((p) => /[*?]/.test(p));
  const root = parts.slice(0, firstGlob).join("/") || ".";
  if (!(await exists(root))) {
    throw new Error(`Cannot read source files "${pattern}": folder "${root}" does not exist`);
  }
  const re = globToRegExp(parts.slice(firstGlob).join("/"));
  const matches = (await walk(root)).filter((p) => re.test(relative(root, p))).sort();
  if (matches.length === 0) throw new Error(`No files match "${pattern}"`);
  return matches;
}

async function gunzip(bytes: Uint8Array, label: string): Promise<Uint8Array> {
  try {
    const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
      new DecompressionStream("gzip"),
    );
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (e) {
    throw new Error(`Cannot read ${label}: not valid gzip (${(e as Error).message})`);
  }
}

function jsonLines(text: string, field: string, label: string): string[] {
  const rows: string[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    let obj: Record<string, unknown>;
    try {
      obj = JSON.parse(line);
    } catch {
      throw new Error(`Cannot read ${label}: line ${i + 1} is not valid JSON`);
    }
    const v = obj[field];
    if (typeof v !== "string") {
      throw new Error(`Cannot read ${label}: line ${i + 1} has no string field "${field}"`);
    }
    rows.push(v);
  }
  return rows;
}

function parquetTexts(table: import("apache-arrow").Table, field: string, label: string): string[] {
  const col = table.getChild(field);
  if (!col) {
    const have = table.schema.fields.map((f) => f.name).join(", ");
    throw new Error(`Cannot read ${label}: no column "${field}" (it has ${have})`);
  }
  const out: string[] = [];
  for (const v of col) if (typeof v === "string" && v.length > 0) out.push(v);
  return out;
}

/** What reading text files had to mend or leave out, for the mix to report. */
export interface TextNotes {
  /** Files skipped as binary (a NUL byte among their first 8 KiB). */
  binaryFiles: string[];
  /** Documents (rows) in which invalid UTF-8 was replaced with U+FFFD. */
  replacedDocs: number;
}

export function newTextNotes(): TextNotes {
  return { binaryFiles: [], replacedDocs: 0 };
}

/** Rows of one file's bytes, by its extension. `.txt` is one text, cut at maxChars. */
export async function rowsFromBytes(
  bytes: Uint8Array,
  name: string,
  opts: { textField: string; maxChars: number; label: string; notes?: TextNotes },
): Promise<string[]> {
  const { textField, maxChars, label } = opts;
  const lower = name.toLowerCase();
  if (lower.endsWith(".parquet")) {
    return parquetTexts(decodeParquet(bytes, label), textField, label);
  }
  if (lower.endsWith(".gz")) {
    const inner = await gunzip(bytes, label);
    return rowsFromBytes(inner, name.slice(0, -3), opts);
  }
  const isText = [".jsonl", ".json", ".txt", ".md"].some((ext) => lower.endsWith(ext));
  if (isText && bytes.subarray(0, 8192).includes(0)) {
    opts.notes?.binaryFiles.push(label);
    return [];
  }
  let text: string, mended = false;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    text = new TextDecoder("utf-8", { fatal: false }).decode(bytes);
    mended = true;
  }
  const count = (rows: string[]) => {
    if (mended && opts.notes) {
      opts.notes.replacedDocs += rows.filter((r) => r.includes("\uFFFD")).length;
    }
    return rows;
  };
  if (lower.endsWith(".jsonl") || lower.endsWith(".json")) {
    return count(jsonLines(text, textField, label));
  }
  if (lower.endsWith(".txt") || lower.endsWith(".md")) return count(chunkText(text, maxChars));
  throw new Error(
    `Cannot read ${label}: unsupported file type (expected .txt, .jsonl, .json.gz or .parquet)`,
  );
}

/** Rows of a local file. Parquet is read column-only (the text column). */
export async function rowsFromFile(
  path: string,
  opts: { textField: string; maxChars: number; notes?: TextNotes },
): Promise<string[]> {
  const label = `source file "${path}"`;
  if (path.toLowerCase().endsWith(".parquet")) {
    return parquetTexts(
      await readParquet(path, { columns: [opts.textField] }),
      opts.textField,
      label,
    );
  }
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`Cannot read ${label}: file does not exist`);
    }
    throw new Error(`Cannot read ${label}: ${(e as Error).message}`);
  }
  return rowsFromBytes(bytes, path, { ...opts, label });
}

/** Downloads a URL into the cache (once) and returns the cached file's path. */
export async function fetchToCache(url: string, cacheDir: string): Promise<string> {
  const key = createHash("sha256").update(url).digest("hex").slice(0, 16);
  const name = basename(new URL(url).pathname) || "download";
  const path = join(cacheDir, `${key}-${name}`);
  if (await exists(path)) return path;
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      throw new Error(
        `Cannot download "${url}": no network permission here (only \`deno task mix\` has --allow-net; run it first)`,
      );
    }
    throw new Error(`Cannot download "${url}": ${(e as Error).message}`);
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`Cannot download "${url}": HTTP ${res.status} ${res.statusText}`);
  }
  const bytes = new Uint8Array(await res.arrayBuffer());
  await Deno.mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, bytes);
  return path;
}
