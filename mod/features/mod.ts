/**
 * Reading a dictionary: feature density (density.ts), max-activating, quantile and random
 * examples (max_activating.ts, samplers.ts), logit attribution (logit_attribution.ts) and CE loss
 * recovered (loss_recovered.ts).
 *
 * This file is the only way into the folder from outside it.
 *
 * @module
 */
export * from "./density.ts";
export * from "./logit_attribution.ts";
export * from "./loss_recovered.ts";
export * from "./max_activating.ts";
export * from "./samplers.ts";
