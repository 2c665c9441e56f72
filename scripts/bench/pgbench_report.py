#!/usr/bin/env python3
"""Turns balancer.sh's result directory into the pgbench section of BENCHMARKS.md.

The results directory holds one folder per leg, named "<order>-<leg>", containing any of:
<mode>-<round>.out (pgbench's output; mode S = kept connections, C = a new connection per
transaction), <mode>-<round>.meta (JSON: pgbench's exit status, CPU seconds the leg's proxy
processes used during the run, the load average), notes (free text lines), unavailable (why the leg
could not be measured). machine.json describes the machine and the run.
"""

import argparse
import json
import pathlib
import re
import statistics

from markdown_section import print_section
from result_rows import cell, details_lines, load_rows, ratio, table_lines

SECTION = "pgbench"
LABELS = {
    "direct": "direct",
    "balancer": "tunnelmesh balancer (rw)",
    "forward": "tunnelmesh forward",
    "stunnel": "stunnel4",
    "ssh": "ssh -L",
    "pgpool": "pgpool-II",
    "haproxy": "HAProxy",
}
TARGET_S = 1.2   # balancer TPS with -S, times stunnel's
TARGET_C = 0.8   # balancer TPS with -S -C, times direct's


def number(pattern, text):
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else None


def parse_run(out_path):
    """One pgbench run: TPS, latency, connection time, transactions, failures, or the error."""
    text = out_path.read_text(errors="replace")
    meta_path = out_path.with_suffix(".meta")
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    run = {
        "tps": number(r"^tps = ([0-9.]+)", text),
        "latency_ms": number(r"^latency average = ([0-9.]+) ms", text),
        "connect_ms": number(r"^average connection time = ([0-9.]+) ms", text),
        "transactions": number(r"^number of transactions actually processed: ([0-9]+)", text),
        "failed": number(r"^number of failed transactions: ([0-9]+)", text) or 0,
        "proxy_cpu_s": meta.get("proxy_cpu_s"),
        "rc": meta.get("rc", 0),
    }
    if run["rc"] != 0 or run["tps"] is None:
        lines = [l for l in text.splitlines() if l.strip()]
        errors = [l for l in lines if "error" in l.lower() or "fatal" in l.lower()]
        run["error"] = (errors or lines or [f"pgbench exited {run['rc']} with no output"])[0].strip()
    return run


def load(results):
    legs = load_rows(results)
    for leg in legs:
        leg["modes"] = {}
        for out in sorted(leg["folder"].glob("*.out"), key=lambda p: int(p.stem.split("-")[1])):
            mode = out.stem.split("-")[0]
            leg["modes"].setdefault(mode, []).append(parse_run(out))
    return legs


def summary(runs):
    """Median TPS and connection time over the good runs; proxy CPU per transaction over all of them."""
    good = [r for r in runs if "error" not in r]
    if not good:
        return None
    tx = sum(r["transactions"] or 0 for r in good)
    cpu = [r["proxy_cpu_s"] for r in good if r["proxy_cpu_s"] is not None]
    connect = [r["connect_ms"] for r in good if r["connect_ms"] is not None]
    return {
        "tps": statistics.median(r["tps"] for r in good),
        "latency_ms": statistics.median(r["latency_ms"] for r in good if r["latency_ms"] is not None),
        "connect_ms": statistics.median(connect) if connect else None,
        "cpu_us_per_tx": sum(cpu) * 1e6 / tx if cpu and tx else None,
        "failed": sum(r["failed"] for r in good),
        "bad_runs": len(runs) - len(good),
    }


def fmt(value, digits=0, unit=""):
    if value is None:
        return "—"
    return f"{value:,.{digits}f}{unit}"


def render(legs, machine):
    stats = {leg["name"]: {m: summary(runs) for m, runs in leg["modes"].items()} for leg in legs if "unavailable" not in leg}

    def tps(name, mode):
        s = stats.get(name, {}).get(mode)
        return s["tps"] if s else None

    modes = machine["modes"]
    out = [
        "## PostgreSQL through the balancer (`scripts/bench/balancer.sh`)",
        "",
        f"Measured {machine['date']} on {machine['cores']} cores, {machine['cpu']}, {machine['kernel']}, "
        f"{machine['postgres']}, {machine['openssl']}; meshd: {machine['build']}. "
        f"Load average before measuring: {machine['load_start']}; after: {machine['load_end']}. "
        "This machine is shared with other builds and tests and its numbers are noisy: compare legs within "
        "this run (they take turns run by run, so background load falls on all of them alike), not across runs.",
        "",
        f"One PostgreSQL primary (pgbench -i -s {machine['scale']}), pgbench on the same machine, everything on "
        f"loopback. `-S` is `pgbench -n {modes['S']} -T {machine['duration']}` (kept connections); `-S -C` is "
        f"`pgbench -n {modes['C']} -T {machine['duration']}` (a new connection per transaction). TPS is the median "
        f"of {machine['rounds']} run(s) per leg. *connect ms* is pgbench's average connection time with `-C`; "
        "*proxy CPU µs/tx* is the CPU time of the leg's own processes (both meshd; both stunnel; ssh + sshd; "
        "pgpool and its children; haproxy) divided by the transactions, so on 2 cores it is time taken "
        "from pgbench and PostgreSQL. libpq's default `sslmode=prefer` everywhere: PostgreSQL has no TLS here, "
        "so each new connection asks and gets `N` (from the balancer itself on the balancer leg). "
        "stunnel, ssh and tunnelmesh encrypt the hop; pgpool-II and HAProxy are plaintext proxies, here as the "
        "balancing comparison.",
        "",
        "| leg | -S TPS | × stunnel | × direct | -S -C TPS | × stunnel | × direct | connect ms | proxy CPU µs/tx -S | proxy CPU µs/tx -S -C |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]

    def cells(leg):
        s, c = stats[leg["name"]].get("S"), stats[leg["name"]].get("C")
        values = []
        for mode, st in (("S", s), ("C", c)):
            if st is None:
                runs = leg["modes"].get(mode, [])
                why = cell(runs[0]["error"]) if runs else "not run"
                values += [f"failed: {why}", "—", "—"]
            else:
                values += [fmt(st["tps"]), ratio(st["tps"], tps("stunnel", mode)), ratio(st["tps"], tps("direct", mode))]
        values.append(fmt(c["connect_ms"], 2) if c else "—")
        values.append(fmt(s["cpu_us_per_tx"], 1) if s else "—")
        values.append(fmt(c["cpu_us_per_tx"], 0) if c else "—")
        return values

    out += table_lines(legs, LABELS, 10, cells)
    out.append("")

    out += targets(tps)
    out.append("")
    out += connection_costs(stats)
    out.append("")
    out += details_lines(legs, LABELS, details)
    return "\n".join(out).rstrip() + "\n"


def details(leg):
    """Per-run TPS, failed transactions and failed runs of each mode."""
    told = []
    for mode, name in (("S", "-S"), ("C", "-S -C")):
        runs = leg["modes"].get(mode, [])
        if len(runs) > 1:
            told.append(f"{name} TPS per run: " + ", ".join(fmt(r["tps"]) if "error" not in r else "failed" for r in runs))
        failed = sum(r["failed"] for r in runs if "error" not in r)
        if failed:
            told.append(f"{name}: {failed:.0f} failed transactions")
        errors = [r["error"] for r in runs if "error" in r]
        if errors:
            told.append(f"{name}: {len(errors)} run(s) failed, first: {errors[0]}")
    return told


def targets(tps):
    lines = ["Targets (issue 5):", ""]
    checks = (
        ("S", "stunnel", TARGET_S, "`-S`: balancer TPS ≥ 1.2× stunnel's"),
        ("C", "direct", TARGET_C, "`-S -C`: balancer TPS ≥ 0.8× direct's"),
    )
    for mode, base, target, text in checks:
        value, reference = tps("balancer", mode), tps(base, mode)
        if value is None or reference is None:
            missing = "the balancer" if value is None else base
            lines.append(f"- {text}: **not measured** ({missing} has no result in this run).")
            continue
        got = value / reference
        verdict = "met" if got >= target else "missed"
        lines.append(f"- {text}: {value:,.0f} vs {reference:,.0f} = {got:.2f}× → **{verdict}**.")
    return lines


def connection_costs(stats):
    """Where a new connection's time goes, from the -C runs: each leg's extra over direct."""
    c = {name: modes.get("C") for name, modes in stats.items() if modes.get("C")}
    base = c.get("direct")
    if not base or base["connect_ms"] is None:
        return []
    parts = []
    for name, st in c.items():
        if name == "direct" or st["connect_ms"] is None:
            continue
        extra = st["connect_ms"] - base["connect_ms"]
        cpu = ""
        kept = stats[name].get("S")
        if st["cpu_us_per_tx"] is not None and kept and kept["cpu_us_per_tx"] is not None:
            cpu = f", ~{st['cpu_us_per_tx'] - kept['cpu_us_per_tx']:,.0f} µs of proxy CPU"
        parts.append(f"{LABELS.get(name, name)} {st['connect_ms']:.2f} ms ({extra:+.2f} ms{cpu})")
    return [
        f"A new connection (pgbench's average connection time with `-S -C`; proxy CPU per connection = "
        f"CPU per `-S -C` transaction minus CPU per `-S` transaction): direct {base['connect_ms']:.2f} ms "
        f"(TCP connect, PostgreSQL's fork and backend start, trust authentication); "
        + "; ".join(parts) + ". pgbench opens a thread's connections one at a time, so with `-C -c 4` (one "
        "thread) TPS is about 1000 / (connect ms + one query): `-C` TPS follows connection time."
    ]


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--results", type=pathlib.Path, required=True)
    p.add_argument("--machine", type=pathlib.Path, required=True)
    p.add_argument("--write", type=pathlib.Path)
    args = p.parse_args()
    section = render(load(args.results), json.loads(args.machine.read_text()))
    print_section(section, SECTION, args.write)

if __name__ == "__main__":
    main()
