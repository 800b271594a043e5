/**
 * Packing: each source's documents, joined with <|endoftext|>, are cut into fixed-length
 * sequences. A sequence never mixes sources, so every sequence has one source.
 *
 * The train/validation split is made by document, before packing: a source's distinct documents
 * (by doc id: the repeats of an upsampled document share one) are shuffled and taken into
 * validation until they hold `valFraction` of the source's tokens, so a document and all its
 * repeats land on one side only and no validation sequence contains training text. Each side is
 * then packed on its own (its ragged tail dropped and counted), so both splits keep the mix's
 * composition, and all sequences are shuffled together.
 *
 * @module
 */
import { EOT_TOKEN } from "./tokenizer.ts";
import { deriveSeed, Rng } from "../run/mod.ts";

export interface SourceStream {
  name: string;
  ids: Uint16Array;
  /** Document boundaries into `ids` (length docs + 1). */
  offsets: Float64Array;
  /** Per document: its id within the source; repeats share one (default: every doc distinct). */
  docIds?: Int32Array;
}

export interface Packed {
  /** nSeq x contextLength ids, row-major. */
  tokens: Uint16Array;
  /** Index into `sourceNames` per sequence. */
  sourceIdx: Int32Array;
  /** 1 for validation, 0 for train, per sequence. */
  isVal: Uint8Array;
  sourceNames: string[];
  perSource: {
    source: string;
    docs: number;
    tokens: number;
    sequences: number;
    val_sequences: number;
    /** Distinct documents (by doc id) on each side. */
    train_docs: number;
    val_docs: number;
    dropped_tokens: number;
  }[];
}

/** Joins one source's documents with EOT after each and cuts the stream into sequences. */
export function packStream(
  ids: Uint16Array,
  offsets: Float64Array,
  contextLength: number,
): { seqs: Uint16Array; count: number; dropped: number } {
  const nDocs = offsets.length - 1;
  const streamLen = ids.length + nDocs;
  const count = Math.floor(streamLen / contextLength);
  const seqs = new Uint16Array(count * contextLength);
  let pos = 0;
  for (let d = 0; d < nDocs && pos < seqs.length; d++) {
    const doc = ids.subarray(offsets[d], offsets[d + 1]);
    const take = Math.min(doc.length, seqs.length - pos);
    seqs.set(doc.subarray(0, take), pos);
    pos += take;
    if (pos < seqs.length) seqs[pos++] = EOT_TOKEN;
  }
  return { seqs, count, dropped: streamLen - count * contextLength };
}

/** Which documents of a stream go to validation: whole doc ids, ~`valFraction` of its tokens. */
export function splitDocs(
  s: SourceStream,
  valFraction: number,
  seed: number,
): { isValDoc: Uint8Array; trainDocs: number; valDocs: number } {
  const nDocs = s.offsets.length - 1;
  const ids = s.docIds ?? Int32Array.from({ length: nDocs }, (_, d) => d);
  if (ids.length !== nDocs) {
    throw new Error(`Source "${s.name}": ${ids.length} doc ids for ${nDocs} documents`);
  }
  // Tokens per distinct doc id (all its repeats, each with its end-of-text).
  const tokensOf = new Map<number, number>();
  for (let d = 0; d < nDocs; d++) {
    const n = s.offsets[d + 1] - s.offsets[d] + 1;
    tokensOf.set(ids[d], (tokensOf.get(ids[d]) ?? 0) + n);
  }
  const distinct = [...tokensOf.keys()].sort((a, b) => a - b);
  const total = s.ids.length + nDocs;
  const target = valFraction * total;
  const order = new Rng(deriveSeed(seed, `pack:val:${s.name}`)).permutation(distinct.length);
  const valIds = new Set<number>();
  let valTokens = 0;
  // Keep at least one document for training; stop once validation holds its share.
  for (let i = 0; i < order.length - 1 && valTokens < target; i++) {
    const id = distinct[order[i]];
    const n = tokensOf.get(id)!;
    // Take the document when that brings validation closer to its target than leaving it.
    if (valTokens + n - target > target - valTokens) continue;
    valIds.add(id);
    valTokens += n;
  }
  const isValDoc = Uint8Array.from(ids, (id) => (valIds.has(id) ? 1 : 0));
  return { isValDoc, trainDocs: distinct.length - valIds.size, valDocs: valIds.size };
}

/** The documents of `s` where `keep[d]` is 1, as one stream (ids and offsets). */
function subStream(s: SourceStream, keep: Uint8Array, want: number): SourceStream {
  const nDocs = s.offsets.length - 1;
  let len = 0, count = 0;
  for (let d = 0; d < nDocs; d++) {
    if (keep[d] === want) len += s.offsets[d + 1] - s.offsets[d], count++;
  }
  const ids = new Uint16Array(len);
  const offsets = new Float64Array(count + 1);
  for (let d = 0, k = 0, pos = 0; d < nDocs; d++) {
    if (keep[d] !== want) continue;
    const doc = s.ids.subarray(s.offsets[d], s.offsets[d + 1]);
    ids.set(doc, pos);
    pos += doc.length;
    offsets[++k] = pos;
  }
  return { name: s.name, ids, offsets };
}

export function pack(
  streams: SourceStream[],
  opts: { contextLength: number; valFraction: number; seed: number },
): Packed {
  const T = opts.contextLength;
  const parts = streams.map((s) => {
    const split = splitDocs(s, opts.valFraction, opts.seed);
    const trainDocs = subStream(s, split.isValDoc, 0), valDocs = subStream(s, split.isValDoc, 1);
    const train = packStream(trainDocs.ids, trainDocs.offsets, T);
    const val = packStream(valDocs.ids, valDocs.offsets, T);
    return { s, split, train, val, count: train.count + val.count };
  });
  const total = parts.reduce((a, p) => a + p.count, 0);
  if (total === 0) {
    throw new Error(
      `Empty corpus: no source has ${T} tokens, the context length (tokenize.contextLength)`,
    );
  }
  const tokens = new Uint16Array(total * T);
  const sourceIdx = new Int32Array(total);
  const isVal = new Uint8Array(total);
  const order = new Rng(deriveSeed(opts.seed, "pack:order")).permutation(total);
  let k = 0;
  const perSource: Packed["perSource"] = [];
  parts.forEach((p, si) => {
    for (const [side, packed] of [[0, p.train], [1, p.val]] as const) {
      for (let i = 0; i < packed.count; i++, k++) {
        const dst = order[k];
        tokens.set(packed.seqs.subarray(i * T, (i + 1) * T), dst * T);
        sourceIdx[dst] = si;
        isVal[dst] = side;
      }
    }
    perSource.push({
      source: p.s.name,
      docs: p.s.offsets.length - 1,
      tokens: p.s.ids.length,
      sequences: p.count,
      val_sequences: p.val.count,
      train_docs: p.split.trainDocs,
      val_docs: p.split.valDocs,
      dropped_tokens: p.train.dropped + p.val.dropped,
    });
  });
  return { tokens, sourceIdx, isVal, sourceNames: streams.map((s) => s.name), perSource };
}
