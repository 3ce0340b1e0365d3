#!/usr/bin/env bash
# Session 29's prepared device run: two candidates, never yet on a GPU, tested in one binary.
#   tools/experiments/s29-cap8.patch        project forward: at most 8 K splits (branch s29-cap8)
#   tools/experiments/s29-args-first.patch  scale forwards: M first in the arguments (s29-args-first)
# Run from the repository root of a clean main with ./build configured (bash .ci/setup); about
# 2 minutes on 2 cores. Makes:
#   .device-build/p0/mhc-jit                main
#   .device-build/n1/mhc-jit, n1/test-gpu   main + both patches
#   .device-build/c12/mhc-jit               n1 with the cap at 12 splits, for the curve's shape
#   .device-build/caches29.tgz              cache-p0, cache-n1, cache-c12 (sm_90a): project te tf32;
#                                           p0 and n1 also scale, scale_sinkhorn te and deepseek
#   .device-build/s29.sh                    the run (tools/experiments/s29-run.sh)
# Then: device run `bash .device-build/s29.sh` with carry [".device-build"].
set -euo pipefail
[ -z "$(git status --porcelain --untracked-files=no)" ] || { echo "s29-prepare.sh: commit or stash first" >&2; exit 2; }
out=.device-build
caches=$(mktemp -d)
trap 'rm -rf "$caches"; git checkout -- templates runtime README.md tests 2>/dev/null || true' EXIT
rm -rf $out && mkdir -p $out/p0 $out/n1 $out/c12
prewarm() { # binary cache ops contract [precision]
  "$1" prewarm --cache-dir "$caches/$2" --arch sm_90a --op "$3" --n 4 --C 7168,4096,16384,2560,2048,6656 \
    --dtype bf16 --contract "$4" ${5:+--precision $5} -j=2 2>&1 | tail -n 1
}
prewarm_all() { # binary cache
  prewarm "$1" "$2" project te tf32
  prewarm "$1" "$2" scale,scale_sinkhorn te
  prewarm "$1" "$2" scale,scale_sinkhorn deepseek
}
cmake --build build --target mhc-jit -j2 >/dev/null
cp build/mhc-jit $out/p0/
prewarm_all $out/p0/mhc-jit cache-p0

git apply tools/experiments/s29-cap8.patch tools/experiments/s29-args-first.patch
cmake --build build --target mhc-jit test-gpu -j2 >/dev/null
cp build/mhc-jit build/tests/test-gpu $out/n1/
prewarm_all $out/n1/mhc-jit cache-n1

sed -i 's|^  return K < 6144 ? 1 : K / 3072 < 8 ? int(K / 3072) : 8;|  return K < 6144 ? 1 : K / 3072 < 12 ? int(K / 3072) : 12;|' templates/mhc_args.h
grep -q 'K / 3072 < 12 ? int(K / 3072) : 12;' templates/mhc_args.h || { echo "s29-prepare.sh: the cap was not found" >&2; exit 1; }
cmake --build build --target mhc-jit -j2 >/dev/null
cp build/mhc-jit $out/c12/
prewarm $out/c12/mhc-jit cache-c12 project te tf32

git checkout -- templates runtime README.md tests
cmake --build build -j2 >/dev/null # main again
tar -czf $out/caches29.tgz -C "$caches" cache-p0 cache-n1 cache-c12
cp tools/experiments/s29-run.sh $out/s29.sh
du -sh $out
