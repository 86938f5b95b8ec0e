// lmcodec WebAssembly decoder: the JS API (Node >= 18 and browsers).
//
//   import { decode } from './dist/lmcodec.mjs';
//   const { width, height, channels, pixels } = await decode(bytes);   // pixels: Uint8Array, interleaved
//
// decode(bytes, { model }) -- bytes: Uint8Array | ArrayBuffer | any ArrayBufferView (a .lmc stream).
// options.model picks the weights:
//   - omitted: the weights are found by the stream's codec (1 hyperprior, 2 pca) in the default model
//     folder: <name>.lmw, or, when the stream names another model, the archived <name>-<16 hex of id>.lmw.
//     Default folder: in a browser  new URL('./models/', import.meta.url)  (tools/build_wasm.sh copies
//     the weights to web/dist/models/); in Node  $LMCODEC_MODEL_DIR, else dist/models/ beside this file,
//     else the repository's python/lmcodec/models.
//   - a string ending in ".lmw": that file (a path in Node, a URL anywhere);
//   - any other string: a folder (path or URL) searched as above;
//   - Uint8Array / ArrayBuffer: the .lmw bytes themselves.
// The stream's model id is checked against the model's (Error "model mismatch" otherwise).
// Loaded models are kept (by location) for later calls.
// The decoder runs on the calling thread (no threads in this build) with the WebAssembly SIMD128
// kernels (src/cpp/dsp/conv_wasm.cc) in a -msimd128 build, else the portable scalar ones; both give
// the same pixels. decodeInWorker() (./worker.mjs) runs decode() in a Web Worker instead.

const CODEC_NAMES = { 1: 'hyperprior', 2: 'pca' };
const IS_NODE = typeof process !== 'undefined' && !!(process.versions && process.versions.node) &&
  typeof window === 'undefined';

let corePromise = null;
const modelCache = new Map();  // location key -> Promise<{ptr, codec, id}>

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function asU8(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError('lmcodec: expected a Uint8Array, ArrayBuffer or ArrayBufferView');
}

async function readResource(loc) {
  // loc: URL object or string (path in Node, URL in a browser)
  const s = String(loc);
  if (IS_NODE && !/^(https?|data|blob):/.test(s)) {
    const fs = await import('node:fs/promises');
    const { fileURLToPath } = await import('node:url');
    const path = s.startsWith('file:') ? fileURLToPath(s) : s;
    return new Uint8Array(await fs.readFile(path));
  }
  const r = await fetch(s);
  if (!r.ok) throw new Error(`lmcodec: cannot fetch ${s}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

async function exists(loc) {
  const s = String(loc);
  if (IS_NODE && !/^(https?|data|blob):/.test(s)) {
    const fs = await import('node:fs/promises');
    const { fileURLToPath } = await import('node:url');
    try {
      await fs.access(s.startsWith('file:') ? fileURLToPath(s) : s);
      return true;
    } catch {
      return false;
    }
  }
  try {
    const r = await fetch(s, { method: 'HEAD' });
    return r.ok;
  } catch {
    return false;
  }
}

function joinLoc(dir, name) {
  const d = String(dir);
  if (IS_NODE && !/^(https?|file|data|blob):/.test(d)) return d.replace(/\/+$/, '') + '/' + name;
  return new URL(name, d.endsWith('/') ? d : d + '/').href;
}

async function defaultModelDir() {
  if (!IS_NODE) return new URL('./models/', import.meta.url).href;
  if (process.env.LMCODEC_MODEL_DIR) return process.env.LMCODEC_MODEL_DIR;
  const { fileURLToPath } = await import('node:url');
  const beside = fileURLToPath(new URL('./models/', import.meta.url));
  if (await exists(beside + 'pca.lmw') || await exists(beside + 'hyperprior.lmw')) return beside;
  return fileURLToPath(new URL('../../python/lmcodec/models/', import.meta.url));
}

async function loadCore() {
  if (!corePromise) {
    corePromise = (async () => {
      const wasmUrl = new URL('./lmcodec_core.wasm', import.meta.url);
      const wasmBinary = await readResource(IS_NODE ? wasmUrl.href : wasmUrl);
      const { default: createLmcCore } = await import('./lmcodec_core.mjs');
      return createLmcCore({ wasmBinary, print: () => {}, printErr: () => {} });
    })();
    corePromise.catch(() => { corePromise = null; });
  }
  return corePromise;
}

function lastError(core) {
  return core.UTF8ToString(core._lmcw_last_error());
}

function withBytes(core, bytes, fn) {
  const p = core._malloc(Math.max(1, bytes.length));
  if (!p) throw new Error('lmcodec: out of memory');
  try {
    core.HEAPU8.set(bytes, p);
    return fn(p);
  } finally {
    core._free(p);
  }
}

function readInfo(core, p) {
  const heap = core.HEAPU8;
  const dv = new DataView(heap.buffer, p, 56);
  const u = (i) => dv.getUint32(i * 4, true);
  return {
    width: u(0), height: u(1), channels: u(2), bitDepth: u(3), codec: u(4), flags: u(5), stripRows: u(6),
    quality: dv.getFloat32(28, true), modelId: hex(heap.slice(p + 40, p + 56)),
  };
}

async function openModel(core, key, bytesPromise) {
  if (!modelCache.has(key)) {
    const pr = (async () => {
      const bytes = await bytesPromise();
      const ptr = withBytes(core, bytes, (p) => core._lmcw_model_open(p, bytes.length));
      if (!ptr) throw new Error(`lmcodec: cannot open model ${key}: ${lastError(core)}`);
      const idp = core._malloc(16);
      const codec = core._lmcw_model_describe(ptr, idp);
      const id = hex(core.HEAPU8.slice(idp, idp + 16));
      core._free(idp);
      return { ptr, codec, id, key };
    })();
    modelCache.set(key, pr);
    pr.catch(() => modelCache.delete(key));
  }
  return modelCache.get(key);
}

async function modelFor(core, header, opt) {
  const name = CODEC_NAMES[header.codec];
  if (!name) throw new Error(`lmcodec: unknown codec ${header.codec}`);
  const m = opt.model;
  if (m instanceof ArrayBuffer || ArrayBuffer.isView(m)) {
    const bytes = asU8(m);
    return openModel(core, 'bytes:' + bytes.length + ':' + hex(bytes.subarray(0, 64)) + ':' +
      hex(bytes.subarray(Math.max(0, bytes.length - 64))), async () => bytes);
  }
  if (typeof m === 'string' && /\.lmw$/i.test(m)) return openModel(core, m, () => readResource(m));
  const dir = (typeof m === 'string' || m instanceof URL) ? String(m) : await defaultModelDir();
  const main = joinLoc(dir, name + '.lmw');
  let first = null;
  try {
    first = await openModel(core, main, () => readResource(main));
    if (first.id === header.modelId) return first;
  } catch (e) {
    first = e;
  }
  const archived = joinLoc(dir, `${name}-${header.modelId.slice(0, 16)}.lmw`);
  if (await exists(archived)) return openModel(core, archived, () => readResource(archived));
  if (first instanceof Error) throw first;
  return first;  // lmcw_decode reports the mismatch
}

/** The stream's header without decoding: {width, height, channels, codec, quality, modelId, ...}. */
export async function info(bytes) {
  const core = await loadCore();
  const data = asU8(bytes);
  return withBytes(core, data, (p) => {
    const out = core._malloc(56);
    try {
      const s = core._lmcw_info(p, data.length, out);
      if (s !== 0) throw new Error(`lmcodec: ${lastError(core)} (status ${s})`);
      return readInfo(core, out);
    } finally {
      core._free(out);
    }
  });
}

/** Decodes a .lmc stream: {width, height, channels, pixels (Uint8Array, interleaved), codec, quality, modelId}. */
export async function decode(bytes, opt = {}) {
  const core = await loadCore();
  const data = asU8(bytes);
  const header = await info(data);
  const model = await modelFor(core, header, opt || {});
  if (model.codec !== header.codec || model.id !== header.modelId) {
    throw new Error(`lmcodec: model mismatch: the stream was made by ${CODEC_NAMES[header.codec]} model ` +
      `${header.modelId}, the model loaded from ${model.key} is ${CODEC_NAMES[model.codec] || model.codec} ${model.id}`);
  }
  return withBytes(core, data, (p) => {
    const out = core._malloc(64);
    try {
      const st = out + 56;
      const px = core._lmcw_decode(model.ptr, p, data.length, out, st);
      if (!px) {
        const s = new DataView(core.HEAPU8.buffer).getInt32(st, true);
        throw new Error(`lmcodec: ${lastError(core)} (status ${s})`);
      }
      const r = readInfo(core, out);
      const n = r.width * r.height * r.channels;
      const pixels = core.HEAPU8.slice(px, px + n);
      core._lmcw_free(px);
      return { width: r.width, height: r.height, channels: r.channels, pixels, codec: r.codec,
        quality: r.quality, modelId: r.modelId };
    } finally {
      core._free(out);
    }
  });
}

/** RGBA pixels for a canvas ImageData from decode()'s result. */
export function toRGBA({ width, height, channels, pixels }) {
  if (channels === 4) return new Uint8ClampedArray(pixels.buffer, pixels.byteOffset, pixels.length);
  const n = width * height;
  const out = new Uint8ClampedArray(n * 4);
  for (let i = 0; i < n; i++) {
    if (channels === 3) {
      out[4 * i] = pixels[3 * i]; out[4 * i + 1] = pixels[3 * i + 1]; out[4 * i + 2] = pixels[3 * i + 2];
    } else {
      out[4 * i] = out[4 * i + 1] = out[4 * i + 2] = pixels[i];
    }
    out[4 * i + 3] = 255;
  }
  return out;
}

/** FNV-1a 32-bit of the pixels, as 8 hex digits (what the tests compare). */
export function checksum(pixels) {
  let h = 0x811c9dc5;
  for (let i = 0; i < pixels.length; i++) {
    h ^= pixels[i];
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/** Library version and kernel path of the WebAssembly build. */
export async function version() {
  const core = await loadCore();
  return { version: core.UTF8ToString(core._lmcw_version()), kernels: core.UTF8ToString(core._lmcw_kernels()) };
}

/** Caps the kernel path: 'auto' (the best this build has), 'simd128' or 'scalar'. Returns the path now in
 * use; for benchmarks and tests (every path decodes the same pixels). */
export async function setKernels(name) {
  const core = await loadCore();
  const s = core._malloc(64);
  try {
    const bytes = new TextEncoder().encode(String(name));
    if (bytes.length > 60) throw new Error(`lmcodec: unknown kernel path '${name}'`);
    core.HEAPU8.set(bytes, s);
    core.HEAPU8[s + bytes.length] = 0;
    const r = core._lmcw_set_kernels(s);
    if (!r) throw new Error(`lmcodec: ${lastError(core)}`);
    return core.UTF8ToString(r);
  } finally {
    core._free(s);
  }
}

/** Per-stage timings (src/cpp/util/profile.h) of the decodes run inside fn (awaited): [{name, calls, ms}]
 * in first-seen order. For benchmarks. */
export async function profile(fn) {
  const core = await loadCore();
  core._lmcw_profile_take();
  core._lmcw_profile_enable(1);
  try {
    await fn();
  } finally {
    core._lmcw_profile_enable(0);
  }
  return core.UTF8ToString(core._lmcw_profile_take()).split('\n').filter(Boolean).map((l) => {
    const [s, calls, name] = l.split('\t');
    return { name, calls: Number(calls), ms: Number(s) * 1000 };
  });
}

// ---- decoding in a worker -------------------------------------------------------------------------

let workerState = null;  // { worker, pending: Map(id -> {resolve, reject}), next, node }

async function getWorker() {
  if (workerState) return workerState;
  const url = new URL('./worker.mjs', import.meta.url);
  let worker;
  let node = false;
  if (IS_NODE) {
    const { Worker } = await import('node:worker_threads');
    worker = new Worker(url);
    node = true;
  } else {
    worker = new Worker(url, { type: 'module' });
  }
  const st = { worker, pending: new Map(), next: 1, node };
  const onMessage = (m) => {
    const p = st.pending.get(m.id);
    if (!p) return;
    st.pending.delete(m.id);
    if (st.node && st.pending.size === 0) worker.unref();  // an idle worker does not keep Node running
    if (m.error !== undefined) p.reject(new Error(m.error));
    else p.resolve(m.result);
  };
  const onError = (e) => {
    const err = e instanceof Error ? e : new Error(`lmcodec: worker failed: ${(e && e.message) || e}`);
    for (const p of st.pending.values()) p.reject(err);
    st.pending.clear();
    if (workerState === st) workerState = null;
  };
  if (node) {
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.unref();
  } else {
    worker.onmessage = (ev) => onMessage(ev.data);
    worker.onerror = (ev) => { ev.preventDefault && ev.preventDefault(); onError(new Error(`lmcodec: worker failed: ${ev.message || 'cannot load worker.mjs'}`)); };
  }
  workerState = st;
  return st;
}

function callWorker(st, msg, transfer) {
  return new Promise((resolve, reject) => {
    const id = st.next++;
    st.pending.set(id, { resolve, reject });
    if (st.node) st.worker.ref();
    st.worker.postMessage({ ...msg, id }, transfer || []);
  });
}

/** decode(), run in a Web Worker (Node: a worker_threads worker): the calling thread never blocks.
 * Same arguments and result as decode(), plus result.thread ('worker') and result.ms (the decode's
 * time in the worker). The bytes are copied to the worker (the caller's buffer stays usable); a string
 * model is resolved against the page's URL first. One worker serves all calls, in order. */
export async function decodeInWorker(bytes, opt = {}) {
  const data = asU8(bytes);
  const options = {};
  const m = opt && opt.model;
  if (typeof m === 'string' || m instanceof URL) {
    options.model = (!IS_NODE && typeof document !== 'undefined') ? new URL(String(m), document.baseURI).href : String(m);
  } else if (m instanceof ArrayBuffer || ArrayBuffer.isView(m)) {
    options.model = asU8(m).slice();
  }
  const st = await getWorker();
  return callWorker(st, { bytes: data.slice(), options });
}

/** setKernels() inside the decoding worker. */
export async function setWorkerKernels(name) {
  return callWorker(await getWorker(), { kernels: String(name) });
}

/** Stops the decoding worker (a later decodeInWorker() starts a new one). */
export function terminateWorker() {
  if (!workerState) return;
  const st = workerState;
  workerState = null;
  for (const p of st.pending.values()) p.reject(new Error('lmcodec: worker terminated'));
  st.pending.clear();
  st.worker.terminate();
}

export default { decode, decodeInWorker, info, toRGBA, checksum, version, setKernels, setWorkerKernels, terminateWorker,
  profile };
