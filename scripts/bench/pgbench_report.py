#!/usr/bin/env python3
"""Turns balancer.sh's result directory into the pgbench section of BENCHMARKS.md.

The results directory holds one folder per leg, named "<order>-<leg>", containing any of:
<mode>-<round>.out (pgbench's output; mode S = kept connections, C = a new connection per
transaction, L = one client on one kept connection), <mode>-<round>.meta (JSON: pgbench's exit
status, CPU seconds the leg's proxy processes used during the run, the load average), notes (free text lines), unavailable (why the leg
could not be measured). machine.json describes the machine and the run, "measured_modes" the modes
it ran (all of "modes" when absent).
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
    "cold": "tunnelmesh forward, no preconnect",
    "stunnel": "stunnel4",
    "ssh": "ssh -L",
    "pgpool": "pgpool-II",
    "haproxy": "HAProxy",
}
MODE_NAMES = {"S": "-S", "C": "-S -C", "L": "-S -c 1"}   # as the table and the details call them

# Issue 11's floors, which replace issue 5's targets: (mode, figure, reference leg, bound, whether the
# balancer's figure must be at least (True) or at most (False) bound × the reference's, digits, unit, text).
FLOORS = (
    ("S", "tps", "stunnel", 1.2, True, 0, "", "`-S -c 8`: balancer TPS ≥ 1.2× stunnel's"),
    ("L", "latency_ms", "stunnel", 1.0, False, 3, " ms", "`-S -c 1`: balancer average latency ≤ 1.0× stunnel's"),
    ("C", "tps", "direct", 0.9, True, 0, "", "`-S -C -c 4`: balancer TPS ≥ 0.9× direct's"),
    ("S", "cpu_us_per_tx", "stunnel", 0.8, False, 1, " µs",
     "`-S -c 8`: both meshd's CPU per transaction ≤ 0.8× stunnel's pair"),
)


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
    """Median TPS, latency average and connection time over the good runs; proxy CPU per transaction
    over all of them."""
    good = [r for r in runs if "error" not in r]
    if not good:
        return None
    tx = sum(r["transactions"] or 0 for r in good)
    cpu = [r["proxy_cpu_s"] for r in good if r["proxy_cpu_s"] is not None]
    connect = [r["connect_ms"] for r in good if r["connect_ms"] is not None]
    latency = [r["latency_ms"] for r in good if r["latency_ms"] is not None]
    return {
        "tps": statistics.median(r["tps"] for r in good),
        "latency_ms": statistics.median(latency) if latency else None,
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

    def figure(name, mode, key):
        s = stats.get(name, {}).get(mode)
        return s[key] if s else None

    modes = machine["modes"]
    measured = machine.get("measured_modes", list(modes))
    duration = machine["duration"]
    described = {
        "S": f"`-S` is `pgbench -n {modes.get('S')} -T {duration}` (kept connections)",
        "C": f"`-S -C` is `pgbench -n {modes.get('C')} -T {duration}` (a new connection per transaction)",
        "L": f"`-S -c 1` is `pgbench -n {modes.get('L')} -T {duration}` (one client on one kept connection: one "
             "transaction at a time, so its latency is one round trip through the leg plus PostgreSQL's query)",
    }
    left_out = [m for m in MODE_NAMES if m not in measured]
    skipped = ""
    if left_out:
        skipped = (" This run left out " + " and ".join(f"`{MODE_NAMES[m]}`" for m in left_out)
                   + f" (`--modes {','.join(measured)}`): their columns say *not measured*.")
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
        f"loopback. " + "; ".join(described[m] for m in MODE_NAMES) + ". The modes take turns as the legs do. "
        f"TPS and latency are the medians of {machine['rounds']} run(s) per leg and mode.{skipped} "
        "*connect ms* is pgbench's average connection time with `-C`; *-S -c 1 latency ms* is pgbench's "
        "`latency average` with `-c 1`, and its *× stunnel* is the leg's latency over stunnel's (lower is "
        "better: below 1.00× the leg answers faster than stunnel); *proxy CPU µs/tx* is the CPU time of the "
        "leg's own processes (both meshd; both stunnel; ssh + sshd; "
        "pgpool and its children; haproxy) divided by the transactions, so on 2 cores it is time taken "
        "from pgbench and PostgreSQL. libpq's default `sslmode=prefer` everywhere: PostgreSQL has no TLS here, "
        "so each new connection asks and gets `N` (from the balancer itself on the balancer leg). "
        "stunnel, ssh and tunnelmesh encrypt the hop; pgpool-II and HAProxy are plaintext proxies, here as the "
        "balancing comparison.",
        "",
        "| leg | -S TPS | × stunnel | × direct | -S -C TPS | × stunnel | × direct | connect ms | proxy CPU µs/tx -S "
        "| proxy CPU µs/tx -S -C | -S -c 1 latency ms | × stunnel |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]

    def missing(leg, mode, columns):
        """COLUMNS cells for a mode without a result: left out of the run, or failed."""
        if mode not in measured:
            return ["not measured"] + ["—"] * (columns - 1)
        runs = leg["modes"].get(mode, [])
        why = cell(runs[0]["error"]) if runs else "not run"
        return [f"failed: {why}"] + ["—"] * (columns - 1)

    def cells(leg):
        s, c, l = (stats[leg["name"]].get(m) for m in ("S", "C", "L"))
        values = []
        for mode, st in (("S", s), ("C", c)):
            if st is None:
                values += missing(leg, mode, 3)
            else:
                values += [fmt(st["tps"]), ratio(st["tps"], figure("stunnel", mode, "tps")),
                           ratio(st["tps"], figure("direct", mode, "tps"))]
        values.append(fmt(c["connect_ms"], 2) if c else "—")
        values.append(fmt(s["cpu_us_per_tx"], 1) if s else "—")
        values.append(fmt(c["cpu_us_per_tx"], 0) if c else "—")
        if l is None:
            values += missing(leg, "L", 2)
        else:
            values += [fmt(l["latency_ms"], 3), ratio(l["latency_ms"], figure("stunnel", "L", "latency_ms"))]
        return values

    out += table_lines(legs, LABELS, 12, cells)
    out.append("")

    out += floors(figure, measured)
    out.append("")
    costs = connection_costs(stats)
    if costs:
        out += costs + [""]
    out += details_lines(legs, LABELS, details)
    return "\n".join(out).rstrip() + "\n"


def details(leg):
    """Per-run TPS (latency with -S -c 1), failed transactions and failed runs of each mode."""
    told = []
    for mode, name in MODE_NAMES.items():
        runs = leg["modes"].get(mode, [])
        if len(runs) > 1 and mode == "L":
            told.append(f"{name} latency per run: "
                        + ", ".join(fmt(r["latency_ms"], 3) if "error" not in r else "failed" for r in runs) + " ms")
        elif len(runs) > 1:
            told.append(f"{name} TPS per run: " + ", ".join(fmt(r["tps"]) if "error" not in r else "failed" for r in runs))
        failed = sum(r["failed"] for r in runs if "error" not in r)
        if failed:
            told.append(f"{name}: {failed:.0f} failed transactions")
        errors = [r["error"] for r in runs if "error" in r]
        if errors:
            told.append(f"{name}: {len(errors)} run(s) failed, first: {errors[0]}")
    return told


def floors(figure, measured):
    """Issue 11's floors, each met or missed by this run's figures, or not measured."""
    lines = ["Floors (issue 11):", ""]
    for mode, key, base, bound, at_least, digits, unit, text in FLOORS:
        if mode not in measured:
            lines.append(f"- {text}: **not measured** (this run left out `{MODE_NAMES[mode]}`).")
            continue
        value, reference = figure("balancer", mode, key), figure(base, mode, key)
        if value is None or reference is None:
            missing = "the balancer" if value is None else base
            lines.append(f"- {text}: **not measured** ({missing} has no result in this run).")
            continue
        if not reference:
            lines.append(f"- {text}: **not measured** ({base}'s figure is 0).")
            continue
        got = value / reference
        verdict = "met" if (got >= bound if at_least else got <= bound) else "missed"
        lines.append(f"- {text}: {fmt(value, digits, unit)} vs {fmt(reference, digits, unit)} = {got:.2f}× → **{verdict}**.")
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
        f"(TCP connect, PostgreSQL's fork and backend start, trust authentication)"
        + "".join("; " + part for part in parts) + ". pgbench opens a thread's connections one at a time, so with `-C -c 4` (one "
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
