/**
 * The whole pipeline, stage after stage, each in its own process with its own permissions
 * (as deno.json gives them), so that no stage runs with more rights than it needs.
 *
 *   deno task sweep [--preset demo] [--config FILE] [--set KEY=VALUE ...] [--run NAME] [--force]
 *
 * Every flag is passed to every stage; a stage whose inputs, config and source are unchanged
 * skips itself in well under a second. Stops at the first stage that fails.
 *
 * @module
 */
import {
  CONFIG_OPTIONS,
  log,
  parseTaskArgs,
  runMain,
  STAGE_NAMES,
  type TaskSpec,
} from "../mod/run/mod.ts";

/**
 * Stages in pipeline order, from the stage graph (mod/run/graph.ts). autointerp skips itself
 * (exit 0) without OPENAI_API_KEY.
 */
export const STAGES = STAGE_NAMES;

export const SPEC: TaskSpec = {
  name: "sweep",
  summary: "Run every stage of the pipeline in order, skipping those that are up to date",
  details: `Stages: ${STAGES.join(" -> ")}. --force reruns every stage.`,
  options: CONFIG_OPTIONS,
};

export async function main(args: string[] = Deno.args): Promise<void> {
  parseTaskArgs(SPEC, args); // validates flags and answers --help before anything runs
  const t0 = performance.now();
  for (const stage of STAGES) {
    log(`sweep: ${stage}`);
    const child = new Deno.Command("deno", {
      args: ["task", "--quiet", stage, ...args],
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    const { code } = await child.status;
    if (code !== 0) {
      throw new Error(`Stage "${stage}" failed (exit code ${code}); later stages did not run`);
    }
  }
  log(
    `sweep: all ${STAGES.length} stages done in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
}

if (import.meta.main) await runMain(main);
