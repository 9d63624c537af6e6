#!/usr/bin/env python3
"""Markdown tables for docs/benchmarks.md from bench/delta.sh's results directory.

Usage: delta-report.py RESULTS_DIR DETERMINISM PAIR...
"""
import json
import re
import sys
from pathlib import Path


def peers(path):
    out = {}
    for line in path.read_text().splitlines():
        k, *v = line.split()
        out[k] = [int(x) for x in v]
    return out


def main():
    results, determinism, pairs = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
    data = {}
    for p in pairs:
        d = results / p
        zck = (d / "zck_delta_size.txt").read_text()
        m = re.search(r"Would download (\d+) of (\d+) bytes", zck)
        c = re.search(r"Matched (\d+) of (\d+) chunks", zck)
        data[p] = {
            "peers": peers(d / "peers"),
            "ours": json.loads((d / "ours.json").read_text()),
            "zck": (int(m.group(1)), int(c.group(2)) - int(c.group(1)), int(c.group(2))),
        }

    def cell(p, n, req=None):
        w = data[p]["peers"]["whole_z19"][0]
        s = f"{n:,} ({100 * n / w:.1f}%)"
        return s + (f" / {req}" if req is not None else "")

    print(f"Images: 1 GiB ext4, {determinism}.\n")
    print("Whole image `zstd -19 --long=27` (the denominator): "
          + ", ".join(f"{p} {data[p]['peers']['whole_z19'][0]:,} B" for p in pairs) + ".\n")
    print("Bytes downloaded (% of the new image compressed whole with zstd -19) / HTTP requests:\n")
    print("| method | " + " | ".join(pairs) + " |")
    print("|---" * (len(pairs) + 1) + "|")
    rows = data[pairs[0]]["ours"]["rows"]

    def ours(p, i):
        return data[p]["ours"]["rows"][i]

    for i, r in enumerate(rows):
        print(f"| ours, {r['granularity']}, compact index, payload in image order, capped at 200 ranges | "
              + " | ".join(cell(p, ours(p, i)["download_compact"], ours(p, i)["requests_capped"] + 1)
                           for p in pairs) + " |")
    for i, r in enumerate(rows):
        print(f"| ours, {r['granularity']}, two-level index, new-since-previous-release first | "
              + " | ".join(cell(p, ours(p, i)["index"]["two_level"] + ours(p, i)["missing_z19"], 3)
                           for p in pairs) + " |")
    for i, r in enumerate(rows):
        print(f"| ours, {r['granularity']}, compact index, 64 KiB zstd frames, image order, uncapped | "
              + " | ".join(cell(p, ours(p, i)["index"]["compact"] + ours(p, i)["frames_missing_z19"],
                                ours(p, i)["frames_requests"] + 1) for p in pairs) + " |")
    print("| casync (default 64 KiB chunks; index + chunks not in the seed) | "
          + " | ".join(cell(p, data[p]["peers"]["casync"][0], data[p]["peers"]["casync"][1]) for p in pairs) + " |")
    print("| zchunk (`zck_delta_size`; requests = missing chunks + 1, before multi-range merging) | "
          + " | ".join(cell(p, data[p]["zck"][0], data[p]["zck"][1] + 1) for p in pairs) + " |")
    print("| `zstd -19 --long=27 --patch-from` | "
          + " | ".join(cell(p, data[p]["peers"]["zstd_patch"][0], 1) for p in pairs) + " |")
    print("| `xdelta3 -9 -e -B 1GiB` | "
          + " | ".join(cell(p, data[p]["peers"]["xdelta3"][0], 1) for p in pairs) + " |")
    for lv in ("3", "19"):
        if all(f"bundle_z{lv}" in data[p]["peers"] for p in pairs):
            print(f"| full: our bundle today (`update-tool bundle create --level {lv}`, 1 MiB chunks) | "
                  + " | ".join(cell(p, data[p]["peers"][f"bundle_z{lv}"][0], 1) for p in pairs) + " |")
    print("| full: zchunk file | " + " | ".join(cell(p, data[p]["peers"]["zck_full"][0], 1) for p in pairs) + " |")
    print()
    print("Per granularity (index sizes in bytes; missing = distinct non-zero chunks of NEW found nowhere in OLD):\n")
    print("| pair | granularity | chunks (zero) | missing chunks | missing raw | index flat / compact / two-level "
          "| missing z19 / z3 / z19 one frame per run / z19 with dictionary (incl.) | 64 KiB frames: bytes (requests) "
          "| requests merged → capped (+bytes) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for p in pairs:
        for r in data[p]["ours"]["rows"]:
            ix = r["index"]
            print(f"| {p} | {r['granularity']} | {r['chunks']:,} ({r['zero_chunks']:,}) | {r['missing_chunks']:,} "
                  f"| {r['missing_raw']:,} | {ix['flat']:,} / {ix['compact']:,} / {ix['two_level']:,} "
                  f"| {r['missing_z19']:,} / {r['missing_z3']:,} / {r['missing_z19_runs']:,} / {r['missing_z19_dict']:,} "
                  f"| {r['frames_missing_z19']:,} ({r['frames_requests']}) "
                  f"| {r['requests']:,} → {r['requests_capped']} (+{r['cap_extra']:,}) |")
    print()
    for p in pairs:
        rs = [r for r in data[p]["ours"]["rows"] if r["full_z19"]]
        if not rs:
            continue
        print(f"Full bundle payload of `{p}` (every distinct non-zero chunk; % of the whole image at zstd -19):\n")
        print("| granularity | each chunk z19 | each chunk z3 | each chunk z19 + shared dictionary | 64 KiB frames z19 |")
        print("|---|---|---|---|---|")
        for r in rs:
            print(f"| {r['granularity']} | {cell(p, r['full_z19'])} | {cell(p, r['full_z3'])} "
                  f"| {cell(p, r['full_z19_dict'])} | {cell(p, r['full_z19_frames'])} |")
        print()
    print("Wall times (s): " + "; ".join(
        f"{p}: zstd -19 {data[p]['peers']['whole_z19'][1]}, ours {data[p]['peers']['ours_seconds'][0]}, "
        f"casync {data[p]['peers']['casync'][3]}, zck {data[p]['peers']['zck_seconds'][0]}, "
        f"patch-from {data[p]['peers']['zstd_patch'][1]}, xdelta3 {data[p]['peers']['xdelta3'][1]}" for p in pairs))


if __name__ == "__main__":
    main()
