/**
 * Shared test helpers: temporary run folders and configs pointed at them, and running a task as a
 * subprocess (to check what a user sees: exit code, one error line).
 *
 * @module
 */
import { loadConfig, type RunConfig } from "../mod/config.ts";

/** A `test`-preset config whose data and results live in a fresh temporary folder. */
export async function tempConfig(
  set: string[] = [],
  preset = "test",
): Promise<{ cfg: RunConfig; dir: string; cleanup: () => Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "rtd-test-" });
  const cfg = await loadConfig({
    preset,
    set: [`dataDir=${dir}/data`, `resultsDir=${dir}/results`, ...set],
  });
  return { cfg, dir, cleanup: () => Deno.remove(dir, { recursive: true }) };
}

export interface TaskOutput {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `deno run <flags> tasks/<task>.ts <args>` from the project root. */
export async function runTask(
  task: string,
  args: string[],
  flags = ["--allow-read", "--allow-write"],
): Promise<TaskOutput> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", ...flags, `tasks/${task}.ts`, ...args],
    cwd: new URL("..", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
