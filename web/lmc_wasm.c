/* lmcodec WebAssembly glue: a flat, JS-friendly face of the C API
 * (src/cpp/include/lmcodec.h) for web/lmcodec.mjs. Built by tools/build_wasm.sh.
 *
 * info words (uint32_t out[10]): width, height, channels, bit_depth, codec,
 * flags, strip_rows, quality (float bits), then 16 bytes of model id follow
 * at byte offset 40 (the caller passes 56 bytes). */
#include <emscripten/emscripten.h>
#include <stdint.h>
#include <string.h>

#include "lmcodec.h"

static void put_info(const lmc_image_info* in, uint8_t* out) {
  uint32_t w[10] = {in->width, in->height, in->channels, in->bit_depth, in->codec, in->flags, in->strip_rows, 0, 0, 0};
  memcpy(&w[7], &in->quality, 4);
  memcpy(out, w, 40);
  memcpy(out + 40, in->model_id, 16);
}

/* Header only: 0 on success, else an lmc_status. */
EMSCRIPTEN_KEEPALIVE int lmcw_info(const uint8_t* data, size_t size, uint8_t* out56) {
  lmc_image_info info;
  lmc_status s = lmc_info(data, size, NULL, &info);
  if (s == LMC_OK) put_info(&info, out56);
  return (int)s;
}

/* Opens a weights file from memory (copied); NULL on failure (see lmcw_last_error). */
EMSCRIPTEN_KEEPALIVE lmc_model* lmcw_model_open(const uint8_t* data, size_t size) {
  lmc_model* m = NULL;
  if (lmc_model_open_memory(data, size, &m) != LMC_OK) return NULL;
  return m;
}

/* codec id, and the 16-byte model id into out16 */
EMSCRIPTEN_KEEPALIVE uint32_t lmcw_model_describe(const lmc_model* m, uint8_t* out16) {
  lmc_model_id(m, out16);
  return lmc_model_codec(m);
}

EMSCRIPTEN_KEEPALIVE void lmcw_model_close(lmc_model* m) { lmc_model_close(m); }

/* Decodes on the calling thread. Returns the pixels (free with lmcw_free) and
 * fills out56 as lmcw_info does; NULL on failure, *status the lmc_status. */
EMSCRIPTEN_KEEPALIVE uint8_t* lmcw_decode(const lmc_model* m, const uint8_t* data, size_t size, uint8_t* out56,
                                          int* status) {
  lmc_decode_options opt;
  memset(&opt, 0, sizeof opt);
  opt.threads = 1; /* no pthreads in this build */
  uint8_t* pixels = NULL;
  lmc_image_info info;
  lmc_status s = lmc_decode(m, data, size, &opt, &pixels, &info);
  *status = (int)s;
  if (s != LMC_OK) return NULL;
  put_info(&info, out56);
  return pixels;
}

EMSCRIPTEN_KEEPALIVE const char* lmcw_last_error(void) { return lmc_last_error(); }
EMSCRIPTEN_KEEPALIVE const char* lmcw_version(void) { return lmc_version(); }
/* The kernel cap last set (lmcw_set_kernels; "auto" at first). */
static char g_kernel_cap[16] = "auto";
/* The kernel path in use: "simd128" (a -msimd128 build) or "scalar". */
EMSCRIPTEN_KEEPALIVE const char* lmcw_kernels(void) { return lmc_set_kernels(g_kernel_cap); }
/* Caps the kernel path ("auto", "simd128", "scalar"; see lmc_set_kernels):
 * returns the path now in use, or NULL for an unknown name (nothing changes).
 * For benchmarks and tests: every path decodes the same pixels. */
EMSCRIPTEN_KEEPALIVE const char* lmcw_set_kernels(const char* name) {
  const char* r = lmc_set_kernels(name);
  if (r && strlen(name) < sizeof g_kernel_cap) strcpy(g_kernel_cap, name);
  return r;
}
EMSCRIPTEN_KEEPALIVE void lmcw_free(void* p) { lmc_free(p); }
