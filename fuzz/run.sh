#!/usr/bin/env bash
# Runs every libFuzzer target for SECONDS each on a scratch copy of its seed
# corpus, prints executions and coverage, and fails on any crash, leak, UB
# report, timeout or out-of-memory.
#
#   fuzz/run.sh SECONDS            e.g. fuzz/run.sh 60 (CI), fuzz/run.sh 3600
#
# Environment:
#   LMC_FUZZ_BUILD   build dir of fuzz/build.sh (default build/fuzz); fuzz/build.sh is
#                    run first (incremental) unless LMC_FUZZ_NO_BUILD is set
#   LMC_FUZZ_TARGETS targets to run (default "fuzz_decode fuzz_rans fuzz_latents")
#   LMC_FUZZ_KEEP    directory to keep the grown corpora in (default: a temp dir, removed)
#   LMC_FUZZ_JOBS    parallel libFuzzer workers per target (-fork=N; default 1)
#   LMC_FUZZ_ARGS    extra libFuzzer flags
#   LMC_FUZZ_SERIAL  set to run the targets one after the other (default: side by side)
# Crashing inputs are left in $LMC_FUZZ_BUILD/artifacts/<target>/.
# The regression inputs tests/data/regressions/* are replayed through
# fuzz_decode first.
set -euo pipefail
if [ $# -ne 1 ] || ! [[ "$1" =~ ^[0-9]+$ ]]; then echo "usage: $0 SECONDS" >&2; exit 2; fi
SECONDS_PER_TARGET=$1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${LMC_FUZZ_BUILD:-$ROOT/build/fuzz}
TARGETS=${LMC_FUZZ_TARGETS:-fuzz_decode fuzz_rans fuzz_latents}
JOBS=${LMC_FUZZ_JOBS:-1}
export LMC_FUZZ_MODEL_DIR=${LMC_FUZZ_MODEL_DIR:-$ROOT/python/lmcodec/models}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# (Re)build: incremental, a few seconds when nothing changed.
if [ -z "${LMC_FUZZ_NO_BUILD:-}" ]; then LMC_FUZZ_BUILD=$BUILD "$ROOT/fuzz/build.sh" >/dev/null; fi

if [ -n "${LMC_FUZZ_KEEP:-}" ]; then WORK=$LMC_FUZZ_KEEP; mkdir -p "$WORK"; else WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT; fi
status=0

regs=("$ROOT"/tests/data/regressions/*.lmc)
if [[ " $TARGETS " == *" fuzz_decode "* ]] && [ -e "${regs[0]}" ]; then
  if "$BUILD/fuzz_decode" -runs=1 "${regs[@]}" >"$WORK/regressions.log" 2>&1; then
    echo "regressions: ${#regs[@]} input(s) replayed OK"
  else
    echo "regressions: FAILED"; tail -40 "$WORK/regressions.log"; status=1
  fi
fi

run_target() {  # target -> $WORK/$t.summary (+ .failed)
  local t=$1 seeds max_len corpus log rc execs last cov ft units crashes par=()
  case $t in fuzz_decode) seeds=$ROOT/fuzz/corpus/decode; max_len=8192 ;;
             fuzz_rans) seeds=$ROOT/fuzz/corpus/rans; max_len=4096 ;;
             *) seeds=$ROOT/fuzz/corpus/${t#fuzz_}; max_len=4096 ;; esac
  corpus=$WORK/corpus-$t
  mkdir -p "$corpus" "$BUILD/artifacts/$t"
  cp -n "$seeds"/* "$corpus"/ 2>/dev/null || true
  log=$WORK/$t.log
  if [ "$JOBS" -gt 1 ]; then par=(-fork="$JOBS"); fi
  set +e
  # shellcheck disable=SC2086
  "$BUILD/$t" "$corpus" -max_total_time="$SECONDS_PER_TARGET" -max_len=$max_len -timeout=10 \
    -rss_limit_mb=2560 -malloc_limit_mb=2048 -print_final_stats=1 -detect_leaks=1 ${par[@]+"${par[@]}"} \
    -artifact_prefix="$BUILD/artifacts/$t/" ${LMC_FUZZ_ARGS:-} >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{s+=$2} END {print s+0}')
  last=$(grep -E '^#[0-9]+' "$log" | grep -E 'cov: [0-9]+' | tail -1 || true)
  cov=$(echo "$last" | grep -o 'cov: [0-9]*' | awk '{print $2}')
  ft=$(echo "$last" | grep -o 'ft: [0-9]*' | awk '{print $2}')
  units=$(find "$corpus" -type f | wc -l)
  if [ "$JOBS" -gt 1 ]; then execs=$(echo "$last" | grep -o '^#[0-9]*' | tr -d '#'); fi
  crashes=$(grep -cE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|==ERROR|SUMMARY: ' "$log" || true)
  printf '%-13s %6ss  execs=%s  cov=%s  ft=%s  corpus=%s  exit=%s\n' "$t" "$SECONDS_PER_TARGET" "${execs:-?}" \
    "${cov:-?}" "${ft:-?}" "$units" "$rc" >"$WORK/$t.summary"
  if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    {
      echo "$t: FAILED (exit $rc); artifacts in $BUILD/artifacts/$t/"
      grep -nE 'ERROR|runtime error|SUMMARY|Test unit written' "$log" | head -20
      tail -60 "$log"
    } >>"$WORK/$t.summary"
    touch "$WORK/$t.failed"
  fi
}

# The targets run side by side (each for SECONDS), so a CI run takes about
# SECONDS of wall time; LMC_FUZZ_SERIAL=1 runs them one after the other.
pids=()
for t in $TARGETS; do
  if [ -n "${LMC_FUZZ_SERIAL:-}" ]; then run_target "$t"; else run_target "$t" & pids+=($!); fi
done
for p in "${pids[@]}"; do wait "$p" || true; done
for t in $TARGETS; do
  cat "$WORK/$t.summary" 2>/dev/null || { echo "$t: no result"; status=1; }
  if [ -e "$WORK/$t.failed" ]; then status=1; fi
done
exit $status
