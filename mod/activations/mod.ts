/**
 * The MLP activation cache: Parquet shards with provenance (shards.ts) and the shuffled
 * stream that feeds the SAE trainer (stream.ts).
 *
 * This file is the only way into the folder from outside it.
 *
 * @module
 */
export * from "./shards.ts";
export * from "./stream.ts";
