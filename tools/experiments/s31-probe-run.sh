#!/usr/bin/env bash
# Session 31: runs tools/experiments/s31-cluster-probe.cpp (built into .device-build/probe by
# s31-prepare.sh) on a1's prewarmed project forward kernels (no gamma), both tiles, at the bench
# configs' (C, M) and three more.
set -u
cd "$(dirname "$0")/.."
CACHE=${CACHE:-/tmp/cache-a1}
[ -d "$CACHE" ] || tar -xzf .device-build/caches31.tgz -C /tmp
for cfg in "6656 4096" "2560 16384" "2048 24576" "4096 32768" "16384 8192" "7168 32768" "7168 4096" "16384 4096" "2560 4096"; do
  set -- $cfg
  for tr in "128 64" "256 128"; do
    set -- $1 $2 $tr
    name="_ZN3mhc11project_fwdILi4ELi$1ENS_6bf16_tEfLi$3ELi$4ELb1ELb0ELi16EEEvNS_14ProjectFwdArgsE"
    manifest=$(grep -l "\"lowered_name\": \"$name\"" "$CACHE"/v1/*/*/manifest.json | head -1)
    [ -n "$manifest" ] || { echo "no kernel $name"; continue; }
    ${PROBE:-.device-build/probe} "$(dirname "$manifest")/kernel.cubin" "$name" $3 $4 $1 $2
  done
done
