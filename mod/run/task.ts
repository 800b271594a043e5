/**
 * The `main()` that most stage tasks share: parse the flags, name the asked-for stage (so that
 * up-to-date upstream stages skip quietly), build the config, take the run's lock and run the
 * stage.
 *
 * @module
 */
import { parseTaskArgs, type TaskSpec } from "./cli.ts";
import { configSources, loadConfig } from "./config.ts";
import type { RunConfig } from "./config_types.ts";
import { setTopStage } from "./runner.ts";
import { lockRun } from "./lock.ts";

export interface StageRunOptions {
  force?: boolean;
  backend?: string;
}

export function stageMain(
  spec: TaskSpec,
  run: (cfg: RunConfig, opts: StageRunOptions) => Promise<unknown>,
): (args?: string[]) => Promise<void> {
  return async (args: string[] = Deno.args) => {
    const { values } = parseTaskArgs(spec, args);
    setTopStage(spec.name);
    const cfg = await loadConfig(configSources(values));
    await lockRun(cfg, spec.name);
    await run(cfg, {
      force: values.force as boolean,
      backend: values.backend as string | undefined,
    });
  };
}
