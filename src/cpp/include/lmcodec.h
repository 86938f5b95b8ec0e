/* lmcodec -- a learned image codec. The public C API.
 *
 * READ ME FIRST
 * -------------
 * One header, plain C, usable from C and C++. Link against the lmcodec_core
 * library (static; C++ runtime and pthreads needed).
 *
 *   lmc_model* m = NULL;
 *   if (lmc_model_open("hyperprior.lmw", &m) != LMC_OK) { puts(lmc_last_error()); ... }
 *   uint8_t* data; size_t size;
 *   lmc_encode(m, rgb, width, height, width * 3, 3, 75.0f, NULL, &data, &size);
 *   ...write data/size...
 *   lmc_free(data);
 *   uint8_t* pixels; lmc_image_info info;
 *   lmc_decode(m, data, size, NULL, &pixels, &info);   // info.width/height/channels
 *   lmc_free(pixels);
 *   lmc_model_close(m);
 *
 * Ownership: every buffer the library returns through an out-pointer
 * (encoded bytes, decoded pixels) is allocated by the library and must be
 * released with lmc_free(). Input buffers are only read during the call.
 * A model is immutable once opened: any number of threads may encode and
 * decode with the same model at once.
 *
 * Threads: a call with options->threads = n > 1 (0 = one per core) runs on
 * n - 1 worker threads plus the caller's. If the system refuses to start some
 * of them (memory or process limits), the call runs on those that started,
 * down to the caller alone: same results, never a hang. The workers are kept, asleep, for
 * the next call (a small process-wide cache of idle pools; concurrent calls
 * use different pools), so back-to-back calls do not pay for creating them.
 * A process forked after such calls starts with no cached workers and
 * creates its own.
 *
 * Errors: every function returns an lmc_status. On failure, out-pointers are
 * left NULL/0 and lmc_last_error() returns a message describing the failure
 * of the calling thread's most recent call (valid until its next call).
 * The library never aborts on bad input: malformed, truncated or hostile
 * streams give LMC_ERR_CORRUPT_STREAM (or LIMIT_EXCEEDED, UNSUPPORTED,
 * MODEL_MISMATCH).
 *
 * Pixels are 8-bit, interleaved, row-major; channels is 1 (gray), 3 (RGB)
 * or 4 (RGBA, alpha coded losslessly). row_stride is in bytes (>= width *
 * channels). Decoded pixels are packed (stride = width * channels).
 */
#ifndef LMCODEC_H_
#define LMCODEC_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LMC_VERSION_MAJOR 0
#define LMC_VERSION_MINOR 1
#define LMC_VERSION_PATCH 0

typedef enum lmc_status {
  LMC_OK = 0,
  LMC_ERR_INVALID_ARGUMENT = 1,
  LMC_ERR_CORRUPT_STREAM = 2,
  LMC_ERR_UNSUPPORTED = 3,
  LMC_ERR_LIMIT_EXCEEDED = 4,
  LMC_ERR_MODEL_MISMATCH = 5,
  LMC_ERR_OUT_OF_MEMORY = 6,
  LMC_ERR_INTERNAL = 7,
  LMC_ERR_CANCELLED = 8     /* the progress callback returned nonzero */
} lmc_status;

/* Progress of a long call: called on the calling thread after each strip of
 * the image (encode: analysis strips; decode: synthesis strips) with done
 * and total strips, done == total last. Return 0 to go on, nonzero to cancel:
 * the call then returns LMC_ERR_CANCELLED and no output. */
typedef int (*lmc_progress_fn)(void* user, uint32_t done, uint32_t total);

typedef struct lmc_model lmc_model;

/* Limits a reader enforces before it allocates anything (docs/limits.md).
 * 0 = the library default for each field. Beyond these, a decoder refuses a
 * payload that cannot possibly hold the symbols its header implies (rANS
 * needs a minimum number of bits per symbol) before allocating for them, so
 * work and memory follow the bytes actually supplied. */
typedef struct lmc_limits {
  uint64_t max_pixels;       /* width * height; 0 = library default (2^28) */
  uint64_t max_chunk_bytes;  /* 0 = library default (1 GiB) */
  uint64_t max_dimension;    /* width and height each; 0 = default (65535); < 2^32 */
  uint64_t max_chunks;       /* chunks per file; 0 = default (2^20) */
} lmc_limits;

/* Large images are transformed in horizontal strips so that peak memory is
 * bounded by the strip size, not the image size; the result is identical to
 * a whole-image run (tested). strip_rows: image rows per strip, rounded down
 * to a multiple of 16 (encode) or 64 (decode), at least that; 0 = library
 * default (512 to 1024 rows for images up to 4096 px wide, proportionally
 * fewer for wider ones). */
/* plain_rounding: by default the hyperprior encoder quantises each latent
 * rate-distortion optimally (it may pick the integer on the other side of
 * the value when that saves more bits than it costs in quality, measured
 * with the model's own trade-off at this quality; about 2-5 % smaller files
 * at equal PSNR). 1 = round every latent to the nearest integer (the plain
 * quantiser; also what weights without an rdo.cost table get). Streams of
 * either kind decode the same way. Ignored by the PCA codec. */
/* Metadata kept beside the image, byte for byte (the optional chunks iccp,
 * exif, xmpd of docs/format.md). Each is a pointer and a size; NULL or 0 =
 * absent. exif is the TIFF-header-onward EXIF block (as in PNG's eXIf and
 * WebP's EXIF chunks, no "Exif\0\0" prefix); xmp is the XMP packet (UTF-8). */
typedef struct lmc_metadata {
  const uint8_t* icc;
  size_t icc_size;
  const uint8_t* exif;
  size_t exif_size;
  const uint8_t* xmp;
  size_t xmp_size;
} lmc_metadata;

typedef struct lmc_encode_options {
  int threads;              /* 0 = one per core */
  int strip_rows;
  int plain_rounding;       /* 0 = rate-distortion optimised (default), 1 = nearest */
  lmc_progress_fn progress; /* NULL = no reports */
  void* progress_user;      /* passed to progress */
  const lmc_metadata* metadata; /* NULL = none; stored in the file, read back with lmc_read_metadata */
  /* Spatial quality map (hyperprior only; docs/format.md, QMAP): NULL = none
   * (the stream is exactly what it was without these fields). Otherwise
   * quality_map_cols x quality_map_rows signed offsets in whole quality points
   * (-99..99), row-major, one per 64x64 block: cols = ceil(width / 64),
   * rows = ceil(height / 64). Block quality = clamp(quality + offset, 1, 100);
   * the map is stored in the stream and the decoder applies it. */
  const int8_t* quality_map;
  uint32_t quality_map_cols, quality_map_rows;
  /* Appended in 0.1 (a zero-initialised struct keeps the lossy codec):
   * residual = 1 codes the colour planes with the lossless / near-lossless
   * coder instead (RESD chunk; quality and plain_rounding are then ignored):
   * every decoded sample is within max_error of the input (0 = exact,
   * 1 ..= 255 = that L-infinity bound). Alpha is always exact. */
  int residual;             /* 0 lossy, 1 bounded error */
  int max_error;            /* with residual = 1: 0 = lossless */
} lmc_encode_options;

typedef struct lmc_decode_options {
  int threads;              /* 0 = one per core */
  lmc_limits limits;
  int strip_rows;
  lmc_progress_fn progress; /* NULL = no reports */
  void* progress_user;
} lmc_decode_options;

/* lmc_image_info.flags: the HEAD flags (bit 0: alpha chunk), and: */
#define LMC_INFO_QUALITY_MAP 0x10000u /* the stream carries a spatial quality map (QMAP) */

typedef struct lmc_image_info {
  uint32_t width, height;
  uint32_t channels;        /* 1, 3 or 4 */
  uint32_t bit_depth;       /* 8 */
  uint32_t codec;           /* 1 = hyperprior, 2 = pca */
  float quality;            /* 1 .. 100 */
  uint8_t model_id[16];
  uint32_t flags;
  uint32_t strip_rows;      /* 0 = one strip */
  uint32_t residual;        /* 1: a lossless / near-lossless stream (RESD chunk), 0: lossy */
  uint32_t max_error;       /* residual streams: the bound on |error| (0 = lossless) */
} lmc_image_info;

/* Library version as "major.minor.patch". */
const char* lmc_version(void);

/* Message for the calling thread's last failed call ("" if none). */
const char* lmc_last_error(void);

/* Load a weights file (.lmw) from a path or from memory (copied). */
lmc_status lmc_model_open(const char* path, lmc_model** out);
lmc_status lmc_model_open_memory(const uint8_t* data, size_t size, lmc_model** out);
void lmc_model_close(lmc_model* model);
/* Open the weights file a stream was made with: the .lmw file, among those
 * in the directories of search_path, whose model id is the one the stream's
 * header names (a file named <model>-<first 8 id bytes in hex>.lmw is tried
 * first; any other .lmw is identified by its SHA-256). search_path lists
 * directories separated by ':' (';' on Windows); NULL = the directories of
 * the environment variable LMCODEC_MODEL_PATH, then the weights directory
 * this library was installed with (share/lmcodec). Only the stream's header
 * is read. LMC_ERR_MODEL_MISMATCH when no file there has that id. */
lmc_status lmc_model_open_for_stream(const uint8_t* data, size_t size, const char* search_path, lmc_model** out);

/* Codec id (1 hyperprior, 2 pca) and 16-byte id of a loaded model. */
uint32_t lmc_model_codec(const lmc_model* model);
void lmc_model_id(const lmc_model* model, uint8_t out[16]);
/* Number of parameters of the model's networks (0 for PCA). */
int64_t lmc_model_param_count(const lmc_model* model);
/* Numeric metadata of the weights file (e.g. "train.steps"); 0 if found. */
int lmc_model_meta_number(const lmc_model* model, const char* key, double* out);

/* Encode an image. quality in [1, 100]. options may be NULL. */
lmc_status lmc_encode(const lmc_model* model, const uint8_t* pixels, uint32_t width, uint32_t height,
                      size_t row_stride, uint32_t channels, float quality,
                      const lmc_encode_options* options, uint8_t** out_data, size_t* out_size);

/* Decode a stream made with this model. options may be NULL. */
lmc_status lmc_decode(const lmc_model* model, const uint8_t* data, size_t size,
                      const lmc_decode_options* options, uint8_t** out_pixels, lmc_image_info* out_info);

/* Read the header without decoding. limits may be NULL. */
lmc_status lmc_info(const uint8_t* data, size_t size, const lmc_limits* limits, lmc_image_info* out_info);

/* The metadata stored in a stream (see lmc_metadata). The whole stream is
 * validated (structure, every CRC) first; the pointers point into data
 * (no copy: valid while data is) and are NULL/0 for absent items. limits
 * may be NULL. */
lmc_status lmc_read_metadata(const uint8_t* data, size_t size, const lmc_limits* limits, lmc_metadata* out);

/* 1 if data starts with the .lmc signature, else 0. */
int lmc_check(const uint8_t* data, size_t size);

/* Force the portable scalar kernels (1) or allow SIMD (0), process-wide.
 * The environment variable LMCODEC_FORCE_SCALAR=1 does the same at start-up.
 * Returns the name of the kernel path now in use. */
const char* lmc_set_force_scalar(int force);

/* Cap the kernel path, process-wide: "auto" (the best this CPU runs: avx512,
 * then avx2, then scalar; in a WebAssembly SIMD128 build simd128, then
 * scalar), "scalar", "simd128", "avx2" or "avx512" (the best available path
 * not above the one named, in that order). Every path gives the same bits: this changes
 * speed only. LMCODEC_KERNELS=<name> does the same at start-up. Returns the
 * name of the path now in use, or NULL for an unknown name (lmc_last_error()
 * says why; nothing changes). */
const char* lmc_set_kernels(const char* name);

/* 1 if the kernel path "scalar", "simd128", "avx2" or "avx512" is built into this
 * library and supported by this CPU and OS, else 0. */
int lmc_kernels_available(const char* name);

void lmc_free(void* p);

#ifdef __cplusplus
}
#endif

#endif /* LMCODEC_H_ */
