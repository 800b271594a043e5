/**
 * Shared test helpers: temporary run folders and configs pointed at them, and running a task as a
 * subprocess (to check what a user sees: exit code, one error line).
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { loadConfig, type RunConfig } from "../mod/run/mod.ts";

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

/** Task flags for the test preset with the run's folders relative to the task's working directory. */
export const TEST_PRESET_ARGS = [
  "--preset",
  "test",
  "--set",
  "dataDir=data",
  "--set",
  "resultsDir=results",
];

export interface TaskOutput {
  code: number;
  stdout: string;
  stderr: string;
}

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The argument list of `deno run <flags> tasks/<task>.ts <args>`. */
export function taskCommand(
  task: string,
  args: string[],
  opts: { flags?: string[]; cwd?: string; env?: Record<string, string> } = {},
): Deno.Command {
  const flags = opts.flags ?? ["--allow-read", "--allow-write"];
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", ...flags, `${ROOT}tasks/${task}.ts`, ...args],
    cwd: opts.cwd ?? ROOT,
    ...(opts.env ? { env: opts.env } : {}),
    stdout: "piped",
    stderr: "piped",
  });
}

/** Runs `deno run <flags> tasks/<task>.ts <args>` (from the project root unless `cwd` is set). */
export async function runTask(
  task: string,
  args: string[],
  flags = ["--allow-read", "--allow-write"],
  cwd?: string,
): Promise<TaskOutput> {
  const out = await taskCommand(task, args, { flags, cwd }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Copies a folder tree, keeping modification times (so stage manifests still match). */
export async function copyTree(from: string, to: string): Promise<void> {
  const out = await new Deno.Command("cp", { args: ["-a", from, to] }).output();
  if (out.code !== 0) throw new Error(`cp -a ${from} ${to} failed`);
}

/**
 * Starts a task, waits until `ready()` is true, then kills it with SIGKILL (a crash, not a clean
 * stop). Returns whether the kill came before the task finished on its own.
 */
export async function killWhen(
  cmd: Deno.Command,
  ready: () => Promise<boolean>,
  timeoutMs = 120_000,
): Promise<boolean> {
  const child = cmd.spawn();
  let finished = false;
  const status = child.status.then((s) => {
    finished = true;
    return s;
  });
  const drain = Promise.all([
    child.stdout.pipeTo(new WritableStream()),
    child.stderr.pipeTo(new WritableStream()),
  ]);
  const t0 = Date.now();
  while (!finished && !(await ready())) {
    if (Date.now() - t0 > timeoutMs) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const killed = !finished;
  if (killed) child.kill("SIGKILL");
  await status;
  await drain.catch(() => {});
  return killed;
}
