// <lmc-img src="photo.lmc" alt="..."> -- shows a .lmc image, decoded by the WebAssembly decoder.
//
//   <script type="module" src="lmc-img.js"></script>
//   <lmc-img src="photo.lmc"></lmc-img>
//
// Attributes: src (the stream's URL), model (optional: a .lmw URL or a folder of weights; default
// dist/models/ beside this script). The element holds a <canvas> sized to the image (style it with
// CSS); it fires "load" (event.detail: {width, height, channels, ms}) or "error" (event.detail: the Error).
// Decoding runs in a Web Worker (decodeInWorker: the page never blocks); with the attribute
// "main-thread" (or where Worker is missing) on the page's own thread.
import { decode, decodeInWorker, toRGBA } from './dist/lmcodec.mjs';

class LmcImg extends HTMLElement {
  static get observedAttributes() { return ['src', 'model']; }

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    root.innerHTML = '<style>:host{display:inline-block}canvas{max-width:100%;height:auto;display:block}</style>' +
      '<canvas part="canvas" width="0" height="0"></canvas>';
    this.canvas = root.querySelector('canvas');
    this._seq = 0;
  }

  connectedCallback() { this._load(); }
  attributeChangedCallback() { if (this.isConnected) this._load(); }

  async _load() {
    const src = this.getAttribute('src');
    if (!src) return;
    const seq = ++this._seq;
    try {
      const r = await fetch(new URL(src, document.baseURI));
      if (!r.ok) throw new Error(`lmc-img: cannot fetch ${src}: HTTP ${r.status}`);
      const bytes = new Uint8Array(await r.arrayBuffer());
      const model = this.getAttribute('model');
      const t0 = performance.now();
      const opt = model ? { model: new URL(model, document.baseURI).href } : {};
      const inWorker = typeof Worker !== 'undefined' && !this.hasAttribute('main-thread');
      const img = inWorker ? await decodeInWorker(bytes, opt) : await decode(bytes, opt);
      const ms = performance.now() - t0;
      if (seq !== this._seq) return;  // a newer src won
      this.canvas.width = img.width;
      this.canvas.height = img.height;
      this.canvas.setAttribute('aria-label', this.getAttribute('alt') || '');
      this.canvas.getContext('2d').putImageData(new ImageData(toRGBA(img), img.width, img.height), 0, 0);
      this.image = img;
      this.dispatchEvent(new CustomEvent('load', {
        detail: { width: img.width, height: img.height, channels: img.channels, ms, thread: img.thread || 'main' } }));
    } catch (e) {
      if (seq !== this._seq) return;
      this.dispatchEvent(new CustomEvent('error', { detail: e }));
      console.error(e);
    }
  }
}

if (!customElements.get('lmc-img')) customElements.define('lmc-img', LmcImg);
export { LmcImg };
