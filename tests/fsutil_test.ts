import { assert, assertEquals } from "./assert.ts";
import { writeFileAtomic } from "../mod/io/mod.ts";

const WRITER = `
import { writeFileAtomic } from "${new URL("../mod/io/fs.ts", import.meta.url).href}";
const [path, mb] = Deno.args;
const data = new Uint8Array(Number(mb) * 1024 * 1024);
for (let round = 1; ; round++) {
  data.fill(round % 250);
  await writeFileAtomic(path, data);
  console.log(round);
}
`;

Deno.test("a writer killed mid-write never leaves a partial file under the final name", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/writer.ts`, target = `${dir}/out.bin`;
    await Deno.writeTextFile(script, WRITER);
    await writeFileAtomic(target, new Uint8Array(64 * 1024 * 1024).fill(7));
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", "--allow-write", script, target, "64"],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    // Let it finish a write or two and kill it in the middle of a later one.
    const reader = child.stdout.getReader();
    await reader.read();
    await new Promise((r) => setTimeout(r, 40));
    child.kill("SIGKILL");
    await child.status;
    await reader.cancel();
    const bytes = await Deno.readFile(target);
    assertEquals(bytes.length, 64 * 1024 * 1024, "the target is always a whole file");
    assert(bytes.every((b) => b === bytes[0]), "the target holds one complete write");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
