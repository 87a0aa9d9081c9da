#!/usr/bin/env python3
"""Renders the JSON lines a benchmark printed as the markdown of its docs/benchmarks.md section.

usage: bench_format.py SECTION [ARGS...] < measurements.jsonl
"""
import json
import sys


def rows():
    return [json.loads(l) for l in sys.stdin if l.startswith("{")]


def protocol(records):
    data = rows()
    n = int(records)
    print(f"{n:,} realistic customer records (about {data[0]['bytes'] / n:.0f} bytes per line) plus a state every 100, in memory, best of 3.")
    print("Reproduce: `scripts/bench protocol` (or `cargo bench -p sync-protocol --bench framing -- N`).")
    print()
    print("| operation | records/s | MB/s |")
    print("| --- | ---: | ---: |")
    for r in data:
        print(f"| {r['bench']} | {r['records_per_second']:,.0f} | {r['mb_per_second']:,.0f} |")
    full = next(r for r in data if r["bench"] == "parse full messages")
    peek = next(r for r in data if r["bench"].startswith("peek"))
    print()
    print(
        f"The fast path (peek) is {peek['records_per_second'] / full['records_per_second']:.1f}x faster than building "
        "each message: the engine forwards record lines without re-serialising their data."
    )


if __name__ == "__main__":
    globals()[sys.argv[1].replace("-", "_")](*sys.argv[2:])
