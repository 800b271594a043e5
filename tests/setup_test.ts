/**
 * tasks/setup.sh asks the project's own BLAS look-up what the tensor stages will find; a module
 * move must not silently turn that line into "could not check".
 */
import { assert } from "./assert.ts";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

Deno.test("every project module tasks/setup.sh imports exists", async () => {
  const text = await Deno.readTextFile(`${ROOT}/tasks/setup.sh`);
  const paths = [...text.matchAll(/import\("\.\/(mod\/[^"]+)"\)/g)].map((m) => m[1]);
  assert(paths.length > 0, "setup.sh imports no project module any more");
  for (const p of paths) {
    const info = await Deno.stat(`${ROOT}/${p}`).catch(() => null);
    assert(info?.isFile, `tasks/setup.sh imports "./${p}", which does not exist`);
  }
});
