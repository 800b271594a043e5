/**
 * The GPT-2 tokenizer behind one interface, with two interchangeable encoders that give identical
 * ids (the tests check it on English, French, Arabic, Japanese and Yoruba):
 *
 * - "tiktoken": OpenAI's Rust BPE compiled to wasm (npm tiktoken). About 1-2M tokens/s per core
 *   here, on every script. The default.
 * - "js-tiktoken": the pure-JS port (the design card's choice). About 24K tokens/s on Japanese
 *   here, and seconds on a long run of text without spaces, so it is kept as a reference only.
 *
 * Text is encoded as plain text: a literal "<|endoftext|>" inside a document is not turned into the
 * special token. Documents are joined with the real end-of-text token (50256) by the caller.
 *
 * @module
 */
import { get_encoding, type Tiktoken } from "tiktoken";
import { getEncoding } from "js-tiktoken";
import { type EncoderName, ENCODERS } from "../run/mod.ts";

export const GPT2_VOCAB_SIZE = 50257;
export const EOT_TOKEN = 50256;

export interface Gpt2Tokenizer {
  readonly name: EncoderName;
  encode(text: string): Uint32Array | number[];
  decode(ids: ArrayLike<number>): string;
  /** The text of one token (may be a partial UTF-8 character, shown with U+FFFD). */
  tokenText(id: number): string;
  free(): void;
}

class WasmTokenizer implements Gpt2Tokenizer {
  readonly name = "tiktoken" as const;
  #enc: Tiktoken = get_encoding("gpt2");
  #decoder = new TextDecoder("utf-8", { fatal: false });

  encode(text: string): Uint32Array {
    return this.#enc.encode_ordinary(text);
  }

  decode(ids: ArrayLike<number>): string {
    return this.#decoder.decode(this.#enc.decode(Uint32Array.from(ids)));
  }

  tokenText(id: number): string {
    return this.#decoder.decode(this.#enc.decode_single_token_bytes(id));
  }

  free(): void {
    this.#enc.free();
  }
}

class JsTokenizer implements Gpt2Tokenizer {
  readonly name = "js-tiktoken" as const;
  #enc = getEncoding("gpt2");

  encode(text: string): number[] {
    return this.#enc.encode(text, [], []);
  }

  decode(ids: ArrayLike<number>): string {
    return this.#enc.decode(Array.from(ids));
  }

  tokenText(id: number): string {
    return this.#enc.decode([id]);
  }

  free(): void {}
}

export function createTokenizer(name: string = "tiktoken"): Gpt2Tokenizer {
  if (name === "tiktoken") return new WasmTokenizer();
  if (name === "js-tiktoken") return new JsTokenizer();
  throw new Error(`Unknown tokenizer encoder "${name}": expected one of ${ENCODERS.join(", ")}`);
}
