import { assert, assertEquals, assertMatch } from "./assert.ts";
import { runTask } from "./helpers.ts";

function oneErrorLine(stderr: string): string {
  const lines = stderr.trim().split("\n").filter((l) => !/^(mix|tokenize): /.test(l));
  assertEquals(lines.length, 1, `expected one error line, got:\n${stderr}`);
  assert(!/\bat .*\.ts:\d+/.test(stderr), `no stack trace expected:\n${stderr}`);
  return lines[0];
}

Deno.test("every task answers --help", async () => {
  for (const task of ["mix", "tokenize", "sweep"]) {
    const out = await runTask(task, ["--help"]);
    assertEquals(out.code, 0);
    assertMatch(out.stdout, new RegExp(`deno task ${task} \\[options\\]`));
    assertMatch(out.stdout, /--preset NAME/);
  }
});

Deno.test("a stray positional argument is an error, not a run of the default preset", async () => {
  const out = await runTask("tokenize", ["test"]);
  assertEquals(out.code, 1);
  assertEquals(
    oneErrorLine(out.stderr),
    'error: Unexpected argument "test": deno task tokenize takes options only (did you mean ' +
      "--preset test?) (see --help)",
  );
});

Deno.test("an unknown preset or config key exits non-zero with one line naming it", async () => {
  let out = await runTask("tokenize", ["--preset", "giant"]);
  assertEquals(out.code, 1);
  assertEquals(
    oneErrorLine(out.stderr),
    'error: Unknown preset "giant": expected one of test, demo, study, paper',
  );
  out = await runTask("tokenize", ["--preset", "test", "--set", "tokenize.contextLenght=9"]);
  assertEquals(out.code, 1);
  assertEquals(oneErrorLine(out.stderr), 'error: Unknown config key "tokenize.contextLenght"');
});

Deno.test("a missing or corrupt source file fails with one line and leaves earlier output intact", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const base = ["--preset", "test", "--set", `dataDir=${dir}/data`, "--set", "mix.rows=50"];
    const first = await runTask("mix", base);
    assertEquals(first.code, 0, first.stderr);
    const mixPath = `${dir}/data/test/mix.parquet`;
    const before = await Deno.readFile(mixPath);

    const sources = (p: string) =>
      JSON.stringify({
        mix: { sources: [{ name: "local", weight: 1, kind: "files", paths: [p] }] },
      });
    await Deno.writeTextFile(`${dir}/missing.json`, sources(`${dir}/nope.txt`));
    let out = await runTask("tokenize", [...base, "--config", `${dir}/missing.json`]);
    assertEquals(out.code, 1);
    assertMatch(
      oneErrorLine(out.stderr),
      /Cannot read source file ".*nope.txt": file does not exist/,
    );

    await Deno.writeTextFile(`${dir}/bad.parquet`, "PAR1 but not really");
    await Deno.writeTextFile(`${dir}/corrupt.json`, sources(`${dir}/bad.parquet`));
    out = await runTask("mix", [...base, "--config", `${dir}/corrupt.json`]);
    assertEquals(out.code, 1);
    assertMatch(
      oneErrorLine(out.stderr),
      /Cannot read Parquet ".*bad.parquet": corrupt or truncated/,
    );

    await Deno.writeTextFile(`${dir}/empty.txt`, "   \n");
    await Deno.writeTextFile(`${dir}/empty.json`, sources(`${dir}/empty.txt`));
    out = await runTask("mix", [...base, "--config", `${dir}/empty.json`]);
    assertEquals(out.code, 1);
    assertMatch(oneErrorLine(out.stderr), /empty corpus/);

    assertEquals(await Deno.readFile(mixPath), before, "the earlier mix.parquet is untouched");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
