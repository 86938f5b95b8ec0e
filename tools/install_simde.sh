#!/usr/bin/env bash
# Installs the SIMDe headers (Debian/Ubuntu: libsimde-dev) that the AVX-512
# emulation test build needs (CMake -DLMCODEC_AVX512_SIMDE=ON; see
# src/cpp/dsp/conv_avx512.cc). A no-op when they are already there.
# Usage: tools/install_simde.sh        (run as root, or with sudo available)
set -euo pipefail
for d in /usr/include /usr/local/include ${SIMDE_INCLUDE:-}; do
  if [ -f "$d/simde/x86/avx512.h" ]; then
    echo "tools/install_simde.sh: SIMDe found in $d"
    exit 0
  fi
done
bash "$(dirname "$0")/apt_install.sh" tools/install_simde.sh \
  "install the SIMDe headers (https://github.com/simd-everywhere/simde) yourself" libsimde-dev || exit 1
test -f /usr/include/simde/x86/avx512.h
echo "tools/install_simde.sh: installed libsimde-dev"
