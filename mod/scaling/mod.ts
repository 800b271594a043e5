/**
 * The scaling analysis of a run's SAEs: power-law and linear fits (fit.ts) and the analysis
 * of L0 and dead / ultra-low fraction against SAE size (scaling.ts).
 *
 * This file is the only way into the folder from outside it.
 *
 * @module
 */
export * from "./fit.ts";
export * from "./scaling.ts";
