/**
 * Compact encodings for the report's data files: numbers rounded to 3 significant digits, a
 * token-string table with small integer ids (most frequent string first, so the common ids are
 * the short ones), and token texts that show whole characters.
 *
 * GPT-2 is byte-level: an Arabic letter (2 UTF-8 bytes) or a Japanese one (3 bytes) is often split
 * over two or three tokens, and each token decoded alone shows U+FFFD. `contextTexts` decodes a
 * context's bytes in order with a streaming decoder, so each character belongs to the token that
 * completes it and the tokens before it show an empty fragment; the line reads as the real text.
 *
 * @module
 */

/** `x` rounded to 3 significant digits (JSON prints it short: 0.0123, 1.23e-7). */
export function round3(x: number): number {
  if (!Number.isFinite(x) || x === 0) return Number.isFinite(x) ? 0 : x;
  return Number(x.toPrecision(3));
}

/** The text of each token of a context, with characters split over tokens joined up. */
export function contextTexts(
  ids: ArrayLike<number>,
  tokenBytes: (id: number) => Uint8Array,
): string[] {
  const decoder = new TextDecoder("utf-8", { fatal: false });
  const out: string[] = [];
  for (let i = 0; i < ids.length; i++) {
    out.push(decoder.decode(tokenBytes(ids[i]), { stream: true }));
  }
  // Bytes of a character cut off by the window's end show as U+FFFD on the last token.
  if (out.length > 0) out[out.length - 1] += decoder.decode();
  return out;
}

/** Interns strings as integer ids; `finish()` renumbers them by falling frequency. */
export class TokenTable {
  #ids = new Map<string, number>();
  #strings: string[] = [];
  #counts: number[] = [];
  #order: Int32Array | null = null;

  /** The provisional id of `s` (valid until `finish()`; map it with `remap`). */
  intern(s: string): number {
    let id = this.#ids.get(s);
    if (id === undefined) {
      id = this.#strings.length;
      this.#ids.set(s, id);
      this.#strings.push(s);
      this.#counts.push(0);
    }
    this.#counts[id]++;
    return id;
  }

  /** Fixes the numbering: the final table and the map from provisional to final ids. */
  finish(): { strings: string[]; remap: Int32Array } {
    const n = this.#strings.length;
    const byFreq = Array.from({ length: n }, (_, i) => i).sort((a, b) =>
      this.#counts[b] - this.#counts[a] || a - b
    );
    const remap = new Int32Array(n);
    byFreq.forEach((old, i) => remap[old] = i);
    this.#order = remap;
    return { strings: byFreq.map((i) => this.#strings[i]), remap };
  }

  /** The final id of a provisional id (after `finish()`). */
  remap(id: number): number {
    if (!this.#order) throw new Error("TokenTable.remap() called before finish()");
    return this.#order[id];
  }
}

/** JSON for a data file, as a script that hands it to the page: works from file:// URLs. */
export function dataScript(key: string, payload: unknown): string {
  return `RTD.add(${JSON.stringify(key)},${JSON.stringify(payload)});\n`;
}

/** JSON that is safe inside an HTML <script> element. */
export function jsonForHtml(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

/** Text escaped for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) =>
      c === "&"
        ? "&amp;"
        : c === "<"
        ? "&lt;"
        : c === ">"
        ? "&gt;"
        : c === '"'
        ? "&quot;"
        : "&#39;",
  );
}
