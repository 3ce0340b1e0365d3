#!/usr/bin/env bash
# session 28's device run (prepared; run next session): project forward's K split rule and the
# in-kernel finish of its split sums, and the acq_rel last-block finish of scale's backwards.
#   p0 = main, s1 = main with project_fwd_splits "K < 12288 ? 1 : K / 8192" (reduce_rows still
#   finishes), f1 = main + tools/experiments/s28-finishes.patch (s1's rule with K < 16384 -> 2,
#   the token block's last split finishes; scale's backwards finish in their last block).
# Made by tools/experiments/s28-prepare.sh; each binary X has its kernels in /tmp/cache-X.
set -u
cd "$(dirname "$0")/.."
export MHCJIT_TUNING_DB=/tmp/none.json
tar -xzf .device-build/caches.tgz -C /tmp
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total --format=csv,noheader
CFG="--config 4,8192,7168 --config 4,8192,4096 --config 1,8192,16384 --config 8,2048,2560 --config 3,8192,2048 --config 1,4096,6656 --config 1,4096,2048 --config 1,4096,2560 --config 1,4096,4096 --config 1,2048,2560"
for r in 1 2; do
  for v in p0 s1 f1; do
    MHCJIT_CACHE_DIR=/tmp/cache-$v timeout 120 .device-build/$v/mhc-jit bench --op project $CFG > $OUT/proj-$v-$r.txt 2>&1
    echo "== $v round $r"; grep -iE 'copy|project' $OUT/proj-$v-$r.txt | cut -c1-150
  done
done
OLD=.device-build/p0/mhc-jit NEW=.device-build/f1/mhc-jit
export OLD_CACHE=/tmp/cache-p0 NEW_CACHE=/tmp/cache-f1
tools/gpu-run.sh compare "$OUT/te" $OLD $NEW 2 --op scale,scale_sinkhorn > /dev/null 2>&1
grep -E "^==|scale" "$OUT/te/compare.txt" | cut -c1-150 | head -60
tools/gpu-run.sh compare "$OUT/ds" $OLD $NEW 1 --op scale,scale_sinkhorn --contract deepseek > /dev/null 2>&1
grep -E "^==|scale" "$OUT/ds/compare.txt" | cut -c1-150 | head -40
for v in p0 s1 f1; do
  echo "== ncu project fwd (1,4096,6656) $v"
  MHCJIT_CACHE_DIR=/tmp/cache-$v timeout 60 ncu --clock-control none --metrics gpu__time_duration.sum -k regex:'project_fwd|reduce_rows' -s 6 -c 4 \
    .device-build/$v/mhc-jit bench --op project --config 1,4096,6656 2>&1 | grep -E "mhc::|gpu__time" | cut -c1-100
done
for v in p0 f1; do
  echo "== ncu scale_sinkhorn bwd (4,8192,7168) $v"
  MHCJIT_CACHE_DIR=/tmp/cache-$v timeout 60 ncu --clock-control none --metrics gpu__time_duration.sum -k regex:'scale_sinkhorn_bwd|reduce_rows' -s 6 -c 4 \
    .device-build/$v/mhc-jit bench --op scale_sinkhorn --config 4,8192,7168 2>&1 | grep -E "mhc::|gpu__time" | cut -c1-100
done
MHCJIT_TEST_OPS=scale,scale_sinkhorn GPU_RUN_LIMIT=100 TEST_GPU=.device-build/f1/test-gpu tools/gpu-run.sh tests "$OUT/f1-scale" \
  -tc='every op forward and backward*,every backward agrees*,every op runs past*,scale and scale_sinkhorn*,scale_sinkhorn matches*,scale_sinkhorn gives*,forward outputs*,a whole mHC sublayer*'
MHCJIT_TEST_OPS=project GPU_RUN_LIMIT=170 TEST_GPU=.device-build/f1/test-gpu tools/gpu-run.sh tests "$OUT/f1-project" \
  -tc='project forward matches*,every op forward and backward*,every backward agrees*,every op runs past*,forward outputs*'
MHC_JIT=$OLD MHCJIT_CACHE_DIR=/tmp/cache-p0 timeout 60 tools/gpu-run.sh stalls "$OUT/stalls-bwd" 'scale_sinkhorn_bwd' --op scale_sinkhorn --config 4,8192,7168
MHC_JIT=$OLD MHCJIT_CACHE_DIR=/tmp/cache-p0 timeout 60 tools/gpu-run.sh stalls "$OUT/stalls-fwd" 'scale_sinkhorn_fwd' --op scale_sinkhorn --config 4,8192,7168
