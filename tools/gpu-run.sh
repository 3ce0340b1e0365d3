#!/usr/bin/env bash
# mhcjit tools: one GPU session's checks with results small enough to bring back from a remote
# GPU machine (the device tool returns files under a size limit; a failing test-gpu log can be
# far larger). Run from the repository root with a built ./build.
#
#   tools/gpu-run.sh tests OUTDIR [test-gpu arguments, e.g. -tc='every op forward*']
#       runs ./build/tests/test-gpu; OUTDIR/tests.log.gz holds the whole log, OUTDIR/tests.txt
#       the names of the failing test cases, the first failures and doctest's summary.
#       Exits with test-gpu's status. With GPU_RUN_LIMIT=SECONDS, test-gpu is stopped after that
#       long (status 124) and the summary still comes: what ran, its failures and the log's end,
#       so a run that outlasts its time loses only what did not run.
#   tools/gpu-run.sh compare OUTDIR OLD_MHC_JIT NEW_MHC_JIT ROUNDS [mhc-jit bench arguments]
#       `bench` of both binaries, old then new, ROUNDS times, into OUTDIR/compare.txt (each
#       binary with its own kernel cache: OLD_CACHE / NEW_CACHE, default MHCJIT_CACHE_DIR).
#   tools/gpu-run.sh stalls OUTDIR KERNEL_REGEX [mhc-jit bench arguments]
#       ncu's stall sampling of the first launch of the kernel whose name matches, under
#       ./build/mhc-jit bench: OUTDIR/stalls.txt (tools/ncu_source_summary.py: stall reasons,
#       regions, hottest SASS lines), OUTDIR/stalls_details.txt, OUTDIR/stalls_source.csv.gz.
set -uo pipefail

usage() {
  grep '^#  ' "$0" >&2 # the usage lines of the header
  exit 2
}

[ $# -ge 2 ] || usage
mode=$1
out=$2
shift 2
mkdir -p "$out" || exit 2

case $mode in
tests)
  test_gpu=${TEST_GPU:-./build/tests/test-gpu}
  [ -x "$test_gpu" ] || { echo "gpu-run.sh: $test_gpu not found; build first" >&2; exit 2; }
  limit=${GPU_RUN_LIMIT:-}
  [ -z "$limit" ] || [[ $limit =~ ^[1-9][0-9]*$ ]] || { echo "gpu-run.sh: GPU_RUN_LIMIT must be whole seconds, not '$limit'" >&2; exit 2; }
  log=$(mktemp)
  if [ -n "$limit" ]; then
    # line-buffered, so that what doctest printed before the stop is in the log
    timeout --kill-after=10 "$limit" stdbuf -oL "$test_gpu" "$@" >"$log" 2>&1
  else
    "$test_gpu" "$@" >"$log" 2>&1
  fi
  status=$?
  gzip -c "$log" >"$out/tests.log.gz"
  {
    echo "test-gpu $* (exit status $status)"
    if [ -n "$limit" ] && { [ $status -eq 124 ] || [ $status -eq 137 ]; }; then
      echo "== stopped after GPU_RUN_LIMIT=$limit s: the cases after the log's end did not run"
      tail -n 20 "$log"
    fi
    echo "== failing test cases"
    # doctest prints the case's name under "TEST CASE:" before each of its failures
    awk '/TEST CASE:/ { name = $0 } /ERROR:/ && name != "" { print name; name = "" }' "$log" | sort | uniq -c
    echo "== first failures"
    grep -B3 -A8 'ERROR:' "$log" | head -c 24000
    echo
    echo "== summary"
    tail -n 4 "$log"
  } >"$out/tests.txt"
  rm -f "$log"
  tail -n 4 "$out/tests.txt"
  exit $status
  ;;
compare)
  [ $# -ge 3 ] || usage
  old=$1
  new=$2
  rounds=$3
  shift 3
  for bin in "$old" "$new"; do
    [ -x "$bin" ] || { echo "gpu-run.sh: $bin is not an executable" >&2; exit 2; }
  done
  status=0
  for ((round = 1; round <= rounds; ++round)); do
    for side in old new; do
      if [ $side = old ]; then bin=$old cache=${OLD_CACHE:-${MHCJIT_CACHE_DIR:-}}; else bin=$new cache=${NEW_CACHE:-${MHCJIT_CACHE_DIR:-}}; fi
      echo "== round $round $side ($bin) bench $*"
      env ${cache:+"MHCJIT_CACHE_DIR=$cache"} "$bin" bench "$@" || status=$?
    done
  done >"$out/compare.txt" 2>&1
  grep -c '^|' "$out/compare.txt" | sed 's/^/table rows: /'
  exit $status
  ;;
stalls)
  [ $# -ge 1 ] || usage
  kernel=$1
  shift
  command -v ncu >/dev/null || { echo "gpu-run.sh: ncu not found" >&2; exit 2; }
  tool=${MHC_JIT:-./build/mhc-jit}
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  report=$scratch/stalls
  ncu --clock-control none -k "regex:$kernel" -c 1 --section LaunchStats --section SchedulerStats \
    --section WarpStateStats --section SourceCounters -o "$report" "$tool" bench "$@" >"$out/stalls_ncu.log" 2>&1 ||
    { tail -n 5 "$out/stalls_ncu.log" >&2; exit 1; }
  ncu --import "$report.ncu-rep" --page details >"$out/stalls_details.txt" 2>&1
  ncu --import "$report.ncu-rep" --page source --print-source sass --csv >"$report.csv" 2>&1
  gzip -c "$report.csv" >"$out/stalls_source.csv.gz"
  # warps of the launch, from the details page's grid and block sizes
  warps=$(awk '$1 == "Grid" && $2 == "Size" { g = $NF } $1 == "Block" && $2 == "Size" { b = $NF }
               END { gsub(",", "", g); gsub(",", "", b); if (g > 0 && b > 0) print g * int((b + 31) / 32); else print 1 }' \
    "$out/stalls_details.txt")
  python3 "$(dirname "$0")/ncu_source_summary.py" "$report.csv" --warps "$warps" >"$out/stalls.txt" || exit 1
  head -n 20 "$out/stalls.txt"
  ;;
*)
  usage
  ;;
esac
