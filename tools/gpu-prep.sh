#!/usr/bin/env bash
# mhcjit tools: everything a GPU session's old-against-new run needs, made on the CPU machine, so
# that one device start goes to measuring only. Run from the repository root after building
# ./build (bash .ci/setup).
#
#   tools/gpu-prep.sh OLD_REV [mhc-jit prewarm arguments, default: --op scale,scale_sinkhorn]
#       builds OLD_REV's mhc-jit (in a temporary worktree, from a copy of ./build, so
#       only what differs is rebuilt) into .device-build/mhc-jit-old, and prewarms for sm_90a, at n = 4, the
#       bench's six C values, bf16 and both contracts, a kernel cache for each binary:
#       .device-build/cache-old.tgz and cache-new.tgz (each unpacks to /tmp/cache-old or
#       /tmp/cache-new). Carry ["build", ".device-build"], then on the device machine:
#         tar -xzf .device-build/cache-old.tgz -C /tmp; tar -xzf .device-build/cache-new.tgz -C /tmp
#         OLD_CACHE=/tmp/cache-old NEW_CACHE=/tmp/cache-new tools/gpu-run.sh compare $OUT \
#           .device-build/mhc-jit-old build/mhc-jit 2 --op ...
set -euo pipefail

usage() {
  grep '^#  ' "$0" >&2
  exit 2
}

[ $# -ge 1 ] || usage
old_rev=$1
shift
[ $# -gt 0 ] || set -- --op scale,scale_sinkhorn
root=$(pwd)
[ -x build/mhc-jit ] || { echo "gpu-prep.sh: build/mhc-jit not found; run bash .ci/setup first" >&2; exit 2; }
git rev-parse --verify -q "$old_rev^{commit}" >/dev/null || { echo "gpu-prep.sh: $old_rev is not a commit" >&2; exit 2; }

out=$root/.device-build
mkdir -p "$out"
tree=$(mktemp -d)
caches=$(mktemp -d)
cleanup() {
  git -C "$root" worktree remove --force "$tree" >/dev/null 2>&1 || true
  rm -rf "$tree" "$caches"
}
trap cleanup EXIT

# The old binary: a worktree with a copy of ./build whose cached paths name the worktree, so
# that only what differs is rebuilt.
git worktree add --detach --force "$tree" "$old_rev" >/dev/null
cp -a build "$tree/build"
configured=$(grep -rlF "$root" "$tree/build" --include=CMakeCache.txt --include='*.cmake' --include=Makefile \
  --include='*.make' --include='*.txt' || true)
grep -q CMakeCache.txt <<<"$configured" || { echo "gpu-prep.sh: build/ was not configured from $root" >&2; exit 2; }
tr '\n' '\0' <<<"$configured" | xargs -0 -r sed -i "s#$root#$tree#g"
cmake --build "$tree/build" --target mhc-jit -j"$(nproc)" >"$caches/build.log" 2>&1 ||
  { tail -n 20 "$caches/build.log" >&2; exit 1; }
cp "$tree/build/mhc-jit" "$out/mhc-jit-old"

for side in old new; do
  tool=$root/build/mhc-jit
  [ $side = new ] || tool=$out/mhc-jit-old
  for contract in te deepseek; do
    "$tool" prewarm --cache-dir "$caches/cache-$side" --arch sm_90a --n 4 --C 7168,4096,16384,2560,2048,6656 \
      --dtype bf16 --contract $contract "$@" 2>&1 | tail -n 1
  done
  tar -czf "$out/cache-$side.tgz" -C "$caches" "cache-$side"
done
ls -l "$out"
