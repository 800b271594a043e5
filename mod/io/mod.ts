/**
 * File formats and atomic file writes: Parquet through parquet-wasm and Arrow (parquet.ts),
 * safetensors (safetensors.ts), and the fs helpers every writer uses (fs.ts).
 *
 * This file is the only way into the folder from outside it.
 *
 * @module
 */
export * from "./fs.ts";
export * from "./parquet.ts";
export * from "./safetensors.ts";
