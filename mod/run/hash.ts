/**
 * Content hashes for the stage runner: sha-256 of files (streamed, so multi-GB inputs never sit in
 * memory), of JSON values (keys sorted, so equal configs hash equal), and of a task's source: the
 * task file plus every project module it imports, transitively, plus the pinned dependency list.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { createHash } from "node:crypto";
import { dirname, join, relative } from "node:path";
import { PROJECT_ROOT } from "./layout.ts";

export async function hashFile(path: string): Promise<string> {
  const h = createHash("sha256");
  const file = await Deno.open(path, { read: true });
  try {
    for await (const chunk of file.readable) h.update(chunk);
  } catch (e) {
    throw new Error(`Cannot hash "${path}": ${(e as Error).message}`);
  }
  return h.digest("hex");
}

/** JSON with object keys sorted at every level (arrays keep their order). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      return Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]]));
    }
    return v;
  });
}

export function hashJson(value: unknown): string {
  return createHash("sha256").update(canonicalJson(value)).digest("hex");
}

const IMPORT_RE =
  /(?:import|export)\s[^'"]*?from\s*["'](\.{1,2}\/[^"']+)["']|import\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g;

/** Local files a module imports, transitively (relative specifiers only), sorted. */
export async function sourceFiles(entry: string | URL): Promise<string[]> {
  const start = entry instanceof URL
    ? fileURLToPath(entry)
    : entry.startsWith("file:")
    ? fileURLToPath(entry)
    : entry;
  const seen = new Set<string>();
  const queue = [start];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch {
      continue; // a generated or optional import: the importer's own hash still covers it
    }
    for (const m of text.matchAll(IMPORT_RE)) {
      const spec = m[1] ?? m[2];
      queue.push(join(dirname(file), spec));
    }
  }
  return [...seen].sort();
}

/**
 * Modules that hold configuration values only, left out of every source hash: their values reach a
 * stage only through the resolved config (loadConfig), whose sections the stage's parameter hash
 * covers (stageParams in mod/run/graph.ts), so editing a preset reruns only the stages whose
 * resolved config changed. Sound while such a module holds data and type-only imports and no
 * code (presets.ts imports its types from config_types.ts for that reason; tests/layout_test.ts
 * checks that a preset edit moves no stage's source hash). A marker inside the file or a computed
 * import would say the same thing less plainly than this one-entry list.
 */
const CONFIG_ONLY = new Set(["mod/run/presets.ts"]);

/**
 * Hash of a task's source (its import graph) and of deno.json's pinned imports; paths are taken
 * relative to `root`, the project (a test points it at a copy).
 */
export async function hashSource(
  entry: string | URL,
  root: string = PROJECT_ROOT,
): Promise<string> {
  const h = createHash("sha256");
  for (const file of await sourceFiles(entry)) {
    if (CONFIG_ONLY.has(relative(root, file))) continue;
    h.update(relative(root, file));
    h.update("\0");
    h.update(await Deno.readFile(file));
  }
  h.update(canonicalJson(await pinnedDependencies(root)));
  return h.digest("hex");
}

/** deno.json's import map: each npm package at its pinned version (empty if unreadable). */
export async function pinnedDependencies(
  root: string = PROJECT_ROOT,
): Promise<Record<string, string>> {
  try {
    const denoJson = JSON.parse(await Deno.readTextFile(join(root, "deno.json")));
    return denoJson.imports ?? {};
  } catch {
    return {}; // without read access to deno.json the source files alone decide
  }
}
