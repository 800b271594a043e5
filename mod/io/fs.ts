/**
 * File-system helpers shared by every stage: atomic writes (a temp file beside the target, then a
 * rename, so that a crash never leaves a half-written file under the final name) and existence
 * checks that produce the project's error wording.
 *
 * @module
 */
import { dirname, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const PROJECT = fileURLToPath(new URL("../..", import.meta.url)).replace(/\/$/, "");

/**
 * Refuses a write inside the project whose path passes through a symbolic link (one planted under
 * results/ would carry the write outside the folders the task may write: Deno's --allow-write
 * checks the path as written). The top folder itself (data/, results/) may be a link, to put a
 * run's data on another disk; paths outside the project (tests' temporary folders) are not
 * checked.
 */
async function checkNoSymlink(path: string): Promise<void> {
  const rel = relative(PROJECT, resolve(path));
  if (rel.startsWith("..") || rel === "") return;
  const [top, ...rest] = rel.split(sep);
  let cur = `${PROJECT}${sep}${top}`;
  for (const part of rest) {
    cur = `${cur}${sep}${part}`;
    let st: Deno.FileInfo;
    try {
      st = await Deno.lstat(cur);
    } catch {
      return; // the rest does not exist yet: mkdir makes plain folders
    }
    if (st.isSymlink) {
      throw new Error(
        `Refusing to write "${path}": "${relative(PROJECT, cur)}" is a symbolic link ` +
          `(outputs stay inside the project's folders; remove the link)`,
      );
    }
  }
}

/** Writes bytes to `path` atomically: temp file in the same folder, fsync, rename. */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string | ReadableStream<Uint8Array>,
): Promise<void> {
  await checkNoSymlink(path);
  await Deno.mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
  try {
    const chunks = data instanceof ReadableStream
      ? data
      : [typeof data === "string" ? new TextEncoder().encode(data) : data];
    for await (const bytes of chunks) {
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
    }
    await file.sync();
  } catch (e) {
    file.close();
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  file.close();
  try {
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/** JSON with a trailing newline, written atomically. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Reads and parses a JSON file, with an error that names the file. */
export async function readJson<T>(path: string): Promise<T> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`Cannot read "${path}": file does not exist`);
    }
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`Cannot read "${path}": not valid JSON (${(e as Error).message})`);
  }
}
