#!/usr/bin/env bash
# Installs what fuzz/build.sh needs: clang with libFuzzer + ASan/UBSan runtimes.
# Debian/Ubuntu only (apt-get); a no-op when a suitable clang is already there.
# Usage: fuzz/install_deps.sh        (run as root, or with sudo available)
set -euo pipefail

have_fuzzer_clang() {
  local cxx
  for cxx in "${CXX_FUZZ:-}" clang++-14 clang++; do
    [ -n "$cxx" ] && command -v "$cxx" >/dev/null 2>&1 || continue
    local tmp
    tmp=$(mktemp -d)
    printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long){return 0;}\n' >"$tmp/t.cc"
    if "$cxx" -fsanitize=fuzzer,address,undefined "$tmp/t.cc" -o "$tmp/t" >/dev/null 2>&1; then
      rm -rf "$tmp"
      echo "fuzz/install_deps.sh: $cxx can build libFuzzer targets"
      return 0
    fi
    rm -rf "$tmp"
  done
  return 1
}

if have_fuzzer_clang; then exit 0; fi

here="$(cd "$(dirname "$0")" && pwd)"
apt="$here/../tools/apt_install.sh"
hint="install clang (>= 14) with libFuzzer and the sanitizer runtimes yourself"
bash "$apt" fuzz/install_deps.sh "$hint" clang-14 libclang-rt-14-dev \
  || bash "$apt" fuzz/install_deps.sh "$hint" clang-14   # older releases ship the runtimes in clang-14
have_fuzzer_clang
