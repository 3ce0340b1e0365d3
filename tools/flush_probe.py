#!/usr/bin/env python3
"""mhcjit tools: what the bench's L2 flush costs the op timed after it (needs torch and a GPU).

`mhc-jit bench` (runtime/LaunchTimer.cpp) writes a 256 MiB buffer before each repetition, so the
op starts with an L2 full of that buffer's dirty lines; the op's own misses then write them back
to DRAM inside the timed window. This times device-to-device copies of several sizes the same
way ("dirty": the bench's flush) and with the flush followed by a read of another 256 MiB buffer
("clean": the L2 then holds clean lines, written back before the timing starts), and prints each
as a fraction of the 1 GiB copy bandwidth that the bench measures.

    python3 tools/flush_probe.py [REPEATS]
"""
import sys

import torch


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    flush = torch.empty(1 << 28, dtype=torch.uint8, device="cuda")
    clean = torch.ones(1 << 26, dtype=torch.int32, device="cuda")  # 256 MiB, read only
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def median_us(op, mode: str) -> float:
        samples = []
        for i in range(3 + repeats):
            flush.fill_(i & 255)
            if mode == "clean":
                clean.sum()
            start.record()
            op()
            stop.record()
            stop.synchronize()
            if i >= 3:
                samples.append(start.elapsed_time(stop) * 1e3)
        samples.sort()
        return samples[len(samples) // 2]

    big = 1 << 30
    src, dst = torch.empty(big, dtype=torch.uint8, device="cuda"), torch.empty(big, dtype=torch.uint8, device="cuda")
    src.fill_(1)
    copy_bw = 2 * big / (median_us(lambda: dst.copy_(src), "dirty") * 1e-6)
    print(f"{torch.cuda.get_device_name()}: 1 GiB copy (bench's flush) {copy_bw / 1e9:.0f} GB/s")
    print("| bytes moved (MB) | dirty flush (us) | % of copy | clean flush (us) | % of copy |")
    print("|---|---|---|---|---|")
    for moved_mb in (6.3, 25, 73, 218, 436, 2147):
        half = int(moved_mb * 1e6 / 2) // 16 * 16
        s, d = src[:half], dst[:half]
        ideal_us = 2 * half / copy_bw * 1e6
        dirty = median_us(lambda: d.copy_(s), "dirty")
        cleaned = median_us(lambda: d.copy_(s), "clean")
        print(f"| {2 * half / 1e6:.1f} | {dirty:.1f} | {100 * ideal_us / dirty:.1f} | {cleaned:.1f} | "
              f"{100 * ideal_us / cleaned:.1f} |")


if __name__ == "__main__":
    main()
