/**
 * The one-layer transformer: model and hooks (model.ts), fused ops (ops.ts), training
 * (train.ts, adam.ts, checkpoint.ts), sampling (sample.ts) and its files (io.ts); transformer.ts
 * gathers the pure model API.
 *
 * This file is the only way into the folder from outside it.
 *
 * @module
 */
export * from "./adam.ts";
export * from "./checkpoint.ts";
export * from "./io.ts";
export * from "./model.ts";
export * from "./ops.ts";
export * from "./sample.ts";
export * from "./train.ts";
export * from "./transformer.ts";
