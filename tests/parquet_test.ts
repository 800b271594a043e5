import * as arrow from "apache-arrow";
import { assertEquals, assertRejects } from "./assert.ts";
import { parquetInfo, readParquet, writeParquet } from "../mod/io/mod.ts";

function sample(n: number): arrow.Table {
  return new arrow.Table({
    id: arrow.makeVector(Int32Array.from({ length: n }, (_, i) => i)),
    x: arrow.makeVector(Float32Array.from({ length: n }, (_, i) => i / 2)),
    name: arrow.vectorFromArray(Array.from({ length: n }, (_, i) => `row ${i}`), new arrow.Utf8()),
  });
}

Deno.test("parquet round trip keeps values, row groups and footer metadata", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/t.parquet`;
    await writeParquet(path, sample(10), { rowGroupSize: 4, metadata: { purpose: "test" } });
    const info = await parquetInfo(path);
    assertEquals(info.numRows, 10);
    assertEquals(info.rowGroupRows, [4, 4, 2]);
    assertEquals(info.columns, ["id", "x", "name"]);
    assertEquals(info.metadata, { purpose: "test" });
    const t = await readParquet(path);
    assertEquals(Array.from(t.getChild("id")!.toArray()), Array.from({ length: 10 }, (_, i) => i));
    assertEquals(t.getChild("name")!.get(9), "row 9");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readParquet reads only the selected columns, row groups and rows", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/t.parquet`;
    await writeParquet(path, sample(10), { rowGroupSize: 4 });
    const cols = await readParquet(path, { columns: ["x"] });
    assertEquals(cols.schema.fields.map((f) => f.name), ["x"]);
    const rg = await readParquet(path, { columns: ["id"], rowGroups: [1] });
    assertEquals(Array.from(rg.getChild("id")!.toArray()), [4, 5, 6, 7]);
    const slice = await readParquet(path, { columns: ["id"], offset: 3, limit: 2 });
    assertEquals(Array.from(slice.getChild("id")!.toArray()), [3, 4]);
    await assertRejects(() => readParquet(path, { columns: ["y"] }), /no column "y"/);
    await assertRejects(() => readParquet(path, { rowGroups: [3] }), /row group 3 does not exist/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("missing and corrupt Parquet files give errors that name the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assertRejects(
      () => readParquet(`${dir}/none.parquet`),
      /none.parquet": file does not exist/,
    );
    await Deno.writeTextFile(`${dir}/bad.parquet`, "this is not parquet at all");
    await assertRejects(
      () => readParquet(`${dir}/bad.parquet`),
      /Cannot read Parquet ".*bad.parquet": corrupt or truncated/,
    );
    // A truncated file: the footer is gone.
    await writeParquet(`${dir}/ok.parquet`, sample(100));
    const bytes = await Deno.readFile(`${dir}/ok.parquet`);
    await Deno.writeFile(`${dir}/cut.parquet`, bytes.subarray(0, bytes.length - 20));
    await assertRejects(
      () => parquetInfo(`${dir}/cut.parquet`),
      /Cannot read Parquet ".*cut.parquet": corrupt or truncated/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a parquet write leaves no temp file beside its output", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeParquet(`${dir}/t.parquet`, sample(5));
    await writeParquet(`${dir}/t.parquet`, sample(7));
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assertEquals(names, ["t.parquet"]);
    assertEquals((await parquetInfo(`${dir}/t.parquet`)).numRows, 7);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
