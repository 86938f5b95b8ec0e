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
if ! command -v apt-get >/dev/null 2>&1; then
  echo "tools/install_simde.sh: no apt-get; install the SIMDe headers (https://github.com/simd-everywhere/simde) yourself" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -qq --no-install-recommends libsimde-dev >/dev/null 2>&1 \
  || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends libsimde-dev >/dev/null; }
test -f /usr/include/simde/x86/avx512.h
echo "tools/install_simde.sh: installed libsimde-dev"
