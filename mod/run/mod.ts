/**
 * How a run is set up and driven: the command line (cli.ts), the typed configuration and its
 * checks (config.ts, config_types.ts), the presets (presets.ts), the run layout naming every output file
 * (layout.ts), the stage graph (graph.ts), the stage runner with its manifests (runner.ts), the
 * run lock (lock.ts), content hashes (hash.ts), the shared task main() (task.ts) and the seeded
 * generator (rng.ts).
 *
 * This file is the only way into the folder from outside it.
 *
 * @module
 */
export * from "./cli.ts";
export * from "./config.ts";
export * from "./config_types.ts";
export * from "./graph.ts";
export * from "./hash.ts";
export * from "./layout.ts";
export * from "./lock.ts";
export * from "./presets.ts";
export * from "./rng.ts";
export * from "./runner.ts";
export * from "./task.ts";
