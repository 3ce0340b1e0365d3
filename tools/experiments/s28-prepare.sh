#!/usr/bin/env bash
# Session 28's prepared device run, rebuilt from main and tools/experiments/s28-finishes.patch
# (for a checkout whose ignored .device-build/ is gone). Run from the repository root of a clean
# main with ./build configured (bash .ci/setup); took 2.5-2.7 minutes on 2 cores. Makes:
#   .device-build/p0/mhc-jit     p0: main
#   .device-build/s1/mhc-jit     s1: main with project_fwd_splits "K < 12288 ? 1 : K / 8192"
#   .device-build/f1/mhc-jit, f1/test-gpu   f1: main + s28-finishes.patch
#   .device-build/caches.tgz     cache-p0, cache-s1, cache-f1: each binary's kernels for sm_90a
#                                (project; p0 and f1 also scale and scale_sinkhorn)
#   .device-build/s28b.sh        the run (tools/experiments/s28b-run.sh)
# Then: device run `bash .device-build/s28b.sh` with carry [".device-build"].
set -euo pipefail
[ -z "$(git status --porcelain --untracked-files=no)" ] || { echo "s28-prepare.sh: commit or stash first" >&2; exit 2; }
out=.device-build
caches=$(mktemp -d)
trap 'rm -rf "$caches"; git checkout -- templates runtime tests README.md 2>/dev/null || true' EXIT
mkdir -p $out/p0 $out/s1 $out/f1
C=7168,4096,16384,2560,2048,6656
prewarm() { # binary cache ops contracts [precision]
  local prec=()
  [ -z "${5:-}" ] || prec=(--precision "$5")
  for c in ${4//,/ }; do
    "$1" prewarm --cache-dir "$caches/$2" --arch sm_90a --op "$3" --n 4 --C $C --dtype bf16 --contract "$c" \
      "${prec[@]}" -j=2 2>&1 | tail -n 1
  done
}
cmake --build build --target mhc-jit -j2 >/dev/null
cp build/mhc-jit $out/p0/mhc-jit
prewarm $out/p0/mhc-jit cache-p0 scale,scale_sinkhorn te,deepseek
prewarm $out/p0/mhc-jit cache-p0 project te tf32

sed -i 's|^  return K < 6144 ? 1 : K / 3072 < 63 ? int(K / 3072) : 63;.*|  return K < 12288 ? 1 : K / 8192 < 63 ? int(K / 8192) : 63;|' templates/mhc_args.h
grep -q 'return K < 12288 ? 1 : K / 8192' templates/mhc_args.h || { echo "s28-prepare.sh: the split rule was not found" >&2; exit 1; }
cmake --build build --target mhc-jit -j2 >/dev/null
cp build/mhc-jit $out/s1/mhc-jit
git checkout -- templates/mhc_args.h
prewarm $out/s1/mhc-jit cache-s1 project te tf32

git apply tools/experiments/s28-finishes.patch
cmake --build build --target mhc-jit test-gpu -j2 >/dev/null
cp build/mhc-jit build/tests/test-gpu $out/f1/
git apply -R tools/experiments/s28-finishes.patch
prewarm $out/f1/mhc-jit cache-f1 scale,scale_sinkhorn te,deepseek
prewarm $out/f1/mhc-jit cache-f1 project te tf32
cmake --build build -j2 >/dev/null # main again

tar -czf $out/caches.tgz -C "$caches" cache-p0 cache-s1 cache-f1
cp tools/experiments/s28b-run.sh $out/s28b.sh
du -sh $out
