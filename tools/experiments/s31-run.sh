#!/usr/bin/env bash
# Session 31's device run (made by tools/experiments/s31-prepare.sh): p0 = main, a1 = main +
# tools/experiments/s31-adaptive.patch (project forward's cluster finish where the device holds
# the wave's blocks as clusters), a2 = main + s31-walk.patch (a1, and blocks that walk all K
# splits where the token blocks alone fill the waves). In order, so that a short lease still gets
# what gates landing: the cluster probe (about a minute), a2's and a1's split tests, the bench of
# p0, a1 and a2, the floor probe (tools/experiments/s31-floor-probe.cu) with main's scale_sinkhorn,
# a2's project tests, a second bench round, the stall profile of main's scale_sinkhorn backward.
# DEADLINE=seconds (default 540) skips a part that would not end in time.
# `s31.sh b`, a second call at once on the same machine: a3 (a2 with about 4096 columns a K
# split, s31-split4096.patch): its split tests, the bench of p0, a2 and a3, a3's project tests,
# a second bench round, then a1's project tests where time is left.
# `s31.sh c`, a third call (session 32, target 4): c1 = main + s32-colsum.patch (scale's
# backwards sum their block's partials through shared memory; the walk back's first step
# peeled) and c2 = c1 + s32-fastexp.patch (e^x by ex2.approx where its argument is bounded): the
# bench of p0, c1 and c2 for scale and scale_sinkhorn (te), c2's tests (scale, scale_sinkhorn,
# sinkhorn and head, whose sigmoid changed), a second te round and a deepseek round, ncu's kernel
# times of the three scale_sinkhorn backwards, then c1's tests (scale, scale_sinkhorn, sinkhorn)
# where time is left.
# Everything comes back in $OUT/s31-out.tgz, s31b-out.tgz or s31c-out.tgz (the device tool
# returns at most 8 files).
set -u
cd "$(dirname "$0")/.."
PART=${1:-a}
DEST=$OUT OUT=/tmp/s31$PART-out
mkdir -p "$OUT"
trap 'tar -czf "$DEST/s31${PART/a/}-out.tgz" -C "$OUT" .' EXIT
trap 'exit 143' TERM INT
export MHCJIT_TUNING_DB=/tmp/none.json
tar -xzf .device-build/caches31.tgz -C /tmp
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total --format=csv,noheader
T0=$(date +%s)
stamp() { echo "-- $(( $(date +%s) - T0 )) s"; }
left() { echo $(( ${DEADLINE:-540} - $(date +%s) + T0 )); }
fits() { (( $(left) >= $1 )) || { echo "== skipped: $2 (needs $1 s)"; false; }; }
tests() { # variant name limit cases (the ops: TEST_OPS, default project)
  MHCJIT_TEST_OPS=${TEST_OPS:-project} GPU_RUN_LIMIT=$3 TEST_GPU=.device-build/$1/test-gpu tools/gpu-run.sh tests "$OUT/$1-$2" -tc="$4" >/dev/null
  echo "== $1 tests $2"; grep -A3 "exit status\|== stopped\|== failing" "$OUT/$1-$2/tests.txt" | head -20; tail -n 3 "$OUT/$1-$2/tests.txt"
}
project_tests() { # variant: the project list, where 120 s are left, in what is left (at most 170 s)
  fits 120 "$1 project tests" || return 0
  local l=$(( $(left) - 10 ))
  tests $1 project $(( l < 170 ? l : 170 )) 'every op forward and backward*,project in tf32*,every backward agrees*,forward outputs*,every op with parameters*,every op runs past*,a whole mHC sublayer*'
  stamp
}
CFG="--config 4,8192,7168 --config 4,8192,4096 --config 1,8192,16384 --config 8,2048,2560 --config 3,8192,2048 --config 1,4096,6656 --config 1,4096,16384 --config 1,2048,16384 --config 1,4096,7168 --config 1,2048,7168 --config 1,4096,2560"
bench() { # binary round
  MHCJIT_CACHE_DIR=/tmp/cache-$1 timeout 90 .device-build/$1/mhc-jit bench --op project $CFG > $OUT/proj-$1-$2.txt 2>&1
  echo "== project $1 round $2"; grep -iE 'copy|project \| fwd' $OUT/proj-$1-$2.txt | cut -c1-60
}
scale_bench() { # variant round contract
  MHCJIT_CACHE_DIR=/tmp/cache-${1/p0/ss} timeout 60 .device-build/$1/mhc-jit bench --op scale,scale_sinkhorn \
    --contract $3 > $OUT/scale-$1-$3-$2.txt 2>&1
  echo "== scale ops $1 $3 round $2"; grep -iE 'copy|scale' $OUT/scale-$1-$3-$2.txt | cut -c1-100
}
SCALE_CASES='scale and scale_sinkhorn*,scale_sinkhorn matches*,scale_sinkhorn gives*,sinkhorn matches*,softmax_eps with*,every op forward and backward*,forward outputs*,every backward agrees*,every op runs past*,every op with parameters*,a whole mHC sublayer*'
if [ "$PART" = c ]; then
  for v in p0 c1 c2; do scale_bench $v 1 te; done; stamp
  fits 100 "c2 tests" && { l=$(( $(left) - 90 ))
    TEST_OPS=scale,scale_sinkhorn,sinkhorn,head tests c2 scale $(( l < 260 ? l : 260 )) "$SCALE_CASES"; stamp; }
  fits 60 "te round 2" && { for v in p0 c1 c2; do scale_bench $v 2 te; done; stamp; }
  fits 40 "deepseek round" && { for v in p0 c1 c2; do scale_bench $v 1 deepseek; done; stamp; }
  fits 60 "ncu kernel times" && for v in p0 c1 c2; do # the kernels alone, six launches each
    MHCJIT_CACHE_DIR=/tmp/cache-${v/p0/ss} timeout 40 ncu --clock-control none \
      -k regex:'scale_sinkhorn_bwd|reduce_rows' -c 12 --metrics gpu__time_duration.sum \
      .device-build/$v/mhc-jit bench --op scale_sinkhorn --config 4,8192,7168 > $OUT/ncu-$v.txt 2>&1
    echo "== ncu $v"; grep -E 'scale_sinkhorn_bwd|reduce_rows|gpu__time_duration' $OUT/ncu-$v.txt | head -n 24; done
  fits 100 "c1 tests" && { l=$(( $(left) - 10 ))
    TEST_OPS=scale,scale_sinkhorn,sinkhorn tests c1 scale $(( l < 240 ? l : 240 )) "$SCALE_CASES"; stamp; }
  exit 0
fi
if [ "$PART" = b ]; then
  tests a3 split 90 'project forward matches*'; stamp
  for v in p0 a2 a3; do bench $v 1; done; stamp
  project_tests a3
  fits 60 "round 2" && { for v in p0 a2 a3; do bench $v 2; done; stamp; }
  project_tests a1 # a1's own gate, should it beat a2 and a3
  exit 0
fi
timeout 120 bash .device-build/probe-run.sh 2>&1 | tee $OUT/probe.txt; stamp
tests a2 split 90 'project forward matches*'; stamp
tests a1 split 90 'project forward matches*'; stamp
for v in p0 a1 a2; do bench $v 1; done; stamp
fits 40 "floor probe" && { # target 4's floor under the bench's timing, beside main's scale_sinkhorn
  timeout 60 .device-build/floor > $OUT/floor.txt 2>&1; grep -v "^  " $OUT/floor.txt
  MHCJIT_CACHE_DIR=/tmp/cache-ss timeout 60 .device-build/p0/mhc-jit bench --op scale_sinkhorn --config 4,8192,7168 > $OUT/ss-p0.txt 2>&1
  grep -iE "copy|scale_sinkhorn" $OUT/ss-p0.txt | cut -c1-80; stamp; }
project_tests a2
fits 60 "round 2" && { for v in p0 a1 a2; do bench $v 2; done; stamp; }
fits 70 "stall profile" && { # target 4: where main's scale_sinkhorn backward waits, region by region
  MHC_JIT=.device-build/p0/mhc-jit MHCJIT_CACHE_DIR=/tmp/cache-ss timeout 100 tools/gpu-run.sh stalls $OUT/stalls-ssb \
    scale_sinkhorn_bwd --op scale_sinkhorn --config 4,8192,7168 > /dev/null 2>&1
  echo "== stalls scale_sinkhorn_bwd"; head -n 40 $OUT/stalls-ssb/stalls.txt; stamp; }
