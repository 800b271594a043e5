/**
 * Markdown tables of a run's results (tasks/tables.ts prints them): a table writer, and each
 * stage's last run time read from its manifest.
 *
 * @module
 */
import { join } from "node:path";
import { manifestName, STAGE_NAMES } from "../run/mod.ts";

export type Row = Record<string, unknown>;

/** A Markdown pipe table; `|` in a cell is escaped. Throws on a row of the wrong width. */
export function markdownTable(header: string[], rows: string[][]): string {
  const cell = (s: string) => s.replaceAll("|", "\\|");
  for (const [i, r] of rows.entries()) {
    if (r.length !== header.length) {
      throw new Error(`Table row ${i} has ${r.length} cells, the header ${header.length}`);
    }
  }
  const line = (cells: string[]) => `| ${cells.map(cell).join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

export interface StageTiming {
  stage: string;
  seconds: number;
  createdAt: string;
}

/**
 * Every stage manifest under data/<run>/ and results/<run>/ (two folder levels deep), in the
 * graph's stage order: the stage's last run time. A stage resumed after a kill records only its
 * last run's time.
 */
export async function stageTimings(
  dataDir: string,
  resultsDir: string,
  run: string,
): Promise<StageTiming[]> {
  const want = new Map<string, string>(STAGE_NAMES.map((s) => [manifestName(s), s]));
  const found = new Map<string, StageTiming>();
  const walk = async (dir: string, depth: number) => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch {
      return;
    }
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory && depth > 0) await walk(path, depth - 1);
      const stage = want.get(e.name);
      if (e.isFile && stage && !found.has(stage)) {
        const m = JSON.parse(await Deno.readTextFile(path));
        found.set(stage, {
          stage,
          seconds: Number(m.durationS),
          createdAt: String(m.createdAt),
        });
      }
    }
  };
  await walk(join(dataDir, run), 2);
  await walk(join(resultsDir, run), 2);
  return STAGE_NAMES.filter((s) => found.has(s)).map((s) => found.get(s)!);
}
