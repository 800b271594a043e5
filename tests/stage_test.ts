import { assert, assertEquals } from "./assert.ts";
import { runStage, type StageSpec } from "../mod/run/mod.ts";

function counter(dir: string, params: unknown, force = false) {
  const state = { runs: 0 };
  const spec = (): StageSpec => ({
    name: "demo",
    dir,
    inputs: [`${dir}/in.txt`],
    params,
    source: import.meta.url,
    outputs: [`${dir}/out.txt`],
    force,
    run: async () => {
      state.runs++;
      const text = await Deno.readTextFile(`${dir}/in.txt`);
      await Deno.writeTextFile(`${dir}/out.txt`, text.toUpperCase());
      return { chars: text.length };
    },
  });
  return { state, spec };
}

Deno.test("a stage with unchanged inputs, params and source is skipped, fast", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/in.txt`, "hello");
    const { state, spec } = counter(dir, { a: 1 });
    const first = await runStage(spec());
    assertEquals(first.skipped, false);
    assertEquals(first.manifest.stats, { chars: 5 });
    const t0 = performance.now();
    const second = await runStage(spec());
    const ms = performance.now() - t0;
    assertEquals(second.skipped, true);
    assertEquals(state.runs, 1);
    assert(ms < 1000, `skipping took ${ms} ms`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a stage reruns when a param, an input or an output changes, or with force", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/in.txt`, "hello");
    const a = counter(dir, { a: 1 });
    await runStage(a.spec());
    const b = counter(dir, { a: 2 });
    assertEquals((await runStage(b.spec())).skipped, false, "param change");
    await Deno.writeTextFile(`${dir}/in.txt`, "world!");
    assertEquals((await runStage(b.spec())).skipped, false, "input change");
    assertEquals((await runStage(b.spec())).skipped, true);
    await Deno.writeTextFile(`${dir}/out.txt`, "tampered");
    assertEquals((await runStage(b.spec())).skipped, false, "output modified");
    await Deno.remove(`${dir}/out.txt`);
    assertEquals((await runStage(b.spec())).skipped, false, "output deleted");
    const f = counter(dir, { a: 2 }, true);
    assertEquals((await runStage(f.spec())).skipped, false, "force");
    // Params hash by value: key order does not matter.
    const c = counter(dir, { a: 2 });
    assertEquals((await runStage(c.spec())).skipped, true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the manifest records input and output hashes, params, versions and source hash", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/in.txt`, "abc");
    const { spec } = counter(dir, { k: "v" });
    const { manifest } = await runStage(spec());
    // sha-256 of "abc"
    assertEquals(
      manifest.inputs[`${dir}/in.txt`].sha256,
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
    assertEquals(manifest.params, { k: "v" });
    assert(/^[0-9a-f]{64}$/.test(manifest.sourceHash));
    assertEquals(manifest.versions.deno, Deno.version.deno);
    assert(manifest.versions["apache-arrow"].length > 0);
    const onDisk = JSON.parse(await Deno.readTextFile(`${dir}/demo.manifest.json`));
    assertEquals(onDisk.outputs[`${dir}/out.txt`].size, 3);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
