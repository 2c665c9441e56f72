#!/usr/bin/env python3
"""Turns scale.sh's result directory into the scale section of BENCHMARKS.md.

The results directory holds <part>-<name>.jsonl files (one scale.py JSON line per measurement:
streams-run, mesh-start, mesh-idle, mesh-stop-TERM, mesh-storm-TERM, mesh-stop-KILL,
mesh-storm-KILL) and <part>-failed (why a part could not be measured).
"""

import argparse
import json
import os
import pathlib
import platform

from markdown_section import print_section

SECTION = "scale"
STREAM_GOAL_KIB = 16
MESH_GOAL_S = 10
IDLE_CPU_GOAL_PCT = 0.5


def lines(results, name):
    path = results / f"{name}.jsonl"
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()] if path.exists() else []


def failure(results, part):
    path = results / f"{part}-failed"
    return path.read_text().strip() if path.exists() else None


def mib(kib):
    return f"{kib / 1024:,.1f} MiB"


def verdict(ok):
    return "met" if ok else "**missed**"


def machine(args):
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown CPU")
    load_end = " ".join(open("/proc/loadavg").read().split()[:3])
    return (f"Measured {args.started} on {os.cpu_count()} cores, {cpu}, Linux {platform.release()}, meshd "
            f"{args.commit} (release build); load average at start: {args.load_start}, at end: {load_end}. "
            "Every process (meshd, the echo server, the clients) shares these cores.")


def streams_part(results, args):
    out = ["### Idle streams through one tunnel", ""]
    runs = lines(results, "streams-run")
    if not runs:
        return out + [f"Not measured: {failure(results, 'streams') or 'no result'}", ""]
    r = runs[-1]
    rss, per = r["rss_kib"], r["kib_per_stream"]
    n = r["count"]
    out += [
        f"app1 → db1 over one TLS tunnel; a forward on app1 to an echo service on db1. {n:,} client "
        f"connections opened to the forward ({r['connect_s']} s to connect, {r['open_s']} s until the echo "
        f"server behind db1 held all of them: it held {r['server_held']:,}), then left idle; then one byte "
        f"echoed on every stream ({r['echoed']:,} of {n:,} came back, in {r['echo_s']} s); then all closed. "
        "VmRSS from /proc, each sample 2 s after the step; per stream = (sample − tunnel up, no streams) / "
        f"{n:,}. Goal: ≤ {STREAM_GOAL_KIB} KiB per stream.",
        "",
        "| VmRSS | app1 (forward side) | db1 (service side) |",
        "| --- | ---: | ---: |",
        f"| tunnel up, no streams | {mib(rss['baseline'][0])} | {mib(rss['baseline'][1])} |",
        f"| {n:,} idle streams | {mib(rss['idle'][0])} | {mib(rss['idle'][1])} |",
        f"| per stream, idle | {per['idle'][0]:.1f} KiB ({verdict(per['idle'][0] <= STREAM_GOAL_KIB)}) "
        f"| {per['idle'][1]:.1f} KiB ({verdict(per['idle'][1] <= STREAM_GOAL_KIB)}) |",
        f"| after one byte echoed on each | {mib(rss['after_echo'][0])} | {mib(rss['after_echo'][1])} |",
        f"| per stream, after a byte each | {per['after_echo'][0]:.1f} KiB ({verdict(per['after_echo'][0] <= STREAM_GOAL_KIB)}) "
        f"| {per['after_echo'][1]:.1f} KiB ({verdict(per['after_echo'][1] <= STREAM_GOAL_KIB)}) |",
        f"| then {r['busy']} of them carried {r['busy_bytes'] // 2**20} MiB each way, one after the other "
        f"({r['busy_s']} s), and went idle again | {mib(rss['after_busy'][0])} | {mib(rss['after_busy'][1])} |",
        f"| per such once-busy stream, on top | {r['kib_per_busy_stream'][0]:,.0f} KiB | {r['kib_per_busy_stream'][1]:,.0f} KiB |",
        f"| all {n:,} closed again | {mib(rss['closed'][0])} | {mib(rss['closed'][1])} |",
        "",
    ]
    return out


def whole_cell(w):
    if w["whole"]:
        return f"{w['seconds']} s"
    return (f"not whole after 60 s (about {w['tunnels_up']} of {w['tunnels']} tunnels up; "
            f"{w['nodes_complete']} of {w['nodes']} nodes saw all their peers up)")


def mesh_part(results, args):
    out = [f"### A {args.nodes}-node full mesh", ""]
    start = lines(results, "mesh-start")
    if not start:
        return out + [f"Not measured: {failure(results, 'mesh') or 'no result'}", ""]
    s = start[-1]
    out += [
        f"{args.nodes} meshd on 127.61.0.1–{args.nodes}, one CA, tunnel settings ping_interval "
        f"{args.ping_interval}, otherwise the defaults (dead after 3, backoff 100 ms–2 s), no services: {s['tunnels']} tunnels. Whole = every node's "
        "`GET /v1/peers` (what `meshctl peers --json` prints) shows every peer `up`, each node polled "
        "every 0.25 s over its control socket by a thread of its own; the time is when the last node's "
        "run of all-up answers began. The clock starts just before the first meshd is started, once the poller runs. Storms: every "
        "meshd is sent the signal at once, and once all have exited all are started again at once; "
        "the clock starts at the restart.",
        "",
        "| measure | result | goal |",
        "| --- | ---: | --- |",
        f"| all {s['tunnels']} tunnels up after a cold start | {whole_cell(s)} | ≤ {MESH_GOAL_S} s, "
        f"{verdict(s['whole'] and s['seconds'] <= MESH_GOAL_S)} |",
    ]
    for idle in lines(results, "mesh-idle"):
        out += [
            f"| idle CPU per node over {idle['seconds']:g} s, median / max | {idle['cpu_pct_median']:.2f}% / "
            f"{idle['cpu_pct_max']:.2f}% | < {IDLE_CPU_GOAL_PCT}%, {verdict(idle['cpu_pct_max'] < IDLE_CPU_GOAL_PCT)} |",
            f"| VmRSS per node, median / max | {mib(idle['rss_kib_median'])} / {mib(idle['rss_kib_max'])} | |",
            f"| tunnels up before / after the idle minute; redials meanwhile | {idle['tunnels_up'][0]} / "
            f"{idle['tunnels_up'][1]}; {idle['reconnects']} | |",
        ]
        if idle.get("exited"):
            out.append(f"| meshd that exited during the idle period (pids) | {', '.join(map(str, idle['exited']))} | none |")
    for signal, how in (("TERM", "SIGTERM"), ("KILL", "SIGKILL")):
        stops, storms = lines(results, f"mesh-stop-{signal}"), lines(results, f"mesh-storm-{signal}")
        for i, (stop, storm) in enumerate(zip(stops, storms), 1):
            out.append(f"| storm {i}, {how} to all: all exited after; whole again after the restart | "
                       f"{stop['stop_s']} s; {whole_cell(storm)} | ≤ {MESH_GOAL_S} s, "
                       f"{verdict(storm['whole'] and storm['seconds'] <= MESH_GOAL_S)} |")
    out.append("")
    timelines = [("cold start", s)] + [(f"storm {i} SIG{sig}", st) for sig in ("TERM", "KILL")
                                         for i, st in enumerate(lines(results, f"mesh-storm-{sig}"), 1)]
    incomplete = [(name, st) for name, st in timelines if not st["whole"]]
    for name, st in incomplete:
        out.append(f"- {name}, not whole: what the incomplete nodes last saw (node: peer, state, last error): " + "; ".join(
            f"{node}: " + ", ".join(f"{p} {state} ({err or 'no error'})" for p, state, err in down)
            for node, down in st.get("not_up", [])))
    if incomplete:
        out.append("")
    out.append("Tunnels up over time (s: tunnels): " + "; ".join(
        f"{name}: " + ", ".join(f"{t}: {n}" for t, n in st["timeline"][-6:]) for name, st in timelines))
    out.append("")
    return out


def render(results, args):
    out = ["## Scale (`scripts/bench/scale.sh`)", "", machine(args), ""]
    if "streams" in args.parts:
        out += streams_part(results, args)
    if "mesh" in args.parts:
        out += mesh_part(results, args)
    return "\n".join(out).rstrip() + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--results", type=pathlib.Path, required=True)
    p.add_argument("--started", required=True)
    p.add_argument("--load-start", required=True)
    p.add_argument("--commit", required=True)
    p.add_argument("--streams", type=int, required=True)
    p.add_argument("--nodes", type=int, required=True)
    p.add_argument("--idle", type=int, required=True)
    p.add_argument("--parts", required=True)
    p.add_argument("--ping-interval", required=True)
    p.add_argument("--write", type=pathlib.Path)
    args = p.parse_args()
    print_section(render(args.results, args), SECTION, args.write)


if __name__ == "__main__":
    main()
