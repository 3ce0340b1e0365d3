#!/usr/bin/env python3
"""mhcjit tools: a short text summary of Nsight Compute's per-SASS-line source page.

Input: the CSV that `ncu --import REPORT --page source --print-source sass --csv` prints (one
kernel). Output: the warp stall reasons over the whole kernel, the kernel's regions (runs of
consecutive instructions executed equally often: straight code, loop bodies) with their
instructions a warp and their share of the stall samples, and the lines with the most samples.
So a profile of a few megabytes becomes a page to read, small enough to bring back from a
remote GPU machine.

usage: ncu_source_summary.py SOURCE.csv [--top N] [--warps W]
  --warps W   divide executed instructions by W (the kernel's warps) to give them a warp
"""
import argparse
import csv
import sys


def number(text):
    try:
        return float(text)
    except ValueError:
        return 0.0


def read_rows(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header_at = next((i for i, r in enumerate(rows) if "Address" in r and "Source" in r), None)
    if header_at is None:
        sys.exit(f"{path}: no header with Address and Source columns (not ncu's source page CSV?)")
    header = rows[header_at]
    kernel = rows[header_at - 1][1] if header_at > 0 and len(rows[header_at - 1]) > 1 else "?"
    return kernel, header, [r for r in rows[header_at + 1:] if len(r) == len(header)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--warps", type=float, default=1.0)
    args = parser.parse_args()

    kernel, header, rows = read_rows(args.csv)
    col = {name: i for i, name in enumerate(header)}
    for needed in ("Address", "Source", "Warp Stall Sampling (All Samples)", "Instructions Executed"):
        if needed not in col:
            sys.exit(f"{args.csv}: no column '{needed}'")
    if not rows:
        sys.exit(f"{args.csv}: no SASS lines")
    stalls = [h for h in header if h.startswith("stall_") and "Not Issued" not in h]
    samples_col, executed_col = col["Warp Stall Sampling (All Samples)"], col["Instructions Executed"]

    total_samples = sum(number(r[samples_col]) for r in rows)
    total_executed = sum(number(r[executed_col]) for r in rows)
    print(f"kernel: {kernel}")
    print(f"SASS lines: {len(rows)}, instructions executed: {total_executed:.0f} "
          f"({total_executed / args.warps:.0f} a warp over {args.warps:g} warps), stall samples: {total_samples:.0f}")

    print("\nstall reasons (share of all samples):")
    totals = {s: sum(number(r[col[s]]) for r in rows) for s in stalls}
    for name, value in sorted(totals.items(), key=lambda kv: -kv[1]):
        if value > 0:
            print(f"  {name[len('stall_'):]:<20} {value:8.0f} {100 * value / max(total_samples, 1):5.1f}%")

    base = int(rows[0][col["Address"]], 16)
    regions = []  # [first offset, last offset, executions a line, lines, samples]
    for r in rows:
        offset = int(r[col["Address"]], 16) - base
        executed = number(r[executed_col])
        if regions and regions[-1][2] == executed:
            regions[-1][1] = offset
            regions[-1][3] += 1
            regions[-1][4] += number(r[samples_col])
        else:
            regions.append([offset, offset, executed, 1, number(r[samples_col])])
    print("\nregions with at least 1% of the instructions or the samples "
          "(offsets from the first line; instructions a warp):")
    print(f"  {'from':>8} {'to':>8} {'runs':>8} {'lines':>6} {'instr':>8} {'samples':>8}")
    for first, last, executed, lines, samples in regions:
        instructions = executed * lines
        if instructions >= 0.01 * total_executed or samples >= 0.01 * total_samples:
            print(f"  {first:#8x} {last:#8x} {executed / args.warps:8.2f} {lines:6d} "
                  f"{instructions / args.warps:8.0f} {100 * samples / max(total_samples, 1):7.1f}%")

    print(f"\nthe {args.top} lines with the most samples (their main stall reasons):")
    ranked = sorted(rows, key=lambda r: -number(r[samples_col]))[: args.top]
    for r in ranked:
        samples = number(r[samples_col])
        if samples <= 0:
            break
        reasons = sorted(((number(r[col[s]]), s[len('stall_'):]) for s in stalls), reverse=True)
        main_reasons = ", ".join(f"{name} {value:.0f}" for value, name in reasons[:2] if value > 0)
        offset = int(r[col["Address"]], 16) - base
        print(f"  {offset:#8x} {samples:6.0f}  {r[col['Source']].strip()[:56]:<56} {main_reasons}")


if __name__ == "__main__":
    main()
