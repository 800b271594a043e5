/**
 * Tokenizing the mix: the GPT-2 tokenizer (tokenizer.ts), encoding documents on workers
 * (encode.ts, worker.ts), packing into fixed-length sequences (pack.ts) and the token-sequence
 * file data/<run>/tokens.parquet (tokens_file.ts).
 *
 * This file is the only way into the folder from outside it.
 *
 * @module
 */
export * from "./encode.ts";
export * from "./pack.ts";
export * from "./tokenizer.ts";
export * from "./tokens_file.ts";
