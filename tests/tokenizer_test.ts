import { assertEquals } from "./assert.ts";
import { createTokenizer } from "../mod/tokenize/mod.ts";
import { encodeDocs } from "../mod/tokenize/mod.ts";

// One line per language: English, French, Arabic, Japanese, Yoruba (from the embedded sources).
const SAMPLE = [
  "All human beings are born free and equal in dignity and rights.",
  "Tous les êtres humains naissent libres et égaux en dignité et en droits.",
  "يولد جميع الناس أحرارًا متساوين في الكرامة والحقوق.",
  "すべての人間は、生まれながらにして自由であり、かつ、尊厳と権利とについて平等である。",
  "Gbogbo ènìyàn ni a bí ní òmìnira; iyì àti ẹ̀tọ́ kọ̀ọ̀kan sì dọ́gba.",
  "  leading spaces\n\nand\ttabs, numbers 12345 and emoji 🙂 <|endoftext|>",
];

Deno.test("GPT-2 ids match known answers", () => {
  const tok = createTokenizer("tiktoken");
  try {
    assertEquals(Array.from(tok.encode("Hello world")), [15496, 995]);
    assertEquals(Array.from(tok.encode(" the")), [262]);
    // A literal end-of-text marker in a document is ordinary text, never token 50256.
    assertEquals(Array.from(tok.encode("<|endoftext|>")), [27, 91, 437, 1659, 5239, 91, 29]);
    assertEquals(tok.decode([15496, 995]), "Hello world");
  } finally {
    tok.free();
  }
});

Deno.test("the wasm and pure-JS encoders give identical ids on a multilingual sample", () => {
  const wasm = createTokenizer("tiktoken"), js = createTokenizer("js-tiktoken");
  try {
    for (const line of SAMPLE) {
      const a = Array.from(wasm.encode(line)), b = Array.from(js.encode(line));
      assertEquals(a, b, `ids differ on ${JSON.stringify(line.slice(0, 20))}`);
      assertEquals(wasm.decode(a), line);
    }
  } finally {
    wasm.free();
  }
});

Deno.test("encoding on workers gives the same ids and offsets as on one thread", async () => {
  const texts = Array.from({ length: 60 }, (_, i) => SAMPLE[i % SAMPLE.length] + ` #${i}`);
  const one = await encodeDocs(texts, { encoder: "tiktoken", workers: 0 });
  const two = await encodeDocs(texts, { encoder: "tiktoken", workers: 2, batchChars: 500 });
  assertEquals(Array.from(two.offsets), Array.from(one.offsets));
  assertEquals(Array.from(two.ids), Array.from(one.ids));
  const tok = createTokenizer("tiktoken");
  assertEquals(
    Array.from(one.ids.subarray(one.offsets[3], one.offsets[4])),
    Array.from(tok.encode(texts[3])),
  );
  tok.free();
});
