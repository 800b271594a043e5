/**
 * Formatting helpers for the autointerpretability prompts: the 0-10 activation scale, token
 * escaping, cropping long contexts around their peak, highlighting for fuzzing, and the seeded
 * random numbers behind every shuffle.
 *
 * The 0-10 rule is Bills et al.'s (openai/automated-interpretability, normalize_activations):
 * value = min(10, floor(10 * relu(act) / maxAct)), where maxAct is the feature's largest
 * activation over the examples shown in that prompt. Flooring means a token shows as non-zero
 * only from a tenth of maxAct up, and only the max itself shows as 10.
 *
 * @module
 */
import type { ActivationExample } from "./types.ts";

/** Normalises activations to integers 0..10 against `maxAct` (see the module note). */
export function normaliseActs(acts: readonly number[], maxAct: number): number[] {
  if (!(maxAct > 0)) return acts.map(() => 0);
  return acts.map((a) => (a > 0 ? Math.min(10, Math.floor((10 * a) / maxAct)) : 0));
}

/** Fraction of the tokens of `examples` whose 0-10 value against `maxAct` is not 0 (0 if none). */
export function nonZeroProportion(examples: readonly ActivationExample[], maxAct: number): number {
  let nonZero = 0, total = 0;
  for (const ex of examples) {
    for (const v of normaliseActs(ex.acts, maxAct)) nonZero += v > 0 ? 1 : 0;
    total += ex.acts.length;
  }
  return total > 0 ? nonZero / total : 0;
}

/** Largest activation over a set of examples (0 when all are silent or there are none). */
export function maxActivation(examples: readonly ActivationExample[]): number {
  let max = 0;
  for (const ex of examples) for (const a of ex.acts) if (a > max) max = a;
  return max;
}

/**
 * Makes a token printable on one line: the prompts put one token per line and separate the
 * value with a tab, so newline, carriage return and tab are written as the two-character
 * escapes \n, \r and \t (and a backslash as \\ so that the escapes stay unambiguous).
 */
export function escapeToken(token: string): string {
  return token.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/\r/g, "\\r").replace(
    /\t/g,
    "\\t",
  );
}

/** Plain text of a context, with newlines and tabs escaped so that an example fits one line. */
export function contextText(tokens: readonly string[]): string {
  return tokens.map(escapeToken).join("");
}

/**
 * Crops an example to at most `maxLen` tokens around its first max-activating token, keeping
 * 3/4 of the window before the peak (what led up to it matters more than what follows).
 */
export function cropExample(ex: ActivationExample, maxLen: number): ActivationExample {
  const n = ex.tokens.length;
  if (n <= maxLen) return ex;
  let peak = 0;
  for (let i = 1; i < n; i++) if (ex.acts[i] > ex.acts[peak]) peak = i;
  const start = Math.max(0, Math.min(n - maxLen, peak - Math.floor((maxLen * 3) / 4)));
  return {
    tokens: ex.tokens.slice(start, start + maxLen),
    acts: ex.acts.slice(start, start + maxLen),
    ...(ex.seq === undefined ? {} : { seq: ex.seq }),
    ...(ex.start === undefined ? {} : { start: ex.start + start }),
  };
}

/** Indices of the tokens fuzzing highlights: act > 0 and act >= threshold * the context's max. */
export function activatingPositions(acts: readonly number[], threshold: number): number[] {
  let max = 0;
  for (const a of acts) if (a > max) max = a;
  const out: number[] = [];
  if (max <= 0) return out;
  acts.forEach((a, i) => {
    if (a > 0 && a >= threshold * max) out.push(i);
  });
  return out;
}

/** Text of a context with the given tokens wrapped in << >>; adjacent ones share one pair. */
export function highlight(tokens: readonly string[], positions: readonly number[]): string {
  const marked = new Set(positions);
  let out = "";
  for (let i = 0; i < tokens.length; i++) {
    const open = marked.has(i) && !marked.has(i - 1);
    const close = marked.has(i) && !marked.has(i + 1);
    out += (open ? "<<" : "") + escapeToken(tokens[i]) + (close ? ">>" : "");
  }
  return out;
}

/** FNV-1a hash of a string: turns (seed, feature, purpose) into a 32-bit PRNG seed. */
export function hashSeed(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** mulberry32: a small, fast, seedable PRNG returning floats in [0, 1). */
export function makeRng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Seeded PRNG for one purpose of one feature, so that each shuffle is reproducible on its own. */
export function rngFor(seed: number, featureId: number, purpose: string): () => number {
  return makeRng(hashSeed(`${seed}:${featureId}:${purpose}`));
}

/** Fisher-Yates shuffle into a new array. */
export function shuffled<T>(items: readonly T[], rng: () => number): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Up to `k` items drawn without replacement, in a seeded order. */
export function sample<T>(items: readonly T[], k: number, rng: () => number): T[] {
  return shuffled(items, rng).slice(0, Math.max(0, k));
}
