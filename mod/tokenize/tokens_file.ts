/**
 * The token-sequence file, data/<run>/tokens.parquet: writing it from packed sequences and
 * reading it back as one flat Uint16Array per split, with its shape checked against what the
 * caller expects (context length, vocabulary).
 *
 * @module
 */
import * as arrow from "apache-arrow";
import type { Packed } from "./pack.ts";
import {
  fixedSizeListValues,
  fixedSizeListVector,
  parquetInfo,
  readParquet,
  requireColumns,
} from "../io/mod.ts";

export function tokensTable(packed: Packed, contextLength: number): arrow.Table {
  const n = packed.sourceIdx.length;
  return new arrow.Table({
    seq: arrow.makeVector(Int32Array.from({ length: n }, (_, i) => i)),
    split: arrow.vectorFromArray(
      Array.from(packed.isVal, (v) => (v ? "val" : "train")),
      new arrow.Utf8(),
    ),
    source: arrow.vectorFromArray(
      Array.from(packed.sourceIdx, (s) => packed.sourceNames[s]),
      new arrow.Utf8(),
    ),
    tokens: fixedSizeListVector(packed.tokens, contextLength),
  });
}

export interface TokenSplit {
  /** nSeq x contextLength ids, row-major. */
  tokens: Uint16Array;
  /** The seq index (row in tokens.parquet) of each sequence. */
  seq: Int32Array;
  source: string[];
  contextLength: number;
}

/** Reads one split of tokens.parquet, checking context length and vocabulary. */
export async function readTokens(
  path: string,
  split: "train" | "val" | "all",
  expect: { contextLength?: number; vocabSize?: number } = {},
): Promise<TokenSplit> {
  const info = await parquetInfo(path);
  const T = Number(info.metadata.context_length);
  if (!Number.isInteger(T) || T <= 0) {
    throw new Error(`Tokens file "${path}" has no context_length in its metadata`);
  }
  if (expect.contextLength !== undefined && T !== expect.contextLength) {
    throw new Error(
      `Tokens file "${path}" has context length ${T}, but the model expects ${expect.contextLength}`,
    );
  }
  const vocab = Number(info.metadata.vocab_size);
  if (expect.vocabSize !== undefined && vocab !== expect.vocabSize) {
    throw new Error(
      `Tokens file "${path}" uses a vocabulary of ${vocab}, but the model has ${expect.vocabSize}`,
    );
  }
  const table = await readParquet(path, { columns: ["seq", "split", "source", "tokens"] });
  requireColumns(table, ["seq", "split", "source", "tokens"], `Tokens file "${path}"`);
  const splits = table.getChild("split")!.toArray() as string[];
  const keep: number[] = [];
  splits.forEach((s, i) => (split === "all" || s === split) && keep.push(i));
  const all = fixedSizeListValues(table.getChild("tokens")!, T, Uint16Array);
  const seqAll = table.getChild("seq")!.toArray() as Int32Array;
  const srcAll = table.getChild("source")!.toArray() as string[];
  const tokens = new Uint16Array(keep.length * T);
  keep.forEach((row, k) => tokens.set(all.subarray(row * T, (row + 1) * T), k * T));
  if (expect.vocabSize !== undefined) {
    const max = tokens.reduce((m, x) => (x > m ? x : m), 0);
    if (max >= expect.vocabSize) {
      throw new Error(
        `Tokens file "${path}" holds token id ${max}, outside the vocabulary of ${expect.vocabSize}`,
      );
    }
  }
  return {
    tokens,
    seq: Int32Array.from(keep, (r) => seqAll[r]),
    source: keep.map((r) => srcAll[r]),
    contextLength: T,
  };
}
