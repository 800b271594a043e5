/**
 * What the benchmark scripts share: `--name value` flags and the backend line they print.
 *
 * @module
 */
import { initBackend } from "../../mod/backend/mod.ts";

/** The value after `--name` in Deno.args, or `fallback`. */
export function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : fallback;
}

/** Starts the backend and describes it: "wasm (matmuls on OpenBLAS ...)". */
export async function setUpBackend(name: string): Promise<string> {
  const info = await initBackend(name);
  return `${info.name}${info.blas ? ` (matmuls on ${info.blas})` : ""}`;
}
