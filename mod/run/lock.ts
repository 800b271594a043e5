/**
 * One stage process per run: a task holds an exclusive lock on data/<run>/run.lock and
 * results/<run>/run.lock (each of the two it may write) for as long as it runs, so a second copy
 * of a stage on the same run stops at once, saying who holds the run, instead of both writing the
 * same files.
 *
 * The lock is the operating system's (flock through `Deno.FsFile.tryLock`), not the file's
 * existence: it goes away with its process however that process ends, so a lock left by a killed
 * run is simply taken over. The file's text names the holder (pid, stage, since) for the message;
 * it is cleared on a clean exit, so text found by a new holder belongs to a run that was killed.
 *
 * @module
 */
import { join } from "node:path";
import { log } from "./cli.ts";
import { RUN_LOCK, runPaths } from "./layout.ts";

interface Holder {
  pid: number;
  stage: string;
  since: string;
}

const held = new Map<string, Deno.FsFile>();

function mayWrite(path: string): boolean {
  return Deno.permissions.querySync({ name: "write", path }).state === "granted";
}

function describe(h: Partial<Holder> | null): string {
  if (!h || h.pid === undefined) return "another process";
  return `pid ${h.pid} (stage ${h.stage ?? "?"}, since ${h.since ?? "?"})`;
}

async function readHolder(path: string): Promise<Partial<Holder> | null> {
  try {
    const text = (await Deno.readTextFile(path)).trim();
    return text ? JSON.parse(text) as Partial<Holder> : null;
  } catch {
    return null;
  }
}

/**
 * Takes the run's lock for `stage` in this process (a no-op for a folder it already holds), or
 * throws `Run "<run>" is busy: pid P (stage S, since T) holds "<lock>"`.
 */
export async function lockRun(
  cfg: { run: string; dataDir: string; resultsDir: string },
  stage: string,
): Promise<void> {
  const paths = runPaths(cfg);
  for (const dir of [paths.data, paths.results]) {
    const path = join(dir, RUN_LOCK);
    if (held.has(path) || !mayWrite(dir)) continue;
    await Deno.mkdir(dir, { recursive: true });
    const file = await Deno.open(path, { read: true, write: true, create: true });
    if (!(await file.tryLock(true))) {
      file.close();
      const holder = describe(await readHolder(path));
      throw new Error(
        `Run "${cfg.run}" is busy: ${holder} holds "${path}"; wait for it to finish`,
      );
    }
    const stale = await readHolder(path);
    if (stale?.pid !== undefined && stale.pid !== Deno.pid) {
      log(`${stage}: took over the lock of ${describe(stale)}, which is no longer running`);
    }
    const me: Holder = { pid: Deno.pid, stage, since: new Date().toISOString() };
    await file.truncate(0);
    await file.write(new TextEncoder().encode(JSON.stringify(me) + "\n"));
    held.set(path, file);
  }
}

/** Lets go of every run lock this process holds (tests; a task keeps its lock until it exits). */
export function releaseRunLocks(): void {
  for (const file of held.values()) {
    try {
      file.truncateSync(0);
      file.close();
    } catch {
      // already closed
    }
  }
  held.clear();
}

// A clean exit clears the holder's text (the OS drops the lock itself, on any exit).
globalThis.addEventListener("unload", () => {
  for (const file of held.values()) {
    try {
      file.truncateSync(0);
    } catch {
      // already gone with its folder
    }
  }
});
