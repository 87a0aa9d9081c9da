#!/usr/bin/env python3
"""Splices a benchmark section into docs/benchmarks.md.

usage: bench_report.py SECTION TITLE < fragment.md
The fragment replaces the text between <!-- bench:SECTION:start --> and <!-- bench:SECTION:end -->,
or is appended when the section is new. Other sections are kept as they are.
"""
import datetime
import os
import platform
import re
import subprocess
import sys

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "benchmarks.md")

HEADER = """# Benchmarks

Written by `scripts/bench` (run `scripts/bench` for every section, or `scripts/bench SECTION...`).
Each section records the machine and commit it was measured on. Targets are ratios measured in
the same run, because this machine is shared and noisy; absolute numbers vary from run to run.

"""


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        rev = "?"
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    today = datetime.date.today().isoformat()
    return f"_Measured {today} at commit `{rev}` on {os.cpu_count()} cores ({cpu}){mem}, {platform.system()} {platform.release()}._"


def main():
    section, title = sys.argv[1], sys.argv[2]
    body = sys.stdin.read().strip()
    if not body:
        # The measurement or its formatting failed upstream: keep the section as it was.
        sys.exit(f"bench_report: nothing to write for section {section!r}; docs/benchmarks.md is unchanged")
    block = f"<!-- bench:{section}:start -->\n## {title}\n\n{machine()}\n\n{body}\n<!-- bench:{section}:end -->"
    try:
        with open(DOC) as f:
            doc = f.read()
    except FileNotFoundError:
        doc = HEADER
    pattern = re.compile(rf"<!-- bench:{re.escape(section)}:start -->.*?<!-- bench:{re.escape(section)}:end -->", re.S)
    if pattern.search(doc):
        doc = pattern.sub(lambda _: block, doc)
    else:
        doc = doc.rstrip() + "\n\n" + block + "\n"
    with open(DOC, "w") as f:
        f.write(doc if doc.endswith("\n") else doc + "\n")


if __name__ == "__main__":
    main()
