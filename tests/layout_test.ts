/**
 * Tests of mod/run/layout.ts and mod/run/graph.ts: every output file name and the hook name are
 * spelled in the layout module only; tasks never import tasks; the stage graph agrees with
 * deno.json; a stage's body (mod/<domain>/stage.ts) is imported by its own task only; and a
 * log-line edit in one stage's body changes that stage's source hash only.
 */
import { join, relative } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import {
  ACTIVATION_FILES,
  DATA_FILES,
  HOOK_NAME,
  PROJECT_ROOT,
  RESULTS_FILES,
  SAE_FILES,
  SAE_ROOT_FILES,
  STAGE_NAMES,
  STAGES,
  stageSourceHash,
  stageTask,
  TRANSFORMER_FILES,
} from "../mod/run/mod.ts";

async function sourceFilesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...await sourceFilesUnder(p));
    else if (e.name.endsWith(".ts")) out.push(p);
  }
  return out.sort();
}

Deno.test("no source file but mod/run/layout.ts spells an output file name or the hook name", async () => {
  const names = new Set<string>([
    HOOK_NAME,
    ...Object.values(DATA_FILES),
    ...Object.values(TRANSFORMER_FILES),
    ...Object.values(ACTIVATION_FILES),
    ...Object.values(SAE_FILES),
    ...Object.values(SAE_ROOT_FILES),
    ...Object.values(RESULTS_FILES).filter((n) => n.includes(".")),
  ]);
  const offenders: string[] = [];
  for (const top of ["mod", "tasks"]) {
    for (const file of await sourceFilesUnder(join(PROJECT_ROOT, top))) {
      const rel = relative(PROJECT_ROOT, file);
      if (rel === "mod/run/layout.ts") continue;
      const text = await Deno.readTextFile(file);
      for (const name of names) {
        // The name as a whole string literal, or a template literal that builds a path ending in
        // it; help texts that mention data/<run>/mix.parquet are prose, not paths.
        const n = name.replace(/[.]/g, "\\.");
        const whole = new RegExp(`["'\`]${n}["'\`]`);
        const built = new RegExp(`\`[^\`]*\\$\\{[^\`]*/${n}\``);
        const code = text.split("\n").filter((l) => !/^\s*(\*|\/\/|\/\*\*)/.test(l)).join("\n");
        if (whole.test(code) || built.test(code)) offenders.push(`${rel}: ${name}`);
      }
    }
  }
  assertEquals(offenders, []);
});

Deno.test("tasks never import tasks (upstream runs go through the stage graph)", async () => {
  const offenders: string[] = [];
  for (const file of await sourceFilesUnder(join(PROJECT_ROOT, "tasks"))) {
    const text = await Deno.readTextFile(file);
    if (/(?:from|import)\s*\(?\s*["']\.\/[^"']+["']/.test(text)) {
      offenders.push(relative(PROJECT_ROOT, file));
    }
  }
  assertEquals(offenders, []);
});

Deno.test("a stage module (mod/<domain>/stage.ts) is imported by its own task only", async () => {
  // A stage body reached from another stage's import graph would enter that stage's source hash.
  const owner: Record<string, string> = {
    "mod/features/stage.ts": "tasks/features.ts",
    "mod/sae/stage.ts": "tasks/sae.ts",
    "mod/scaling/stage.ts": "tasks/scaling.ts",
    "mod/transformer/stage.ts": "tasks/train.ts",
  };
  const offenders: string[] = [];
  for (const top of ["mod", "tasks", "tests"]) {
    for (const file of await sourceFilesUnder(join(PROJECT_ROOT, top))) {
      const rel = relative(PROJECT_ROOT, file);
      const text = await Deno.readTextFile(file);
      for (const m of text.matchAll(/(?:from|import)\s*\(?\s*["']([^"']*\/stage\.ts)["']/g)) {
        const target = relative(PROJECT_ROOT, join(file, "..", m[1]));
        if (rel.startsWith("tests/")) continue; // tests may reach any module
        if (owner[target] !== rel) offenders.push(`${rel} imports ${target}`);
      }
    }
  }
  assertEquals(offenders, []);
});

Deno.test("the stage graph names every stage task of deno.json, upstream before downstream", async () => {
  const denoJson = JSON.parse(await Deno.readTextFile(join(PROJECT_ROOT, "deno.json")));
  for (const [i, name] of STAGE_NAMES.entries()) {
    const node = STAGES[name];
    assertEquals(node.name, name);
    assert(String(denoJson.tasks[name].command).includes(stageTask(name)), `${name} task`);
    for (const up of node.upstream) {
      assert(STAGE_NAMES.indexOf(up) < i, `${up} runs before ${name}`);
    }
  }
});

Deno.test("a log-line edit in one stage's body changes that stage's source hash only", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const copy = async (from: string, to: string) => {
      await Deno.mkdir(to, { recursive: true });
      for await (const e of Deno.readDir(from)) {
        if (e.isDirectory) await copy(join(from, e.name), join(to, e.name));
        else if (e.isFile) await Deno.copyFile(join(from, e.name), join(to, e.name));
      }
    };
    await copy(join(PROJECT_ROOT, "mod"), join(tmp, "mod"));
    await copy(join(PROJECT_ROOT, "tasks"), join(tmp, "tasks"));
    await Deno.copyFile(join(PROJECT_ROOT, "deno.json"), join(tmp, "deno.json"));
    const hashes = async () =>
      Object.fromEntries(
        await Promise.all(STAGE_NAMES.map(async (s) => [s, await stageSourceHash(s, tmp)])),
      );
    const before = await hashes();
    // The train stage's body lives in mod/transformer/stage.ts, beside library code that other
    // stages import through mod/transformer/mod.ts.
    const train = join(tmp, "mod", "transformer", "stage.ts");
    const text = await Deno.readTextFile(train);
    const edited = text.replace(/log\(`train: /, "log(`train (edited): ");
    assert(edited !== text, "mod/transformer/stage.ts has a train: log line");
    await Deno.writeTextFile(train, edited);
    const after = await hashes();
    const changed = STAGE_NAMES.filter((s) => before[s] !== after[s]);
    assertEquals(changed, ["train"]);
    // And a shared library module reaches every stage that imports it.
    await Deno.writeTextFile(
      join(tmp, "mod", "sae", "sae.ts"),
      (await Deno.readTextFile(join(tmp, "mod", "sae", "sae.ts"))) + "\n// edited\n",
    );
    const third = await hashes();
    assert(after.sae !== third.sae, "sae covers mod/sae/");
    assertEquals(after.mix, third.mix, "mix does not use mod/sae/");
    // A preset's values reach a stage through its parameter hash, never its source hash.
    const presets = join(tmp, "mod", "run", "presets.ts");
    const presetText = await Deno.readTextFile(presets);
    const presetEdit = presetText.replace(
      "    lr: 1e-3,\n    batchSize: 1024,",
      "    lr: 2e-3,\n    batchSize: 1024,",
    );
    assert(presetEdit !== presetText, "the demo preset sets sae.lr 1e-3");
    await Deno.writeTextFile(presets, presetEdit);
    assertEquals(await hashes(), third, "a preset edit changes no stage's source hash");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
