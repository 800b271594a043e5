/**
 * Plain-array views of Arrow columns for the report's loaders: numbers with nulls kept, strings
 * (dictionary-encoded or not), and list columns flattened to offsets + values across chunks
 * without one object per row.
 *
 * @module
 */
import type * as arrow from "apache-arrow";

function child(t: arrow.Table, name: string, label: string): arrow.Vector {
  const v = t.getChild(name);
  if (!v) {
    const have = t.schema.fields.map((f) => f.name).join(", ");
    throw new Error(`${label} has no column "${name}" (it has ${have})`);
  }
  return v;
}

/** Whether the table has a column `name`. */
export function hasColumn(t: arrow.Table, name: string): boolean {
  return t.schema.fields.some((f) => f.name === name);
}

/** A numeric column as numbers (bigint made number); a null stays null. */
export function numberCol(t: arrow.Table, name: string, label: string): (number | null)[] {
  const v = child(t, name, label);
  const out: (number | null)[] = new Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const x = v.get(i);
    out[i] = x === null || x === undefined ? null : Number(x);
  }
  return out;
}

/** A numeric column with no nulls expected: nulls read as NaN. */
export function numbers(t: arrow.Table, name: string, label: string): number[] {
  return numberCol(t, name, label).map((x) => x ?? NaN);
}

/** A string column (utf8 or dictionary of utf8); a null stays null. */
export function stringCol(t: arrow.Table, name: string, label: string): (string | null)[] {
  const v = child(t, name, label);
  const out: (string | null)[] = new Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const x = v.get(i);
    out[i] = x === null || x === undefined ? null : String(x);
  }
  return out;
}

/** A list column flattened: row r's values are values[offsets[r] .. offsets[r + 1]). */
export function listCol(
  t: arrow.Table,
  name: string,
  label: string,
): { offsets: Int32Array; values: ArrayLike<number> } {
  const v = child(t, name, label);
  const offsets = new Int32Array(v.length + 1);
  let total = 0;
  for (const d of v.data) {
    const off = d.valueOffsets as Int32Array;
    total += off[d.offset + d.length] - off[d.offset];
  }
  const first = v.data[0]?.children[0]?.values;
  const values = first instanceof Int32Array ? new Int32Array(total) : new Float32Array(total);
  let row = 0, at = 0;
  for (const d of v.data) {
    const off = d.valueOffsets as Int32Array;
    const c = d.children[0];
    const vals = c.values as ArrayLike<number>;
    for (let i = 0; i < d.length; i++) {
      const a = off[d.offset + i] + c.offset, b = off[d.offset + i + 1] + c.offset;
      for (let j = a; j < b; j++) values[at++] = Number(vals[j]);
      offsets[++row] = at;
    }
  }
  return { offsets, values };
}
