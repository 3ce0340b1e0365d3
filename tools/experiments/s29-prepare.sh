#!/usr/bin/env bash
# Session 29's prepared device run: project forward's split cap (tools/experiments/s29-cap8.patch,
# branch s29-cap8). Run from the repository root of a clean main with ./build configured
# (bash .ci/setup); about 1 minute on 2 cores. Makes:
#   .device-build/p0/mhc-jit                 main (K / 3072 splits, up to 63)
#   .device-build/c8/mhc-jit, c8/test-gpu    main + the patch: at most 8 splits
#   .device-build/c12/mhc-jit                the patch with the cap at 12, for the curve's shape
#   .device-build/caches29.tgz               cache-p0, cache-c8, cache-c12: project te tf32, sm_90a
#   .device-build/s29.sh                     the run (tools/experiments/s29-run.sh)
# Then: device run `bash .device-build/s29.sh` with carry [".device-build"].
set -euo pipefail
[ -z "$(git status --porcelain --untracked-files=no)" ] || { echo "s29-prepare.sh: commit or stash first" >&2; exit 2; }
out=.device-build
caches=$(mktemp -d)
trap 'rm -rf "$caches"; git checkout -- templates README.md tests 2>/dev/null || true' EXIT
rm -rf $out && mkdir -p $out/p0 $out/c8 $out/c12
prewarm() { # binary cache
  "$1" prewarm --cache-dir "$caches/$2" --arch sm_90a --op project --n 4 --C 7168,4096,16384,2560,2048,6656 \
    --dtype bf16 --contract te --precision tf32 -j=2 2>&1 | tail -n 1
}
cmake --build build --target mhc-jit -j2 >/dev/null
cp build/mhc-jit $out/p0/
prewarm $out/p0/mhc-jit cache-p0

git apply tools/experiments/s29-cap8.patch
cmake --build build --target mhc-jit test-gpu -j2 >/dev/null
cp build/mhc-jit build/tests/test-gpu $out/c8/
prewarm $out/c8/mhc-jit cache-c8

sed -i 's|^  return K < 6144 ? 1 : K / 3072 < 8 ? int(K / 3072) : 8;|  return K < 6144 ? 1 : K / 3072 < 12 ? int(K / 3072) : 12;|' templates/mhc_args.h
grep -q 'K / 3072 < 12 ? int(K / 3072) : 12;' templates/mhc_args.h || { echo "s29-prepare.sh: the cap was not found" >&2; exit 1; }
cmake --build build --target mhc-jit -j2 >/dev/null
cp build/mhc-jit $out/c12/
prewarm $out/c12/mhc-jit cache-c12

git checkout -- templates README.md tests
cmake --build build -j2 >/dev/null # main again
tar -czf $out/caches29.tgz -C "$caches" cache-p0 cache-c8 cache-c12
cp tools/experiments/s29-run.sh $out/s29.sh
du -sh $out
