/**
 * The MLP activations: computed from token sequences in shuffled shards (collect.ts), cached as
 * Parquet shards with provenance (shards.ts), and fed to the SAE trainer from the cache
 * (stream.ts) or straight from the model (model_stream.ts).
 *
 * This file is the only way into the folder from outside it.
 *
 * @module
 */
export * from "./collect.ts";
export * from "./model_stream.ts";
export * from "./shards.ts";
export * from "./stream.ts";
