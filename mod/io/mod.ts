/**
 * File formats and atomic file writes: Parquet through parquet-wasm and Arrow (parquet.ts),
 * safetensors (safetensors.ts), the fs helpers every writer uses (fs.ts), and the one-line text of
 * a caught error (errors.ts).
 *
 * This file is the only way into the folder from outside it.
 *
 * @module
 */
export * from "./errors.ts";
export * from "./fs.ts";
export * from "./parquet.ts";
export * from "./safetensors.ts";
