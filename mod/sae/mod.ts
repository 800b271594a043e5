/**
 * Sparse autoencoders: the model (sae.ts) and its files (saelens_files.ts), the architectures
 * beyond ReLU and TopK (batchtopk.ts, jumprelu.ts, gated.ts; AuxK in auxk.ts; which code trains
 * which in architectures.ts), gradients dense and sparse (grads.ts, sparse.ts), the geometric-median init (geometric_median.ts), dead-feature resampling
 * (resample.ts), the sweep trainer (trainer.ts, train_config.ts, checkpoint.ts, reservoir.ts)
 * and the held-out evaluation (heldout_eval.ts).
 *
 * This file is the way into the folder from outside it; the one other entry is the sae stage's
 * body (stage.ts), imported by tasks/sae.ts only and not re-exported here, so that it enters the
 * sae stage's source hash and no other stage's.
 *
 * @module
 */
export * from "./architectures.ts";
export * from "./auxk.ts";
export * from "./batchtopk.ts";
export * from "./checkpoint.ts";
export * from "./convergence.ts";
export * from "./gated.ts";
export * from "./geometric_median.ts";
export * from "./grads.ts";
export * from "./heldout_eval.ts";
export * from "./jumprelu.ts";
export * from "./resample.ts";
export * from "./reservoir.ts";
export * from "./sae.ts";
export * from "./saelens_files.ts";
export * from "./native_step.ts";
export * from "./sparse.ts";
export * from "./train_config.ts";
export * from "./trainer.ts";
