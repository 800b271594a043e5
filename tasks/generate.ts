/**
 * Sample text from the trained transformer.
 *
 *   deno task generate --prompt "The history of" [--samples 3] [--max-tokens 40]
 *                      [--temperature 0.8] [--top-k 40] [--seed 0] [--preset demo]
 *
 * Trains the model first if results/<run>/transformer/ is missing or out of date. Prints each
 * sample (prompt and continuation) to stdout.
 *
 * @module
 */
import { parseTaskArgs, runMain, type TaskSpec, TENSOR_OPTIONS } from "../mod/run/mod.ts";
import { configSources, loadConfig } from "../mod/run/mod.ts";
import { initBackend } from "../mod/backend/mod.ts";
import { runPaths, runStages } from "../mod/run/mod.ts";
import { createTokenizer } from "../mod/tokenize/mod.ts";
import { disposeTransformer } from "../mod/transformer/mod.ts";
import { loadTransformer } from "../mod/transformer/mod.ts";
import { sample } from "../mod/transformer/mod.ts";

export const SPEC: TaskSpec = {
  name: "generate",
  summary: "Print samples from the trained transformer for a prompt",
  options: {
    ...TENSOR_OPTIONS,
    prompt: { type: "string", arg: "TEXT", description: "The prompt (required)" },
    samples: { type: "string", arg: "N", description: "Number of samples (default 1)" },
    "max-tokens": { type: "string", arg: "N", description: "New tokens per sample (default 40)" },
    temperature: {
      type: "string",
      arg: "T",
      description: "Sampling temperature; 0 is greedy (default 0.8)",
    },
    "top-k": {
      type: "string",
      arg: "K",
      description: "Sample among the K most likely tokens (default 40)",
    },
    seed: { type: "string", arg: "S", description: "Seed of the first sample (default 0)" },
  },
};

function numberFlag(value: unknown, name: string, fallback: number, int = true): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || (int && !Number.isInteger(n)) || n < 0) {
    throw new Error(
      `--${name} must be a non-negative ${int ? "integer" : "number"}, got "${value}"`,
    );
  }
  return n;
}

export async function main(args: string[] = Deno.args): Promise<void> {
  const { values } = parseTaskArgs(SPEC, args);
  const prompt = values.prompt as string | undefined;
  if (!prompt) {
    throw new Error(`--prompt is required, e.g. deno task generate --prompt "Once upon a time"`);
  }
  const cfg = await loadConfig(configSources(values));
  const n = numberFlag(values.samples, "samples", 1);
  const maxNewTokens = numberFlag(values["max-tokens"], "max-tokens", 40);
  const temperature = numberFlag(values.temperature, "temperature", 0.8, false);
  const topK = numberFlag(values["top-k"], "top-k", 40) || undefined;
  const seed = numberFlag(values.seed, "seed", 0);

  await runStages(["train"], cfg, { backend: values.backend as string | undefined });
  await initBackend((values.backend as string | undefined) ?? cfg.backend);
  const model = await loadTransformer(runPaths(cfg).transformer.weights);
  const tok = createTokenizer();
  try {
    const ids = Array.from(tok.encode(prompt));
    for (let i = 0; i < n; i++) {
      const out = await sample(model, ids, { maxNewTokens, temperature, topK, seed: seed + i });
      console.log(`--- sample ${i + 1} (seed ${seed + i})`);
      console.log(prompt + tok.decode(out));
    }
  } finally {
    tok.free();
    disposeTransformer(model);
  }
}

if (import.meta.main) await runMain(main);
