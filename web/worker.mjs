// lmcodec WebAssembly decoder: the Web Worker side of decodeInWorker() (web/lmcodec.mjs).
//
// Loaded as a module worker (browsers: new Worker(url, { type: 'module' })) or as a Node
// worker_threads worker; it runs decode() of ./lmcodec.mjs off the caller's thread, so a page stays
// responsive while an image decodes. Messages:
//   in:  { id, bytes: Uint8Array, options: { model } }        (model: a URL/path string or .lmw bytes)
//   out: { id, result: { width, height, channels, pixels, codec, quality, modelId, thread, ms } }
//        (pixels' buffer is transferred; thread: 'worker'; ms: the decode's own time in the worker)
//        or { id, error: message }
//   in:  { id, kernels: name }  -> out: { id, result: the kernel path now in use }   (setKernels)
import { decode, setKernels } from './lmcodec.mjs';

const nodePort = (typeof self === 'undefined' || typeof self.postMessage !== 'function')
  ? (await import('node:worker_threads')).parentPort : null;
const post = nodePort ? (m, t) => nodePort.postMessage(m, t) : (m, t) => self.postMessage(m, t);

async function handle(msg) {
  const { id } = msg;
  try {
    if (msg.kernels !== undefined) {
      post({ id, result: await setKernels(msg.kernels) });
      return;
    }
    const t0 = performance.now();
    const r = await decode(msg.bytes, msg.options || {});
    r.ms = performance.now() - t0;
    r.thread = 'worker';
    post({ id, result: r }, [r.pixels.buffer]);
  } catch (e) {
    post({ id, error: String((e && e.message) || e) });
  }
}

// One message at a time, in order (the decoder is single-threaded anyway).
let queue = Promise.resolve();
const onMessage = (msg) => { queue = queue.then(() => handle(msg)); };
if (nodePort) nodePort.on('message', onMessage);
else self.onmessage = (ev) => onMessage(ev.data);
