#!/usr/bin/env python3
"""Turns tunnel.sh's result directory into the markdown section of BENCHMARKS.md.

The results directory holds one folder per path, named "<order>-<path>", containing any of:
throughput.jsonl (one tcpbench line per bulk run), latency.jsonl (one line per latency run),
latency.raw (every round-trip time in ns, pooled over the runs), connect.jsonl (one line per
connect run), connect.raw (every connect-to-echo time in ns, pooled over the runs), notes (free
text lines), unavailable (the reason the path could not be measured).
"""

import argparse
import json
import pathlib
import statistics

from markdown_section import print_section
from result_rows import details_lines, load_rows, ratio, table_lines
from tcpbench import percentile

SECTION = "tunnel"
LABELS = {"direct": "direct TCP", "nio-relay": "bare NIO relay pair", "nio-relay-tls": "NIO relay pair + meshd's TLS",
          "nio-relay-frame": "NIO relay pair + meshd's TLS + bare DATA frames",
          "tunnelmesh": "tunnelmesh", "tunnelmesh-baseline": "tunnelmesh, baseline build", "tunnelmesh-reverse": "tunnelmesh, reverse streams",
          "stunnel": "stunnel4", "ssh": "ssh -L"}


def jsonl(path, field):
    """FIELD of every line of PATH that has it (older result lines lack newer fields)."""
    if not path.exists():
        return []
    values = (json.loads(l).get(field) for l in path.read_text().splitlines() if l.strip())
    return [v for v in values if v is not None]


def pooled(row, path, prefix):
    """Nearest-rank p50 and p99 (µs) over all raw samples (ns) of a path's runs."""
    if path.exists():
        samples = sorted(int(l) for l in path.read_text().split())
        if samples:
            row[prefix + "p50"] = round(percentile(samples, 50) / 1000, 1)
            row[prefix + "p99"] = round(percentile(samples, 99) / 1000, 1)


def load(results):
    rows = load_rows(results)
    for row in rows:
        folder = row["folder"]
        row["runs"] = jsonl(folder / "throughput.jsonl", "mb_per_s")
        pooled(row, folder / "latency.raw", "")
        row["lat_runs"] = jsonl(folder / "latency.jsonl", "p50_us")
        row["cpu_runs"] = jsonl(folder / "latency.jsonl", "cpu_us_per_rt")
        pooled(row, folder / "connect.raw", "conn_")
        row["conn_runs"] = jsonl(folder / "connect.jsonl", "p50_us")
        row["conn_rates"] = jsonl(folder / "connect.jsonl", "conns_per_s")
        row["conn_cpu_runs"] = jsonl(folder / "connect.jsonl", "cpu_us_per_conn")
    return rows


def size(n):
    return f"{n // 2**30} GiB" if n % 2**30 == 0 else f"{n:,} bytes"


def direction_lines(rows):
    """Issue 11 item 4: a stream towards the node that dialed the tunnel (a reverse stream) must not
    cost a visibly extra round trip compared with the other direction. Both measured in this run."""
    by_name = {r["name"]: r for r in rows if "unavailable" not in r}
    fwd, rev = by_name.get("tunnelmesh"), by_name.get("tunnelmesh-reverse")
    if not fwd or not rev:
        return []
    told = []
    for what, key in (("new connection (connect to first echo)", "conn_p50"), ("1-byte round trip", "p50")):
        a, b = fwd.get(key), rev.get(key)
        if a is None or b is None:
            continue
        text = f"{what} p50 {b:,.1f} µs reverse vs {a:,.1f} µs forward ({b - a:+,.1f} µs, {b / a:.2f}×)"
        if key == "conn_p50" and fwd.get("p50"):
            text += f", the difference {(b - a) / fwd['p50']:+.2f}× tunnelmesh's 1-byte round trip p50 ({fwd['p50']:,.1f} µs)"
        told.append(text)
    if not told:
        return []
    return ["Stream direction (issue 11 item 4; streams towards the node that dialed the tunnel are opened "
            "by asking it over the control stream): " + "; ".join(told) + ".", ""]


def render(rows, header, args):
    mbps = {r["name"]: statistics.median(r["runs"]) for r in rows if r["runs"] and "unavailable" not in r}
    rates = {r["name"]: statistics.median(r["conn_rates"]) for r in rows if r["conn_rates"] and "unavailable" not in r}
    direct, stunnel = mbps.get("direct"), mbps.get("stunnel")
    per_run = args.connects // args.repeat
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
        f"nearest-rank percentiles over all of them; *CPU µs/rt* is the time on a CPU (user and kernel, "
        f"from each thread's schedstat) of the path's own processes (both tunnel ends, and their children) "
        f"per timed round trip, median over the runs. "
        f"Connect: {per_run * args.repeat:,} new connections in {args.repeat} run(s) of {per_run:,}, "
        f"each run after {args.connect_warmup} untimed ones, opened one after another: connect(), the "
        f"echo request and 1 byte in one write, the byte's echo, close; *connect* µs runs from connect() "
        f"to the echo (through a tunnel: accepting the connection, opening the tunnel's stream and the "
        f"far end's connection to the server), nearest-rank over all of them; conn/s is the median over "
        f"runs of connections per second of wall time, closes included; *CPU µs/conn* is the path's "
        f"processes' CPU time per timed connection (utime + stime, which keep exited threads: stunnel runs one per connection; closes included), median over runs. "
        f"Paths take turns run by run, so background load falls on all of them alike. "
        "Client, server and both tunnel ends share the same cores on loopback, so a tunnel's CPU cost "
        "shows up directly. The ratio columns compare throughput. Both tunnelmesh rows use the same two "
        "meshd: *tunnelmesh* opens streams from the node that dialed the tunnel, *reverse streams* "
        "towards it (see the notes under the table).",
        "",
        "| path | MB/s | × direct | × stunnel | p50 µs | p99 µs | CPU µs/rt | connect p50 µs | connect p99 µs | conn/s | CPU µs/conn |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]

    def num(value, fmt="{:,.0f}"):
        return "—" if value is None else fmt.format(value)

    def cells(r):
        value = mbps.get(r["name"])
        cpu = statistics.median(r["cpu_runs"]) if r.get("cpu_runs") else None
        conn_cpu = statistics.median(r["conn_cpu_runs"]) if r.get("conn_cpu_runs") else None
        return [num(value), ratio(value, direct), ratio(value, stunnel), f"{r.get('p50', '—')}", f"{r.get('p99', '—')}",
                num(cpu, "{:,.1f}"), num(r.get("conn_p50"), "{:,.1f}"), num(r.get("conn_p99"), "{:,.1f}"),
                num(rates.get(r["name"])), num(conn_cpu, "{:,.1f}")]

    def details(r):
        told = []
        if len(r["runs"]) > 1:
            told.append("bulk runs MB/s: " + ", ".join(f"{v:,.0f}" for v in r["runs"]))
        if len(r.get("lat_runs", [])) > 1:
            told.append("p50 µs per latency run: " + ", ".join(f"{v:g}" for v in r["lat_runs"]))
        if len(r.get("cpu_runs", [])) > 1:
            told.append("CPU µs/rt per latency run: " + ", ".join(f"{v:g}" for v in r["cpu_runs"]))
        if len(r.get("conn_runs", [])) > 1:
            told.append("connect p50 µs per run: " + ", ".join(f"{v:g}" for v in r["conn_runs"]))
        if len(r.get("conn_cpu_runs", [])) > 1:
            told.append("CPU µs/conn per connect run: " + ", ".join(f"{v:g}" for v in r["conn_cpu_runs"]))
        if len(r.get("conn_rates", [])) > 1:
            told.append("conn/s per run: " + ", ".join(f"{v:,.0f}" for v in r["conn_rates"]))
        return told

    out += table_lines(rows, LABELS, 11, cells)
    out.append("")
    out += direction_lines(rows)
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
    p.add_argument("--connects", type=int, required=True)
    p.add_argument("--connect-warmup", type=int, required=True)
    p.add_argument("--write", type=pathlib.Path)
    args = p.parse_args()
    section = render(load(args.results), args.header.read_text(), args)
    print_section(section, SECTION, args.write)

if __name__ == "__main__":
    main()
