#!/usr/bin/env bash
# Session 29's device run (made by tools/experiments/s29-prepare.sh). p0 = main, n1 = main + the
# split cap at 8 + the scale forwards' M first, c12 = n1 with the cap at 12. About 8 minutes, the
# parts that gate landing first: n1's split test, the project bench, the scale compare, n1's
# scale tests, then n1's other project tests.
set -u
cd "$(dirname "$0")/.."
# the device tool returns at most 8 files: everything goes to one archive, also on a stop
DEST=$OUT OUT=/tmp/s29-out
mkdir -p "$OUT"
trap 'tar -czf "$DEST/s29-out.tgz" -C "$OUT" .' EXIT
trap 'exit 143' TERM INT
export MHCJIT_TUNING_DB=/tmp/none.json
tar -xzf .device-build/caches29.tgz -C /tmp
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total --format=csv,noheader
tests() { # name limit cases
  MHCJIT_TEST_OPS=$4 GPU_RUN_LIMIT=$2 TEST_GPU=.device-build/n1/test-gpu tools/gpu-run.sh tests "$OUT/$1" -tc="$3" >/dev/null
  echo "== n1 tests $1"; grep -A3 "exit status\|== stopped\|== failing" "$OUT/$1/tests.txt" | head -20; tail -n 3 "$OUT/$1/tests.txt"
}
tests split 90 'project forward matches*' project
CFG="--config 4,8192,7168 --config 4,8192,4096 --config 1,8192,16384 --config 8,2048,2560 --config 3,8192,2048 --config 1,4096,6656 --config 1,4096,16384 --config 1,2048,16384 --config 1,1024,16384 --config 1,4096,7168 --config 1,2048,7168"
for r in 1 2; do
  for v in p0 n1 c12; do
    MHCJIT_CACHE_DIR=/tmp/cache-$v timeout 90 .device-build/$v/mhc-jit bench --op project $CFG > $OUT/proj-$v-$r.txt 2>&1
    echo "== project $v round $r"; grep -iE 'copy|project \| fwd' $OUT/proj-$v-$r.txt | cut -c1-60
  done
done
export OLD_CACHE=/tmp/cache-p0 NEW_CACHE=/tmp/cache-n1
tools/gpu-run.sh compare "$OUT/te" .device-build/p0/mhc-jit .device-build/n1/mhc-jit 2 --op scale,scale_sinkhorn > /dev/null 2>&1
grep -E "^==|fwd" "$OUT/te/compare.txt" | cut -c1-60
tools/gpu-run.sh compare "$OUT/ds" .device-build/p0/mhc-jit .device-build/n1/mhc-jit 1 --op scale,scale_sinkhorn --contract deepseek > /dev/null 2>&1
grep -E "^==|fwd" "$OUT/ds/compare.txt" | cut -c1-60
tests scale 150 'every op forward and backward*,every backward agrees*,every op runs past*,scale and scale_sinkhorn*,scale_sinkhorn matches*,scale_sinkhorn gives*,forward outputs*,a whole mHC sublayer*' scale,scale_sinkhorn
tests project 170 'every op forward and backward*,project in tf32*,every backward agrees*,every op runs past*,every op with parameters*' project
