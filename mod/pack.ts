/**
 * Packing: each source's documents, joined with <|endoftext|>, are cut into fixed-length
 * sequences. A sequence never mixes sources, so every sequence has one source. Each source's
 * sequences are split into train and validation by the same fraction (so both splits keep the
 * mix's composition), then all sequences are shuffled together.
 *
 * @module
 */
import { EOT_TOKEN } from "./tokenizer.ts";
import { deriveSeed, Rng } from "./rng.ts";

export interface SourceStream {
  name: string;
  ids: Uint16Array;
  /** Document boundaries into `ids` (length docs + 1). */
  offsets: Float64Array;
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

export function pack(
  streams: SourceStream[],
  opts: { contextLength: number; valFraction: number; seed: number },
): Packed {
  const T = opts.contextLength;
  const parts = streams.map((s) => ({ s, ...packStream(s.ids, s.offsets, T) }));
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
    const nVal = Math.round(opts.valFraction * p.count);
    const valPick = new Rng(deriveSeed(opts.seed, `pack:val:${p.s.name}`)).permutation(p.count);
    const val = new Uint8Array(p.count);
    for (let i = 0; i < nVal; i++) val[valPick[i]] = 1;
    for (let i = 0; i < p.count; i++, k++) {
      const dst = order[k];
      tokens.set(p.seqs.subarray(i * T, (i + 1) * T), dst * T);
      sourceIdx[dst] = si;
      isVal[dst] = val[i];
    }
    perSource.push({
      source: p.s.name,
      docs: p.s.offsets.length - 1,
      tokens: p.s.ids.length,
      sequences: p.count,
      val_sequences: nVal,
      dropped_tokens: p.dropped,
    });
  });
  return { tokens, sourceIdx, isVal, sourceNames: streams.map((s) => s.name), perSource };
}
