/**
 * Reading a dictionary: feature density (density.ts), max-activating, quantile and random
 * examples (max_activating.ts, samplers.ts), logit attribution (logit_attribution.ts) and CE loss
 * recovered (loss_recovered.ts).
 *
 * This file is the way into the folder from outside it; the one other entry is the features
 * stage's body (stage.ts), imported by tasks/features.ts only and not re-exported here, so that it
 * enters the features stage's source hash and no other stage's.
 *
 * @module
 */
export * from "./density.ts";
export * from "./logit_attribution.ts";
export * from "./loss_recovered.ts";
export * from "./max_activating.ts";
export * from "./samplers.ts";
