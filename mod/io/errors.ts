/**
 * One helper for quoting a caught error inside another error's message: errors print as one line
 * (`error: <message>`), so a cause is cut to its first line.
 *
 * @module
 */

/**
 * The first line (at most `maxChars` characters) of a caught value's message: an Error's message,
 * any object's `message`, else the value as text. A WebAssembly trap says so ("wasm trap:
 * unreachable"), since its own message alone does not.
 */
export function errorText(e: unknown, maxChars = 300): string {
  const msg = e instanceof WebAssembly.RuntimeError
    ? `wasm trap: ${e.message}`
    : e instanceof Error
    ? e.message
    : e && typeof e === "object" && "message" in e
    ? String(e.message)
    : String(e);
  return msg.split("\n")[0].slice(0, maxChars);
}
