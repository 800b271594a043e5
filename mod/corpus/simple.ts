/**
 * "Simple English" sentences: short sentences made almost entirely of the Dale-Chall list of words
 * familiar to fourth-graders (npm dale-chall). They stand in for TinyStories and Simple English
 * Wikipedia, which no registry ships.
 *
 * @module
 */
import { daleChall } from "dale-chall";

const FAMILIAR = new Set(daleChall.map((w: string) => w.toLowerCase()));

function familiar(word: string): boolean {
  if (FAMILIAR.has(word)) return true;
  // Plain inflections of a familiar word count as familiar (jumps, jumped, jumping, dog's).
  for (const suffix of ["'s", "s", "es", "ed", "d", "ing", "er", "ly"]) {
    if (word.endsWith(suffix) && FAMILIAR.has(word.slice(0, -suffix.length))) return true;
  }
  return false;
}

/** 4-20 words, at least 95% of them familiar, starting with a capital, ending with . ! or ? */
export function isSimpleSentence(sentence: string): boolean {
  if (!/^["']?[A-Z]/.test(sentence) || !/[.!?]["']?$/.test(sentence)) return false;
  const words = sentence.toLowerCase().match(/[a-z']+/g) ?? [];
  if (words.length < 4 || words.length > 20) return false;
  const known = words.filter((w) => familiar(w.replace(/^'+|'+$/g, ""))).length;
  return known / words.length >= 0.95;
}
