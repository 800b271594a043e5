/**
 * The one-layer transformer: model and hooks (model.ts), fused ops (ops.ts), training
 * (train.ts, adam.ts, checkpoint.ts), sampling (sample.ts) and its files (io.ts); transformer.ts
 * gathers the pure model API.
 *
 * This file is the way into the folder from outside it; the one other entry is the train stage's
 * body (stage.ts), imported by tasks/train.ts only and not re-exported here, so that it enters
 * the train stage's source hash and not those of the stages that use the model.
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
