#!/usr/bin/env bash
# Session 29's device run (made by tools/experiments/s29-prepare.sh): project forward's split cap.
# p0 = main (up to 63 splits), c8 = at most 8 (the candidate), c12 = at most 12. About 5 minutes:
# c8's split test first (it gates landing the cap), then the bench, then c8's other project tests.
set -u
cd "$(dirname "$0")/.."
export MHCJIT_TUNING_DB=/tmp/none.json
tar -xzf .device-build/caches29.tgz -C /tmp
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total --format=csv,noheader
MHCJIT_TEST_OPS=project GPU_RUN_LIMIT=90 TEST_GPU=.device-build/c8/test-gpu tools/gpu-run.sh tests "$OUT/c8-split" \
  -tc='project forward matches*'
tail -c 1500 "$OUT/c8-split/tests.txt"
CFG="--config 4,8192,7168 --config 4,8192,4096 --config 1,8192,16384 --config 8,2048,2560 --config 3,8192,2048 --config 1,4096,6656 --config 1,4096,16384 --config 1,2048,16384 --config 1,1024,16384 --config 1,4096,7168 --config 1,2048,7168"
for r in 1 2; do
  for v in p0 c8 c12; do
    MHCJIT_CACHE_DIR=/tmp/cache-$v timeout 90 .device-build/$v/mhc-jit bench --op project $CFG > $OUT/proj-$v-$r.txt 2>&1
    echo "== $v round $r"; grep -iE 'copy|project \| fwd' $OUT/proj-$v-$r.txt | cut -c1-70
  done
done
MHCJIT_TEST_OPS=project GPU_RUN_LIMIT=170 TEST_GPU=.device-build/c8/test-gpu tools/gpu-run.sh tests "$OUT/c8-project" \
  -tc='every op forward and backward*,project in tf32*,every backward agrees*,every op runs past*,every op with parameters*'
tail -c 2500 "$OUT/c8-project/tests.txt"
