/* Embedding lmcodec in a C program: encode an image, decode it, compare.
 *
 *   roundtrip WEIGHTS.lmw [QUALITY] [OUT.lmc]
 *
 * Builds a synthetic 160x120 RGB picture, encodes it with the model in
 * WEIGHTS.lmw, decodes the stream, prints size / bpp / PSNR and exits with
 * status 0 when the round trip worked. Link against lmcodec_core (see
 * CMakeLists.txt, option LMCODEC_BUILD_EXAMPLES).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmcodec.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s WEIGHTS.lmw [QUALITY] [OUT.lmc]\n", argv[0]);
    return 2;
  }
  const float quality = argc > 2 ? (float)atof(argv[2]) : 75.0f;
  const uint32_t w = 160, h = 120;
  uint8_t* rgb = (uint8_t*)malloc((size_t)w * h * 3);
  if (!rgb) return 1;
  for (uint32_t y = 0; y < h; ++y)
    for (uint32_t x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c)
        rgb[((size_t)y * w + x) * 3 + c] =
            (uint8_t)(128 + 90 * sin(x / (9.0 + 3 * c)) * cos(y / 13.0) + ((x * 7 + y * 13 + c) % 9) - 4);

  lmc_model* model = NULL;
  if (lmc_model_open(argv[1], &model) != LMC_OK) {
    fprintf(stderr, "cannot load model: %s\n", lmc_last_error());
    return 1;
  }
  uint8_t* data = NULL;
  size_t size = 0;
  lmc_encode_options eo = {0, 0, 0};
  if (lmc_encode(model, rgb, w, h, (size_t)w * 3, 3, quality, &eo, &data, &size) != LMC_OK) {
    fprintf(stderr, "encode failed: %s\n", lmc_last_error());
    return 1;
  }
  if (argc > 3) {
    FILE* f = fopen(argv[3], "wb");
    if (!f || fwrite(data, 1, size, f) != size) return 1;
    fclose(f);
  }
  lmc_image_info info;
  if (lmc_info(data, size, NULL, &info) != LMC_OK || info.width != w || info.height != h) {
    fprintf(stderr, "info failed: %s\n", lmc_last_error());
    return 1;
  }
  uint8_t* out = NULL;
  if (lmc_decode(model, data, size, NULL, &out, &info) != LMC_OK) {
    fprintf(stderr, "decode failed: %s\n", lmc_last_error());
    return 1;
  }
  double se = 0;
  for (size_t i = 0; i < (size_t)w * h * 3; ++i) {
    double d = (double)out[i] - rgb[i];
    se += d * d;
  }
  double mse = se / ((double)w * h * 3);
  double psnr = mse > 0 ? 10 * log10(255.0 * 255.0 / mse) : 99.0;
  printf("lmcodec %s: %ux%u quality %.0f -> %zu bytes, %.4f bpp, PSNR %.2f dB, codec %u\n", lmc_version(), w, h,
         quality, size, size * 8.0 / (w * h), psnr, info.codec);

  /* a damaged stream must be refused, not crash */
  data[size / 2] ^= 0x10;
  uint8_t* bad = NULL;
  lmc_status st = lmc_decode(model, data, size, NULL, &bad, &info);
  if (st == LMC_OK || bad != NULL) {
    fprintf(stderr, "damaged stream was accepted\n");
    return 1;
  }
  printf("damaged stream refused: %s\n", lmc_last_error());

  lmc_free(out);
  lmc_free(data);
  lmc_model_close(model);
  free(rgb);
  return 0;
}
