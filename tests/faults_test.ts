/**
 * Fault injection on the test preset: kills, damaged files and failed API runs, each checked for
 * what the user sees (one error line naming the file, or a rebuild) and for what is left on disk.
 *
 * One run is built through the features stage (the unbroken reference), then:
 * - the SAE stage is SIGKILLed after a checkpoint, a partial checkpoint file is planted beside it,
 *   and the resumed run's metrics and weights must equal the unbroken run's, step for step;
 * - a truncated activation shard is rebuilt (progress.json no longer vouches for it);
 * - damaged Parquet and safetensors files read as one error naming the file, never a wasm trap;
 * - tokens.parquet changed in place with its size and mtime kept stops `train --force` with one
 *   line, and the next tokenize rebuilds it;
 * - a failed autointerp run keeps the earlier explanations.parquet; a host not allowed says where
 *   to allow it;
 * - a second copy of a stage on a locked run says who holds it; a dead holder's lock is taken over;
 * - a symlink planted under results/ is not followed; binary and invalid UTF-8 sources are counted.
 *
 *   deno test -A tests/faults_test.ts
 *
 * @module
 */
import * as arrow from "apache-arrow";
import { join } from "node:path";
import { assert, assertAllClose, assertEquals, assertMatch, assertRejects } from "./assert.ts";
import { readParquet, readSafetensors, writeFileAtomic, writeParquet } from "../mod/io/mod.ts";
import { newTextNotes, rowsFromBytes } from "../mod/corpus/mod.ts";
import { readActivationShard } from "../mod/activations/mod.ts";
import { readTokens } from "../mod/tokenize/mod.ts";
import { lockRun, releaseRunLocks } from "../mod/run/mod.ts";
import { copyTree, killWhen, runTask, taskCommand, TEST_PRESET_ARGS } from "./helpers.ts";

const ARGS = [
  ...TEST_PRESET_ARGS,
  "--set",
  "sae.checkpointEvery=4",
];
const ALL = ["--allow-read", "--allow-write", "--allow-env", "--allow-ffi"];

/** A RegExp matching `text` literally. */
function literal(text: string): RegExp {
  return new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
}

function errorLines(stderr: string): string[] {
  return stderr.split("\n").filter((l) => /^error: /.test(l));
}

/** Overwrites `bytes` at `offset` in place, keeping the file's size (and its times when asked). */
async function scribble(path: string, offset: number, keepTimes: boolean): Promise<void> {
  const st = await Deno.stat(path);
  const f = await Deno.open(path, { write: true });
  await f.seek(offset, Deno.SeekMode.Start);
  await f.write(new Uint8Array(100).fill(0x58));
  f.close();
  if (keepTimes) await Deno.utime(path, st.atime!, st.mtime!);
}

async function checkpointStep(dir: string): Promise<number> {
  try {
    return JSON.parse(await Deno.readTextFile(`${dir}/sweep_state.json`)).step;
  } catch {
    return 0;
  }
}

Deno.test("kills, damaged files and failed API runs leave every run whole (test preset)", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "rtd-faults-" });
  const a = join(root, "a"), b = join(root, "b");
  await Deno.mkdir(a);
  try {
    const built = await runTask("features", ARGS, ALL, a);
    assertEquals(built.code, 0, built.stderr);
    await copyTree(a, b);

    await t.step(
      "a SAE run killed after a checkpoint resumes to the unbroken run, metrics included",
      async () => {
        const sae = join(b, "results/test/sae");
        for (const e of Deno.readDirSync(sae)) {
          if (e.isDirectory) await Deno.remove(join(sae, e.name), { recursive: true });
        }
        await Deno.remove(join(sae, "sae.manifest.json"));
        const ckpt = join(sae, "checkpoint");
        const killed = await killWhen(
          taskCommand("sae", ARGS, { cwd: b, flags: ALL }),
          async () => (await checkpointStep(ckpt)) >= 12,
        );
        assert(killed, "the run was killed before it finished");
        // What a kill in the middle of the next checkpoint's write leaves behind.
        const partial = join(ckpt, "sweep_state.safetensors.999999.0badc0de.tmp");
        await Deno.writeFile(partial, new Uint8Array(1000));
        const resumed = await runTask("sae", ARGS, ALL, b);
        assertEquals(resumed.code, 0, resumed.stderr);
        assertMatch(resumed.stderr, /resuming from the checkpoint at step (12|16|20|24|28)/);
        assert(
          !(await Deno.stat(partial).then(() => true, () => false)),
          "the partial file is gone",
        );
        for (const name of ["f64", "f128"]) {
          const ma = await readParquet(join(a, "results/test/sae", name, "metrics.parquet"));
          const mb = await readParquet(join(b, "results/test/sae", name, "metrics.parquet"));
          const col = (t: arrow.Table, c: string) => Array.from(t.getChild(c)!, Number);
          assertEquals(col(mb, "step"), col(ma, "step"), `${name}: metrics steps`);
          assertAllClose(
            Float64Array.from(col(mb, "mse")),
            Float64Array.from(col(ma, "mse")),
            1e-5,
          );
          assertAllClose(Float64Array.from(col(mb, "l0")), Float64Array.from(col(ma, "l0")), 1e-5);
          const wa = await readSafetensors(join(a, "results/test/sae", name, "sae.safetensors"));
          const wb = await readSafetensors(join(b, "results/test/sae", name, "sae.safetensors"));
          assertAllClose(
            wb.tensors.W_dec.data as Float32Array,
            wa.tensors.W_dec.data as Float32Array,
            1e-5,
          );
        }
      },
    );

    await t.step(
      "damaged Parquet and safetensors files are one error naming the file",
      async () => {
        const shard = join(b, "data/test/activations/train-00000.parquet");
        const bytes = await Deno.readFile(shard);
        const cut = join(root, "cut.parquet"), hit = join(root, "hit.parquet");
        await Deno.writeFile(cut, bytes.subarray(0, Math.floor(bytes.length / 2)));
        await Deno.writeFile(hit, bytes);
        await scribble(hit, Math.floor(bytes.length / 4), false); // a data page: parquet-wasm traps
        for (const p of [cut, hit]) {
          await assertRejects(
            () => readActivationShard(p),
            literal(`Cannot read Parquet "${p}": corrupt or truncated`),
          );
        }
        const tokens = join(b, "data/test/tokens.parquet");
        const tok = await Deno.readFile(tokens);
        const badTokens = join(root, "tokens.parquet");
        await Deno.writeFile(badTokens, tok);
        await scribble(badTokens, Math.floor(tok.length / 3), false);
        await assertRejects(
          () => readTokens(badTokens, "train"),
          literal(`Cannot read Parquet "${badTokens}": corrupt or truncated`),
        );
        const model = join(b, "results/test/transformer/model.safetensors");
        const weights = await Deno.readFile(model);
        const cutModel = join(root, "model.safetensors");
        await Deno.writeFile(cutModel, weights.subarray(0, weights.length - 1000));
        await assertRejects(
          () => readSafetensors(cutModel),
          literal(`Cannot read "${cutModel}": tensor`),
        );
        await Deno.writeFile(cutModel, weights.subarray(0, 4));
        await assertRejects(() => readSafetensors(cutModel), /corrupt or truncated/);
      },
    );

    await t.step(
      "a truncated activation shard is rebuilt, not trusted from progress.json",
      async () => {
        const shard = join(b, "data/test/activations/train-00001.parquet");
        const size = (await Deno.stat(shard)).size;
        await Deno.truncate(shard, Math.floor(size / 2));
        const out = await runTask("activations", ARGS, ALL, b);
        assertEquals(out.code, 0, out.stderr);
        assertMatch(
          out.stderr,
          /activations: running \(output "train-00001.parquet" was modified\)/,
        );
        assertMatch(out.stderr, /shard 2 changed since it was written: rebuilding it/);
        assertEquals((await readActivationShard(shard)).seq.length > 0, true);
      },
    );

    await t.step(
      "tokens.parquet changed in place (size and mtime kept) stops train --force, then tokenize rebuilds it",
      async () => {
        const tokens = join(b, "data/test/tokens.parquet");
        await scribble(tokens, Math.floor((await Deno.stat(tokens)).size / 3), true);
        const out = await runTask("train", [...ARGS, "--force"], ALL, b);
        assertEquals(out.code, 1, out.stderr);
        const lines = errorLines(out.stderr);
        assertEquals(lines.length, 1, out.stderr);
        assertMatch(lines[0], /Input ".*tokens.parquet" of train is not what tokenize wrote/);
        assert(!/RuntimeError|wasm:\/\//.test(out.stderr), out.stderr);
        const again = await runTask("tokenize", ARGS, ALL, b);
        assertEquals(again.code, 0, again.stderr);
        assertMatch(again.stderr, /tokenize: running \(output "tokens.parquet" was modified\)/);
        await readTokens(tokens, "train"); // whole again
      },
    );

    await t.step("a failed autointerp run keeps the earlier explanations.parquet", async () => {
      const path = join(a, "results/test/sae/f64/explanations.parquet");
      const good = new arrow.Table({
        feature: arrow.makeVector(Int32Array.from([1, 2])),
        explanation: arrow.vectorFromArray(["dates", "French words"], new arrow.Utf8()),
      });
      await writeParquet(path, good);
      const before = await Deno.readFile(path);
      const env = { OPENAI_API_KEY: "none", OPENAI_BASE_URL: "http://127.0.0.1:9/v1" };
      const cmd = (flags: string[]) =>
        taskCommand("autointerp", [...ARGS, "--set", "autointerp.maxRetries=0"], {
          flags,
          cwd: a,
          env,
        }).output();
      const failed = await cmd([...ALL, "--allow-net=127.0.0.1"]);
      const stderr = new TextDecoder().decode(failed.stderr);
      assertEquals(failed.code, 1, stderr);
      assertMatch(errorLines(stderr)[0], /every feature failed, so no explanations.parquet/);
      assertEquals(await Deno.readFile(path), before);
      const t2 = await readParquet(path);
      assertEquals(Array.from(t2.getChild("explanation")!), ["dates", "French words"]);

      const denied = await cmd([...ALL, "--allow-net=api.openai.com"]);
      const line = errorLines(new TextDecoder().decode(denied.stderr))[0];
      assertEquals(denied.code, 1);
      assertMatch(
        line,
        /host "127.0.0.1" is not among the hosts .* --allow-net of the autointerp task in deno.json/,
      );
      assertEquals(await Deno.readFile(path), before);
    });

    await t.step(
      "a second copy of a stage on a locked run says who holds it; a dead holder's lock is taken over",
      async () => {
        await lockRun(
          { run: "test", dataDir: join(a, "data"), resultsDir: join(a, "results") },
          "faults-test",
        );
        try {
          const out = await runTask("mix", ARGS, ALL, a);
          assertEquals(out.code, 1, out.stderr);
          assertMatch(
            errorLines(out.stderr)[0],
            new RegExp(
              `Run "test" is busy: pid ${Deno.pid} \\(stage faults-test, since [0-9T:.Z-]+\\)`,
            ),
          );
        } finally {
          releaseRunLocks();
        }
        // A lock file left by a killed holder (no process holds the OS lock) is taken over.
        const stale = { pid: 999999, stage: "sae", since: "2020-01-01T00:00:00.000Z" };
        await Deno.writeTextFile(join(a, "data/test/run.lock"), JSON.stringify(stale));
        const out = await runTask("mix", ARGS, ALL, a);
        assertEquals(out.code, 0, out.stderr);
        assertMatch(out.stderr, /took over the lock of pid 999999 \(stage sae/);
      },
    );
  } finally {
    releaseRunLocks();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a write inside the project refuses a path through a symlink planted under results/", async () => {
  const outside = await Deno.makeTempDir({ prefix: "rtd-outside-" });
  const run = new URL(`../results/faults-${Deno.pid}`, import.meta.url).pathname;
  try {
    await Deno.mkdir(run, { recursive: true });
    await Deno.symlink(outside, join(run, "sae"));
    await assertRejects(
      () => writeFileAtomic(join(run, "sae", "cfg.json"), "{}"),
      /Refusing to write ".*cfg.json": ".*sae" is a symbolic link/,
    );
    assertEquals([...Deno.readDirSync(outside)].length, 0);
  } finally {
    await Deno.remove(run, { recursive: true });
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("binary files and invalid UTF-8 in a files source are counted, not mixed in silently", async () => {
  const notes = newTextNotes();
  const opts = { textField: "text", maxChars: 1000, label: "x", notes };
  assertEquals(await rowsFromBytes(new Uint8Array([80, 75, 3, 4, 0, 0, 1]), "a.txt", opts), []);
  const bad = new Uint8Array([104, 105, 0xff, 0xfe, 32, 116, 104, 101, 114, 101]);
  const rows = await rowsFromBytes(bad, "b.txt", opts);
  assertEquals(rows.length, 1);
  assertEquals(notes.binaryFiles, ["x"]);
  assertEquals(notes.replacedDocs, 1);
});
