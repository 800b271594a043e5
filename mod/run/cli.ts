/**
 * The command-line layer every task shares: a thin wrapper over `node:util` parseArgs (the
 * project's stand-in for jsr:@std/cli, which cannot be installed here because JSR is unreachable),
 * `--help` for every task, and the top-level error handler that turns an error into one clear line
 * on stderr and a non-zero exit.
 *
 * @module
 */
import { parseArgs } from "node:util";

export interface OptionSpec {
  type: "string" | "boolean";
  short?: string;
  multiple?: boolean;
  description: string;
  /** Shown in --help as the value's placeholder, e.g. "N" or "FILE". */
  arg?: string;
}

export interface TaskSpec {
  /** The deno task name, e.g. "tokenize". */
  name: string;
  /** One line: what the task does. */
  summary: string;
  /** Extra help text: what it reads and writes. */
  details?: string;
  options?: Record<string, OptionSpec>;
}

/** Options every pipeline stage takes: how the run's configuration is chosen. */
export const CONFIG_OPTIONS: Record<string, OptionSpec> = {
  preset: {
    type: "string",
    arg: "NAME",
    description: "Config preset: test, demo, study or paper (default demo)",
  },
  config: { type: "string", arg: "FILE", description: "JSON file merged over the preset" },
  set: {
    type: "string",
    multiple: true,
    arg: "KEY=VALUE",
    description: "Override one config value, e.g. --set train.steps=200 (repeatable)",
  },
  run: { type: "string", arg: "NAME", description: "Run name: output folder (default: preset)" },
  force: { type: "boolean", description: "Rerun this stage even when its inputs are unchanged" },
};

/** Options of the stages that compute with TensorFlow.js: the config's options and --backend. */
export const TENSOR_OPTIONS: Record<string, OptionSpec> = {
  ...CONFIG_OPTIONS,
  backend: {
    type: "string",
    arg: "NAME",
    description: "TensorFlow.js backend: auto, node-gpu, node, webgpu, wasm, cpu (default: config)",
  },
};

export interface ParsedArgs {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

export function helpText(spec: TaskSpec): string {
  const options = { ...spec.options, help: { type: "boolean", description: "Show this help" } };
  const lines = [`deno task ${spec.name} [options]`, "", spec.summary];
  if (spec.details) lines.push("", spec.details.trim());
  lines.push("", "Options:");
  const rows = Object.entries(options).map(([name, o]) => {
    const flag = `--${name}${o.type === "string" ? ` ${(o as OptionSpec).arg ?? "VALUE"}` : ""}`;
    return [
      (o as OptionSpec).short ? `-${(o as OptionSpec).short}, ${flag}` : `    ${flag}`,
      o.description,
    ];
  });
  const width = Math.max(...rows.map(([f]) => f.length)) + 2;
  for (const [flag, text] of rows) lines.push(`  ${flag.padEnd(width)}${text}`);
  return lines.join("\n");
}

/**
 * Parses `args` against the task's options. `--help` prints the help and exits 0; an unknown
 * option or a missing value throws an error naming it.
 */
export function parseTaskArgs(spec: TaskSpec, args: string[] = Deno.args): ParsedArgs {
  const options: Record<
    string,
    { type: "string" | "boolean"; short?: string; multiple?: boolean }
  > = { help: { type: "boolean", short: "h" } };
  for (const [name, o] of Object.entries(spec.options ?? {})) {
    options[name] = { type: o.type, multiple: o.multiple ?? false };
    if (o.short) options[name].short = o.short;
  }
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new Error(`${(e as Error).message.replace(/\. To specify.*$/s, "")} (see --help)`);
  }
  if (parsed.values.help) {
    console.log(helpText(spec));
    Deno.exit(0);
  }
  if (parsed.positionals.length > 0) {
    const arg = parsed.positionals[0];
    const hint = spec.options?.preset ? ` (did you mean --preset ${arg}?)` : "";
    throw new Error(
      `Unexpected argument "${arg}": deno task ${spec.name} takes options only${hint} (see --help)`,
    );
  }
  return parsed as ParsedArgs;
}

/**
 * Runs a task's main function. Errors print as one line, `error: <message>`, and exit 1; errors
 * that look like programming mistakes (TypeError and friends) keep their stack, as does any error
 * when RTD_DEBUG=1 is set and readable.
 */
export async function runMain(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    const internal = err instanceof TypeError || err instanceof RangeError ||
      err instanceof ReferenceError || err instanceof SyntaxError;
    console.error(`error: ${err.message}`);
    if (internal || debugEnabled()) console.error(err.stack);
    Deno.exit(1);
  }
}

function debugEnabled(): boolean {
  const q = Deno.permissions.querySync({ name: "env", variable: "RTD_DEBUG" });
  return q.state === "granted" && Deno.env.get("RTD_DEBUG") === "1";
}

/** Progress and logs go to stderr; data goes to files (and stdout stays clean for piping). */
export function log(message: string): void {
  console.error(message);
}

/** 1234567 -> "1,234,567". */
export function fmtInt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}
