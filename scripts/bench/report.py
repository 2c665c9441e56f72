#!/usr/bin/env python3
"""Turns tunnel.sh's result directory into the markdown section of BENCHMARKS.md.

The results directory holds one folder per path, named "<order>-<path>", containing any of:
throughput.jsonl (one tcpbench line per bulk run), latency.jsonl (one line per latency run),
latency.raw (every round-trip time in ns, pooled over the runs), notes (free text lines),
unavailable (the reason the path could not be measured).
"""

import argparse
import json
import pathlib
import statistics

from markdown_section import print_section
from result_rows import details_lines, load_rows, ratio, table_lines
from tcpbench import percentile

SECTION = "tunnel"
LABELS = {"direct": "direct TCP", "tunnelmesh": "tunnelmesh", "stunnel": "stunnel4", "ssh": "ssh -L"}


def load(results):
    rows = load_rows(results)
    for row in rows:
        folder, row["runs"] = row["folder"], []
        if (folder / "throughput.jsonl").exists():
            row["runs"] = [json.loads(l)["mb_per_s"] for l in (folder / "throughput.jsonl").read_text().splitlines() if l.strip()]
        if (folder / "latency.raw").exists():
            samples = sorted(int(l) for l in (folder / "latency.raw").read_text().split())
            if samples:
                row["p50"] = round(percentile(samples, 50) / 1000, 1)
                row["p99"] = round(percentile(samples, 99) / 1000, 1)
        if (folder / "latency.jsonl").exists():
            row["lat_runs"] = [json.loads(l)["p50_us"] for l in (folder / "latency.jsonl").read_text().splitlines() if l.strip()]
    return rows


def size(n):
    return f"{n // 2**30} GiB" if n % 2**30 == 0 else f"{n:,} bytes"


def render(rows, header, args):
    mbps = {r["name"]: statistics.median(r["runs"]) for r in rows if r["runs"] and "unavailable" not in r}
    direct, stunnel = mbps.get("direct"), mbps.get("stunnel")
    out = [
        "## Tunnel data path (`scripts/bench/tunnel.sh`)",
        "",
        header.strip(),
        "",
        f"Bulk: {size(args.bytes)} in one direction (client → server sink) through one TCP stream, "
        f"1 MiB `sendall` chunks, clocked from the server's ready byte to its acknowledgement of the total; "
        f"MB/s = 10^6 bytes/s, median of {args.repeat} run(s). Latency: 1-byte ping-pong, TCP_NODELAY at both "
        f"ends, {args.count // args.repeat * args.repeat:,} round trips in {args.repeat} run(s) of "
        f"{args.count // args.repeat:,}, each on a new connection after {args.warmup:,} warm-up round trips; "
        f"nearest-rank percentiles over all of them. Paths take turns run by run, so background load "
        f"falls on all of them alike. "
        "Client, server and both tunnel ends share the same cores on loopback, so a tunnel's CPU cost "
        "shows up directly. The ratio columns compare throughput.",
        "",
        "| path | MB/s | × direct | × stunnel | p50 µs | p99 µs |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]

    def cells(r):
        value = mbps.get(r["name"])
        return [f"{value:,.0f}", ratio(value, direct), ratio(value, stunnel), f"{r.get('p50', '—')}", f"{r.get('p99', '—')}"]

    def details(r):
        told = []
        if len(r["runs"]) > 1:
            told.append("bulk runs MB/s: " + ", ".join(f"{v:,.0f}" for v in r["runs"]))
        if len(r.get("lat_runs", [])) > 1:
            told.append("p50 µs per latency run: " + ", ".join(f"{v:g}" for v in r["lat_runs"]))
        return told

    out += table_lines(rows, LABELS, 6, cells)
    out.append("")
    out += details_lines(rows, LABELS, details)
    return "\n".join(out).rstrip() + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--results", type=pathlib.Path, required=True)
    p.add_argument("--header", type=pathlib.Path, required=True)
    p.add_argument("--bytes", type=int, required=True)
    p.add_argument("--repeat", type=int, required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--warmup", type=int, required=True)
    p.add_argument("--write", type=pathlib.Path)
    args = p.parse_args()
    section = render(load(args.results), args.header.read_text(), args)
    print_section(section, SECTION, args.write)

if __name__ == "__main__":
    main()
