/**
 * Makes the multithreaded tfjs wasm binary start its threads under Deno.
 *
 * As shipped, tfjs-backend-wasm cannot use threads here: tfjs sees `process`, takes the Node path
 * and turns threads off, and the Emscripten runtime's Node path expects CommonJS (`__dirname`,
 * `require`). Its browser path expects classic Workers with `importScripts`, which Deno lacks. So,
 * for the duration of the backend's initialisation only, `withThreadedInit()`:
 *
 * - hides `globalThis.process`, so that Emscripten takes its browser path;
 * - replaces `globalThis.Worker` with `PthreadWorker`: a node:worker_threads Worker (which, unlike
 *   a web Worker, can be unref'd, so idle threads do not keep the process alive) running a prelude
 *   that provides the browser globals Emscripten's worker script uses (`self`, `postMessage`,
 *   `onmessage`, `location`, and an `importScripts` that evaluates source sent by the main thread);
 * - records the text of every Blob created, because the worker script and the runtime it loads
 *   are handed over as Blobs, and a worker cannot read a Blob synchronously;
 * - raises `navigator.hardwareConcurrency` to twice the wanted thread count, because the C++ side
 *   caps its thread pool at half of it (it assumes two hyper-threads per core).
 *
 * Everything is restored when initialisation settles. After it, the workers are unref'd: the
 * thread pool is only used synchronously from the main thread, so nothing needs them to keep the
 * event loop alive, and the process exits normally.
 *
 * @module
 */
import { Worker as NodeWorker } from "node:worker_threads";

/** Runs in each worker before Emscripten's own worker script (CommonJS, eval mode). */
const WORKER_PRELUDE = `
const { parentPort } = require("node:worker_threads");
globalThis.self = globalThis;
delete globalThis.process;
if (globalThis.location === undefined) {
  globalThis.location = { href: "file:///tfjs-backend-wasm-threaded-simd.worker.js" };
}
const sources = new Map();
globalThis.importScripts = (url) => {
  const src = sources.get(url);
  if (src === undefined) throw new Error("importScripts: no source was sent for " + url);
  (0, eval)(src);
};
globalThis.postMessage = (msg, transfer) => parentPort.postMessage(msg, transfer);
parentPort.on("message", (data) => {
  if (data && typeof data.importScriptsSource === "string") {
    sources.set(data.urlOrBlob, data.importScriptsSource);
  }
  if (typeof self.onmessage === "function") self.onmessage({ data });
});
`;

const blobText = new WeakMap<Blob, string>();
const urlText = new Map<string, string>();
const liveWorkers = new Set<PthreadWorker>();
let tapping = false;

/**
 * What Emscripten's main thread needs of a Worker: the web API subset it calls. Emscripten
 * pre-spawns 8 workers but XNNPACK uses only threads - 1 of them, and each Deno worker is a whole
 * V8 isolate (about a tenth of a second to start, tens of MiB), so the thread behind one starts
 * only when it is given work: until then "load" is answered with "loaded" from here.
 */
class PthreadWorker {
  onmessage: ((e: { data: unknown }) => void) | null = null;
  onerror: ((e: unknown) => void) | null = null;
  readonly #code: string;
  #worker: NodeWorker | null = null;
  #load: { msg: unknown; transfer?: Transferable[] } | null = null;
  #dropLoaded = false;
  #unrefd = false;

  constructor(url: string | URL) {
    const src = urlText.get(String(url));
    if (src === undefined) {
      throw new Error(`Cannot start wasm thread: no recorded source for worker "${url}"`);
    }
    this.#code = `${WORKER_PRELUDE}\n(0, eval)(${JSON.stringify(src)});\n`;
    liveWorkers.add(this);
  }

  /** Whether a thread runs behind this worker. */
  get started(): boolean {
    return this.#worker !== null;
  }

  postMessage(msg: unknown, transfer?: Transferable[]): void {
    const m = msg as { cmd?: string; urlOrBlob?: unknown } | null;
    if (m && m.cmd === "load" && m.urlOrBlob instanceof Blob) {
      // The runtime script travels as text: the worker's importScripts evaluates it.
      const text = blobText.get(m.urlOrBlob);
      if (text === undefined) {
        throw new Error("Cannot start wasm thread: runtime Blob not recorded");
      }
      msg = { ...m, urlOrBlob: "tfjs-backend-wasm-threaded-simd.js", importScriptsSource: text };
    }
    if (this.#worker === null) {
      if (m && m.cmd === "load") {
        this.#load = { msg, transfer };
        queueMicrotask(() => this.onmessage?.({ data: { cmd: "loaded" } }));
        return;
      }
      this.#start();
    }
    // deno-lint-ignore no-explicit-any
    this.#worker!.postMessage(msg, transfer as any);
  }

  #start(): void {
    const w = new NodeWorker(this.#code, { eval: true });
    w.on("message", (data: { cmd?: string }) => {
      // Emscripten already had its "loaded" from us; a second one would be counted twice.
      if (this.#dropLoaded && data?.cmd === "loaded") {
        this.#dropLoaded = false;
        return;
      }
      this.onmessage?.({ data });
    });
    w.on("error", (e: Error) => {
      const event = { message: e.message, filename: "wasm-thread", lineno: 0, error: e };
      if (this.onerror) this.onerror(event);
      else console.error(`backend: wasm thread failed: ${e.message}`);
    });
    if (this.#unrefd) w.unref();
    this.#worker = w;
    if (this.#load) {
      this.#dropLoaded = true;
      // deno-lint-ignore no-explicit-any
      w.postMessage(this.#load.msg, this.#load.transfer as any);
    }
  }

  terminate(): void {
    liveWorkers.delete(this);
    if (this.#worker) void this.#worker.terminate();
  }

  unref(): void {
    this.#unrefd = true;
    this.#worker?.unref();
  }

  ref(): void {
    this.#unrefd = false;
    this.#worker?.ref();
  }
}

/** Number of wasm threads running (workers started and not terminated). */
export function wasmWorkerCount(): number {
  let n = 0;
  for (const w of liveWorkers) if (w.started) n++;
  return n;
}

/**
 * Runs `init` (which must initialise the threaded wasm backend) with the globals patched as the
 * module doc describes, then restores them and unrefs the workers.
 */
export async function withThreadedInit<T>(threads: number, init: () => Promise<T>): Promise<T> {
  if (tapping) throw new Error("Threaded wasm initialisation is already in progress");
  tapping = true;
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  const saved = {
    process: g.process,
    Worker: g.Worker,
    Blob: g.Blob,
    createObjectURL: URL.createObjectURL,
    warn: console.warn,
  };
  const RealBlob: typeof Blob = saved.Blob;
  class TapBlob extends RealBlob {
    constructor(parts?: BlobPart[], options?: BlobPropertyBag) {
      super(parts, options);
      if (parts && parts.every((p) => typeof p === "string")) blobText.set(this, parts.join(""));
    }
  }
  delete g.process;
  // Emscripten binds console.warn now, for good; through this wrapper it cannot print its warning
  // about the main thread blocking (it must: XNNPACK's main thread waits for its helpers).
  const warn = saved.warn;
  console.warn = (...args: unknown[]) => {
    if (typeof args[0] === "string" && args[0].startsWith("Blocking on the main thread")) return;
    warn.apply(console, args);
  };
  g.Worker = PthreadWorker;
  g.Blob = TapBlob;
  URL.createObjectURL = (obj: Blob) => {
    const url = saved.createObjectURL(obj);
    const text = obj instanceof RealBlob ? blobText.get(obj) : undefined;
    if (text !== undefined) urlText.set(url, text);
    return url;
  };
  Object.defineProperty(navigator, "hardwareConcurrency", {
    value: 2 * threads,
    configurable: true,
  });
  try {
    return await init();
  } finally {
    g.process = saved.process;
    g.Worker = saved.Worker;
    g.Blob = saved.Blob;
    URL.createObjectURL = saved.createObjectURL;
    console.warn = saved.warn;
    // deno-lint-ignore no-explicit-any
    delete (navigator as any).hardwareConcurrency;
    for (const url of urlText.keys()) URL.revokeObjectURL(url);
    urlText.clear();
    for (const w of liveWorkers) w.unref();
    tapping = false;
  }
}
