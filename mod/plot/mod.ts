/**
 * Plots as Vega-Lite specs (plot.ts, density.ts, training.ts), rendered to SVG (render.ts) and
 * to PNG through headless Chromium (png.ts); every plot of a run, drawn by the scaling stage
 * (run_plots.ts).
 *
 * This file is the only way into the folder from outside it.
 *
 * @module
 */
export * from "./density.ts";
export * from "./plot.ts";
export * from "./png.ts";
export * from "./render.ts";
export * from "./run_plots.ts";
export * from "./training.ts";
