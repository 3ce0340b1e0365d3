#!/usr/bin/env bash
# Session 31's prepared device run: tools/experiments/s31-adaptive.patch (a1: project forward's
# cluster finish, chosen per call by the driver's cluster occupancy) and s31-walk.patch (a2: a1
# and blocks that walk all K splits where the token blocks alone fill the waves) against main,
# and the cluster probe; a3 = a2 with about 4096 columns a K split (s31-split4096.patch, on top of
# s31-walk.patch); the floor probe for target 4; c1 = main + s32-colsum.patch (session 32, target
# 4: scale's backwards sum their block's partials through shared memory, and the walk back's
# first step is peeled); c2 = c1 + s32-fastexp.patch (e^x by ex2.approx where its argument is
# bounded). Run from the repository root of a clean main with ./build configured
# (bash .ci/setup); about 8 minutes on 2 cores. Makes:
#   .device-build/p0/mhc-jit                main
#   .device-build/a1/mhc-jit, a1/test-gpu   main + s31-adaptive.patch
#   .device-build/a2/mhc-jit, a2/test-gpu   main + s31-walk.patch
#   .device-build/a3/mhc-jit, a3/test-gpu   main + s31-walk.patch + s31-split4096.patch
#   .device-build/c1/mhc-jit, c1/test-gpu   main + s32-colsum.patch
#   .device-build/c2/mhc-jit, c2/test-gpu   main + s32-colsum.patch + s32-fastexp.patch
#   .device-build/probe, probe-run.sh       tools/experiments/s31-cluster-probe.cpp, built with a1
#   .device-build/floor                     tools/experiments/s31-floor-probe.cu
#   .device-build/caches31.tgz              cache-p0, cache-a1..a3 (sm_90a): project te tf32;
#                                           cache-ss, cache-c1, cache-c2: main's, c1's, c2's
#                                           scale and scale_sinkhorn, te and deepseek, the
#                                           bench's six C
#   .device-build/s31.sh                    the run (tools/experiments/s31-run.sh)
# Then: device run `DEADLINE=540 bash .device-build/s31.sh` with carry [".device-build"], and
# at once after it, on the same machine (a warm one is kept 30 s), `DEADLINE=540 bash
# .device-build/s31.sh b` (a3's part), then `DEADLINE=540 bash .device-build/s31.sh c` (c1's and c2's).
set -euo pipefail
[ -z "$(git status --porcelain --untracked-files=no)" ] || { echo "s31-prepare.sh: commit or stash first" >&2; exit 2; }
out=.device-build
caches=$(mktemp -d)
applied=() # the patches on the tree now, in the order applied
unapply() { for ((i = ${#applied[@]} - 1; i >= 0; i--)); do git apply -R "${applied[i]}"; done; applied=(); }
cleanup() {
  rm -rf "$caches"
  unapply
}
trap cleanup EXIT
rm -rf $out && mkdir -p $out/p0 $out/a1 $out/a2 $out/a3 $out/c1 $out/c2
prewarm() { # variant
  $out/$1/mhc-jit prewarm --cache-dir "$caches/cache-$1" --arch sm_90a --op project --n 4 \
    --C 7168,4096,16384,2560,2048,6656 --dtype bf16 --contract te --precision tf32 -j=2 2>&1 | tail -n 1
}
prewarm_scale() { # binary cache: both scale ops, both contracts, the bench's six C
  for contract in te deepseek; do
    $1 prewarm --cache-dir "$caches/$2" --arch sm_90a --op scale,scale_sinkhorn --n 4 \
      --C 7168,4096,16384,2560,2048,6656 --dtype bf16 --contract $contract -j=2 2>&1 | tail -n 1
  done
}
cmake --build build --target mhc-jit -j2 >/dev/null
cp build/mhc-jit $out/p0/
prewarm p0
for v in "a1 s31-adaptive" "a2 s31-walk" "a3 s31-walk s31-split4096" "c1 s32-colsum" "c2 s32-colsum s32-fastexp"; do
  set -- $v
  for p in "${@:2}"; do git apply tools/experiments/$p.patch && applied+=(tools/experiments/$p.patch); done
  cmake --build build --target mhc-jit test-gpu -j2 >/dev/null
  cp build/mhc-jit build/tests/test-gpu $out/$1/
  case $1 in c*) prewarm_scale $out/$1/mhc-jit cache-$1 ;; *) prewarm $1 ;; esac
  [ $1 != a1 ] || g++ -O2 -std=c++17 -I/usr/local/cuda/include -Itemplates tools/experiments/s31-cluster-probe.cpp \
    -L/usr/local/cuda/lib64/stubs -lcuda -o $out/probe
  unapply
done
cmake --build build -j2 >/dev/null # main again
prewarm_scale $out/p0/mhc-jit cache-ss # for the floor probe's scale_sinkhorn bench and part c's p0
tar -czf $out/caches31.tgz -C "$caches" cache-p0 cache-a1 cache-a2 cache-a3 cache-ss cache-c1 cache-c2
/usr/local/cuda/bin/nvcc -O3 -arch=sm_90a -o $out/floor tools/experiments/s31-floor-probe.cu
cp tools/experiments/s31-probe-run.sh $out/probe-run.sh
cp tools/experiments/s31-run.sh $out/s31.sh
du -sh $out
