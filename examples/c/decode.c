/* Decoding any .lmc file from C: find the weights it names among the
 * installed ones, decode, keep the metadata.
 *
 *   decode IN.lmc OUT.pnm [SEARCH_PATH]
 *
 * Writes a binary PGM (gray), PPM (RGB) or PAM (RGBA) and prints the image
 * size, the weights file used and the metadata it carries (ICC profile,
 * EXIF, XMP sizes; written beside OUT as OUT.icc / OUT.exif / OUT.xmp).
 * SEARCH_PATH: directories holding .lmw files, ':'-separated; without it
 * the library searches $LMCODEC_MODEL_PATH and its installed share/lmcodec.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmcodec.h"

static unsigned char* read_file(const char* path, size_t* size) {
  FILE* f = fopen(path, "rb");
  if (!f) return NULL;
  unsigned char* buf = NULL;
  size_t cap = 0, n = 0;
  for (;;) {
    if (n == cap) {
      cap = cap ? cap * 2 : 1 << 16;
      unsigned char* grown = (unsigned char*)realloc(buf, cap);
      if (!grown) break;
      buf = grown;
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0) break;
  }
  fclose(f);
  *size = n;
  return buf;
}

static int write_blob(const char* base, const char* ext, const uint8_t* data, size_t size) {
  char path[4096];
  snprintf(path, sizeof path, "%s.%s", base, ext);
  FILE* f = fopen(path, "wb");
  if (!f) return 1;
  int bad = fwrite(data, 1, size, f) != size;
  return fclose(f) != 0 || bad;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s IN.lmc OUT.pnm [SEARCH_PATH]\n", argv[0]);
    return 2;
  }
  size_t size = 0;
  unsigned char* data = read_file(argv[1], &size);
  if (!data) {
    fprintf(stderr, "cannot read %s\n", argv[1]);
    return 1;
  }
  lmc_model* model = NULL;
  if (lmc_model_open_for_stream(data, size, argc > 3 ? argv[3] : NULL, &model) != LMC_OK) {
    fprintf(stderr, "no model for this stream: %s\n", lmc_last_error());
    return 1;
  }
  uint8_t* px = NULL;
  lmc_image_info info;
  if (lmc_decode(model, data, size, NULL, &px, &info) != LMC_OK) {
    fprintf(stderr, "decode failed: %s\n", lmc_last_error());
    return 1;
  }
  lmc_metadata md;
  if (lmc_read_metadata(data, size, NULL, &md) != LMC_OK) {
    fprintf(stderr, "metadata: %s\n", lmc_last_error());
    return 1;
  }
  FILE* f = fopen(argv[2], "wb");
  if (!f) return 1;
  if (info.channels == 4)
    fprintf(f, "P7\nWIDTH %u\nHEIGHT %u\nDEPTH 4\nMAXVAL 255\nTUPLTYPE RGB_ALPHA\nENDHDR\n", info.width, info.height);
  else
    fprintf(f, "P%c\n%u %u\n255\n", info.channels == 1 ? '5' : '6', info.width, info.height);
  size_t n = (size_t)info.width * info.height * info.channels;
  if (fwrite(px, 1, n, f) != n || fclose(f) != 0) return 1;
  if ((md.icc_size && write_blob(argv[2], "icc", md.icc, md.icc_size)) ||
      (md.exif_size && write_blob(argv[2], "exif", md.exif, md.exif_size)) ||
      (md.xmp_size && write_blob(argv[2], "xmp", md.xmp, md.xmp_size)))
    return 1;
  uint8_t id[16];
  lmc_model_id(model, id);
  printf("%ux%u, %u channels, codec %u, model %02x%02x%02x%02x..., icc %zu, exif %zu, xmp %zu bytes\n", info.width,
         info.height, info.channels, info.codec, id[0], id[1], id[2], id[3], md.icc_size, md.exif_size, md.xmp_size);
  lmc_free(px);
  lmc_model_close(model);
  free(data);
  return 0;
}
