/**
 * Text clean-up shared by the corpus readers: HTML to plain text, Arabic diacritics, whitespace,
 * cutting long texts into documents at paragraph or sentence boundaries, and sentence splitting.
 *
 * @module
 */

const ENTITIES: Record<string, string> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
  nbsp: " ",
};

export function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, e: string) => {
    if (e[0] === "#") {
      const code = e[1] === "x" || e[1] === "X"
        ? parseInt(e.slice(2), 16)
        : parseInt(e.slice(1), 10);
      return Number.isFinite(code) ? String.fromCodePoint(code) : m;
    }
    return ENTITIES[e.toLowerCase()] ?? m;
  });
}

/** Removes tags (and script/style bodies), decodes entities; block elements become line breaks. */
export function stripHtml(html: string): string {
  return decodeEntities(
    html
      .replace(/<(script|style)[\s\S]*?<\/\1>/gi, "")
      .replace(/<\/(p|h\d|li|div|header|article|section|br)\s*>|<br\s*\/?>/gi, "\n")
      .replace(/<[^>]+>/g, ""),
  );
}

/**
 * Arabic harakat, tanween, shadda, sukun, superscript alef and Quranic annotation marks, which
 * modern Arabic (and Arabic Wikipedia) mostly leaves out; alef wasla becomes a plain alef.
 */
export function stripArabicDiacritics(s: string): string {
  return s
    .replace(/[\u0610-\u061A\u064B-\u065F\u0670\u06D6-\u06ED]/g, "")
    .replace(/\u0671/g, "\u0627");
}

/** Collapses runs of spaces and tabs, trims lines, and keeps at most one blank line in a row. */
export function normaliseWhitespace(s: string): string {
  return s
    .replace(/\r\n?/g, "\n")
    .replace(/[ \t\u00A0]+/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .join("\n")
    .replace(/\n{3,}/g, "\n\n")
    .trim();
}

/** Splits after ., !, ?, 。, ！, ？ or ؟ followed by space or end (a light heuristic). */
export function splitSentences(s: string): string[] {
  return s
    .split(/(?<=[.!?。！？؟])\s+|(?<=[。！？])/u)
    .map((x) => x.trim())
    .filter((x) => x.length > 0);
}

/**
 * Cuts a text into pieces of at most `maxChars`, breaking at paragraph breaks, then sentence ends,
 * then spaces; a piece is only cut mid-word when a single word is longer than `maxChars`.
 */
export function chunkText(text: string, maxChars: number): string[] {
  const out: string[] = [];
  let current = "";
  const push = () => {
    if (current.trim()) out.push(current.trim());
    current = "";
  };
  const add = (piece: string, sep: string) => {
    if (!current) current = piece;
    else if (current.length + sep.length + piece.length <= maxChars) current += sep + piece;
    else {
      push();
      current = piece;
    }
  };
  for (const para of text.split(/\n\s*\n/)) {
    if (para.length <= maxChars) {
      add(para, "\n\n");
      continue;
    }
    for (const sentence of splitSentences(para)) {
      if (sentence.length <= maxChars) {
        add(sentence, " ");
        continue;
      }
      for (const word of sentence.split(" ")) {
        for (let i = 0; i < word.length; i += maxChars) add(word.slice(i, i + maxChars), " ");
      }
    }
    push();
  }
  push();
  return out;
}

/** Groups short items (sentences) into documents of at most `maxChars`, in order. */
export function groupIntoDocs(items: string[], maxChars: number, sep = " "): string[] {
  const out: string[] = [];
  let current = "";
  for (const item of items) {
    if (current && current.length + sep.length + item.length > maxChars) {
      out.push(current);
      current = "";
    }
    current = current ? current + sep + item : item;
  }
  if (current) out.push(current);
  return out;
}
