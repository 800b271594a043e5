/**
 * The scaling analysis of a run's SAEs: power-law and linear fits (fit.ts) and the analysis
 * of L0 and dead / ultra-low fraction against SAE size (scaling.ts).
 *
 * This file is the way into the folder from outside it; the one other entry is the scaling
 * stage's body (stage.ts), imported by tasks/scaling.ts only and not re-exported here, so that it
 * enters the scaling stage's source hash and no other stage's.
 *
 * @module
 */
export * from "./fit.ts";
export * from "./scaling.ts";
