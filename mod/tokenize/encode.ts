/**
 * Encodes many documents with the GPT-2 tokenizer, on worker threads when asked: documents are
 * sent in batches to a pool of workers, and the ids come back as one flat Uint16Array with an
 * offset per document. Ids are the same whatever the number of workers.
 *
 * @module
 */
import { createTokenizer } from "./tokenizer.ts";

export interface EncodedDocs {
  /** All ids, document after document. */
  ids: Uint16Array;
  /** Document i's ids are ids[offsets[i] .. offsets[i + 1]). */
  offsets: Float64Array;
}

function assemble(lengthParts: Uint32Array[], idParts: Uint16Array[]): EncodedDocs {
  const nDocs = lengthParts.reduce((a, l) => a + l.length, 0);
  const offsets = new Float64Array(nDocs + 1);
  let d = 0;
  for (const lengths of lengthParts) {
    for (const len of lengths) {
      offsets[d + 1] = offsets[d] + len;
      d++;
    }
  }
  const ids = new Uint16Array(offsets[nDocs]);
  let pos = 0;
  for (const part of idParts) {
    ids.set(part, pos);
    pos += part.length;
  }
  return { ids, offsets };
}

/** Encodes `texts` in order. `workers` 0 encodes on this thread. */
export async function encodeDocs(
  texts: string[],
  opts: { encoder: string; workers: number; batchChars?: number },
): Promise<EncodedDocs> {
  // Batches of about 1 MB of text keep every worker busy without large messages.
  const batchChars = opts.batchChars ?? 1_000_000;
  const batches: string[][] = [];
  let current: string[] = [], chars = 0;
  for (const t of texts) {
    current.push(t);
    chars += t.length;
    if (chars >= batchChars) {
      batches.push(current);
      current = [];
      chars = 0;
    }
  }
  if (current.length > 0) batches.push(current);

  const lengthParts: Uint32Array[] = new Array(batches.length);
  const idParts: Uint16Array[] = new Array(batches.length);
  if (opts.workers <= 0) {
    const tok = createTokenizer(opts.encoder);
    try {
      batches.forEach((batch, b) => {
        const parts = batch.map((t) => tok.encode(t));
        lengthParts[b] = Uint32Array.from(parts, (p) => p.length);
        idParts[b] = new Uint16Array(lengthParts[b].reduce((a, x) => a + x, 0));
        let pos = 0;
        for (const p of parts) {
          idParts[b].set(p, pos);
          pos += p.length;
        }
      });
    } finally {
      tok.free();
    }
    return assemble(lengthParts, idParts);
  }

  createTokenizer(opts.encoder).free(); // fail fast, on this thread, on an unknown encoder name
  const pool = Array.from(
    { length: Math.min(opts.workers, batches.length) },
    () => new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" }),
  );
  try {
    let next = 0;
    await Promise.all(pool.map((w) =>
      new Promise<void>((resolve, reject) => {
        const send = () => {
          if (next >= batches.length) return resolve();
          const id = next++;
          w.postMessage({ encoder: opts.encoder, texts: batches[id], id });
        };
        w.onmessage = (e: MessageEvent<{ id: number; lengths: Uint32Array; ids: Uint16Array }>) => {
          lengthParts[e.data.id] = e.data.lengths;
          idParts[e.data.id] = e.data.ids;
          send();
        };
        w.onerror = (e) => {
          e.preventDefault();
          reject(new Error(`Tokenizer worker failed: ${e.message}`));
        };
        send();
      })
    ));
  } finally {
    for (const w of pool) w.terminate();
  }
  return assemble(lengthParts, idParts);
}
