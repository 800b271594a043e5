/**
 * Removes secrets (the API key) from any text that leaves the client: error messages, log lines
 * and cache files. Error bodies of some servers echo the key ("Incorrect API key provided:
 * sk-..."), and a stack or a header dump may carry "Authorization: Bearer ...", so both the exact
 * key and any bearer token are replaced.
 *
 * @module
 */

export const REDACTED = "[REDACTED]";

/** `text` with every occurrence of each secret (of 4+ characters) and every bearer token replaced. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) {
    if (s && s.length >= 4) out = out.split(s).join(REDACTED);
  }
  return out.replace(/(Bearer\s+)[^\s"',;]+/gi, `$1${REDACTED}`);
}
