/**
 * The corpus sources and their mix: npm-shipped corpora (npm.ts), local and http(s) files
 * (files.ts), text clean-up (text.ts) and mixing sources by row share (mix.ts).
 *
 * This file is the only way into the folder from outside it.
 *
 * @module
 */
export * from "./files.ts";
export * from "./mix.ts";
export * from "./npm.ts";
export * from "./simple.ts";
export * from "./text.ts";
