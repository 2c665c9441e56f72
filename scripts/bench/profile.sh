#!/usr/bin/env bash
# Per-message and per-connection cost of a proxy leg (issue 11, item 1): for pgbench -S through the
# tunnelmesh balancer (app meshd → db meshd) and through a stunnel4 pair, with a direct connection
# to PostgreSQL as the reference, what each proxy process spends per transaction and per new
# connection: CPU time, context switches (voluntary / involuntary), system calls by kind, heap
# allocations, and (optionally) where the CPU time goes by sampled symbol.
#
# Usage: BIN=DIR scripts/bench/profile.sh [--write] [--legs LIST] [--duration S] [--rounds N]
#                                         [--scale N] [--no-record] [--keep]
#        scripts/bench/profile.sh --report DIR [--write]
#   BIN=DIR       the directory with the meshd and meshctl to measure (required; nothing is built here)
#   --write       also replace the profile section of BENCHMARKS.md
#   --legs        comma-separated subset of direct,balancer,stunnel (default all three)
#   --duration S  seconds per pgbench run (default 12)
#   --rounds N    runs per leg, mode and pass, taken in turns across legs; tables show medians (default 3)
#   --scale N     pgbench -i scale factor (default 10)
#   --no-record   skip the `perf record` pass (the symbol buckets)
#   --keep        keep the temporary directories (logs, pgbench output, perf data) for inspection
#   --report DIR  measure nothing: render (and with --write, write) the section again from the results
#                 directory of an earlier --keep run (DIR/results)
# Environment: MESHD_LABEL, what the meshd is (e.g. the commit it was built from), shown next to its
# path and sha256 prefix (default for a BIN inside this tree: the tree's `git describe`);
# BUILD_MODE its build mode (default: guessed from BIN's last path component, release or debug).
#
# Passes, each a separate set of runs because each way of looking costs the proxies time:
#   timing     CPU (utime + stime from /proc/PID/stat) and context switches (`perf stat` software
#              event and sched:sched_switch split by prev_state) of each proxy process, and TPS
#   syscalls   `perf stat` counts of syscalls:sys_enter_* tracepoints per process (in-kernel counters,
#              no strace-style stops)
#   record     `perf record -e cpu-clock -g` per process during one -S and one -S -C run, self time by symbol,
#              collapsed into buckets (hardware events are not supported on this VM)
#   allocs     the proxies restarted with LD_PRELOAD of a malloc/calloc/realloc/memalign/free counter
#              compiled here (atomic counters in a file mapped by each process), counts before and
#              after each run
# Instructions are not counted: `perf stat -e instructions` is "<not supported>" on this VM, and
# valgrind (callgrind) was left out: it runs a process's threads one at a time under instrumentation,
# which changes the very hops and wake-ups measured here.
#
# Everything listens on 127.0.0.0/8 only (127.0.0.1, 127.0.1.1-2, 127.0.2.2); every process started here (PostgreSQL, meshd, stunnel,
# perf, pgbench) is stopped on exit; the system's PostgreSQL and stunnel services are never touched.

set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
source "$HERE/processes.sh"
source "$HERE/postgres.sh"
source "$HERE/packages.sh"
source "$HERE/mesh-setup.sh"
source "$HERE/stunnel-pair.sh"
source "$HERE/workdir.sh"

ALL_LEGS="direct,balancer,stunnel"
WRITE=0 KEEP=0 RECORD=1 LEGS=$ALL_LEGS DURATION=12 ROUNDS=3 SCALE=10 REPORT_DIR=""
while [ $# -gt 0 ]; do
    case "$1" in
        --write) WRITE=1 ;;
        --keep) KEEP=1 ;;
        --no-record) RECORD=0 ;;
        --legs) LEGS="${2:-}"; shift ;;
        --duration) DURATION="${2:-}"; shift ;;
        --rounds) ROUNDS="${2:-}"; shift ;;
        --scale) SCALE="${2:-}"; shift ;;
        --report) REPORT_DIR="${2:-}"; shift ;;
        -h|--help) sed -n '2,38p' "$0"; exit 0 ;;
        *) echo "profile.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
for n in "$DURATION" "$ROUNDS" "$SCALE"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "profile.sh: --duration/--rounds/--scale take positive whole numbers, got '$n'" >&2; exit 2; }
done
for leg in ${LEGS//,/ }; do
    [[ ",$ALL_LEGS," == *",$leg,"* ]] || { echo "profile.sh: unknown leg '$leg' in --legs (known: $ALL_LEGS)" >&2; exit 2; }
done
want() { [[ ",$LEGS," == *",$1,"* ]]; }

# render_report RESULTS : the section from a results directory (run.json in it names the run).
render_report() {
    python3 - "$1" "$HERE" "$([ $WRITE = 1 ] && echo "$ROOT/BENCHMARKS.md")" <<'PY'
import json, os, pathlib, re, statistics, struct, sys

results, here, write = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
sys.path.insert(0, here)
from markdown_section import print_section

KEYS = ["STARTED", "CPU_MODEL", "KERNEL", "POSTGRES", "OPENSSL", "PERF", "STUNNEL", "MESHD", "BUILD_MODE",
        "LOAD_START", "LOAD_END", "DURATION", "ROUNDS", "SCALE", "MODE_S", "MODE_C", "RECORD", "UNAVAILABLE"]
run_json = results / "run.json"
if os.environ.get("PROFILE_MEASURED") == "1":
    e = {k: os.environ.get(k, "") for k in KEYS}
    run_json.write_text(json.dumps(e, indent=1) + "\n")
else:
    e = json.loads(run_json.read_text())
ROLES = {"balancer": ["app", "db"], "stunnel": ["client", "server"]}
ROLE_LABEL = {"app": "app meshd (client side)", "db": "db meshd (service side)",
              "client": "stunnel client", "server": "stunnel server"}
LEG_LABEL = {"direct": "direct", "balancer": "tunnelmesh balancer", "stunnel": "stunnel4"}


def number(pattern, text):
    m = re.search(pattern, text, re.MULTILINE)
    return float(m.group(1)) if m else None


def perf_counts(path):
    """perf stat -x, output: a list of (event, count) in the order of -e (None if not counted)."""
    out = []
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        f = line.split(",")
        if len(f) < 3:
            continue
        try:
            value = float(f[0])
        except ValueError:
            value = None
        out.append((f[2], value))
    return out


def alloc_counts(path):
    if not path.exists():
        return None
    data = path.read_bytes()[:48]
    return dict(zip(["malloc", "calloc", "realloc", "aligned", "free", "bytes"], struct.unpack("<6Q", data)))


def runs(pass_, leg, mode):
    """Every good run of a pass: its transactions and, per role, what was measured."""
    out = []
    for d in sorted((results / pass_).glob(f"{leg}-{mode}-*")):
        text = (d / "pgbench.out").read_text(errors="replace")
        meta = json.loads((d / "meta.json").read_text())
        tx = number(r"^number of transactions actually processed: ([0-9]+)", text)
        run = {"tps": number(r"^tps = ([0-9.]+)", text), "tx": tx, "load": meta["load"], "roles": {}}
        if meta["rc"] != 0 or not tx:
            lines = [l for l in text.splitlines() if l.strip()]
            run["error"] = (lines or [f"pgbench exited {meta['rc']}"])[-1]
            out.append(run)
            continue
        hz = meta["clk_tck"]
        pg = [int(x) for x in (d / "postgres.ticks").read_text().split()]
        run["postgres_cpu_us"] = (pg[1] - pg[0]) / hz * 1e6 / tx if len(pg) == 2 else None
        for role in ROLES.get(leg, []):
            r = {}
            ticks = [int(x) for x in (d / f"{role}.ticks").read_text().split()] if (d / f"{role}.ticks").exists() else []
            if len(ticks) == 2:
                r["cpu_us"] = (ticks[1] - ticks[0]) / hz * 1e6 / tx
            counts = perf_counts(d / f"{role}.perf")
            if pass_ == "timing" and len(counts) >= 4:
                r["task_clock_us"] = counts[0][1] * 1e3 / tx if counts[0][1] is not None else None  # msec
                r["cs"] = counts[1][1] / tx
                r["invol"] = counts[2][1] / tx
                r["vol"] = counts[3][1] / tx
            if pass_ == "syscalls" and counts:
                extra_path = d / f"{role}.extra"
                extra = extra_path.read_text().splitlines() if extra_path.exists() else []
                plain, filtered = counts[:len(counts) - len(extra)], counts[len(counts) - len(extra):]
                r["syscalls"] = {name.split("sys_enter_")[-1] if name.startswith("syscalls:") else "total": v / tx
                                 for name, v in plain if v is not None}
                r["wakeups"] = {name: v / tx for name, (_, v) in zip(extra, filtered) if v is not None}
            if pass_ == "allocs":
                a, b = alloc_counts(d / f"{role}.alloc-before"), alloc_counts(d / f"{role}.alloc-after")
                if a and b:
                    diff = {k: (b[k] - a[k]) / tx for k in a}
                    diff["allocs"] = diff["malloc"] + diff["calloc"] + diff["realloc"] + diff["aligned"]
                    r["alloc"] = diff
            if pass_ == "record":
                rep = d / f"{role}.report"
                if rep.exists():
                    r["buckets"] = buckets(rep.read_text(errors="replace"))
            run["roles"][role] = r
        out.append(run)
    return out


RETAIN_MALLOC = re.compile(
    r"^_?swift_(retain|release|bridgeObjectRetain|bridgeObjectRelease|unknownObjectRetain|unknownObjectRelease"
    r"|nonatomic_\w+|allocObject|deallocObject|deallocClassInstance|deallocUninitializedObject|slowAlloc"
    r"|slowDealloc|tryRetain|isUniquelyReferenced\w*|release_dealloc)(_n)?$"
    r"|^(__GI_)?(__libc_)?(malloc|free|calloc|realloc|cfree|posix_memalign|aligned_alloc|memalign)(@plt)?$"
    r"|^_int_\w+$|^(__)?malloc_usable_size$|^malloc_consolidate$|^tcache_\w+$|^unlink_chunk\b|^_mid_memalign$|^sysmalloc$|^arena_get2\b")


def bucket_of(dso, sym):
    """The bucket of one sampled symbol. Swift symbols stay mangled in perf's output, and a mangled
    name carries its module's name (8NIOHTTP2, 7NIOCore, 10MeshTunnel...), so specialisations land
    with the module that asked for them, checked in this order."""
    if dso == "[kernel]":
        return "kernel (syscalls, TCP, scheduler)"
    if re.search(r"libssl|libcrypto", dso):
        return "TLS / crypto (OpenSSL)"
    if RETAIN_MALLOC.search(sym):
        return "retain / release / malloc / free"
    if re.search(r"NIOHTTP2|NIOHPACK", sym):
        return "NIOHTTP2 / HPACK"
    if re.search(r"NIOCore|NIOPosix|NIOConcurrencyHelpers|NIOEmbedded|NIOTLS|NIOFoundationCompat|\$s3NIO", sym):
        return "NIO core and posix (pipeline, event loop, buffers)"
    if re.search(r"Mesh(Tunnel|TLS|Balancer|Config|Control|Systemd)|meshd|COpenSSL", sym):
        return "meshd's own modules"
    if re.search(r"libswift|libFoundation|libdispatch|libBlocksRuntime", dso) or re.match(r"^_?swift_|^\$s[sS]", sym):
        return "Swift runtime and stdlib (other)"
    if re.search(r"libc[.-]|ld-linux|libpthread", dso):
        return "libc (other)"
    return "other"


BUCKETS = ["NIOHTTP2 / HPACK", "NIO core and posix (pipeline, event loop, buffers)", "meshd's own modules",
           "TLS / crypto (OpenSSL)", "kernel (syscalls, TCP, scheduler)", "retain / release / malloc / free",
           "Swift runtime and stdlib (other)", "libc (other)", "other"]


def buckets(report):
    total, out = 0.0, {}
    for line in report.splitlines():
        m = re.match(r"\s+([0-9.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)$", line)
        if not m:
            continue
        pct, dso, kind, sym = float(m.group(1)), m.group(2), m.group(3), m.group(4).strip()
        if kind == "k":
            dso = "[kernel]"
        b = bucket_of(dso, re.sub(r"@.*$", "", re.sub(r"\s+\(.*\)$", "", sym)))
        out[b] = out.get(b, 0) + pct
        total += pct
    return {k: v * 100 / total for k, v in out.items()} if total else {}


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def role_median(rs, role, key, sub=None):
    vals = []
    for r in rs:
        if "error" in r:
            continue
        v = r["roles"].get(role, {}).get(key)
        if sub is not None:
            v = v.get(sub) if isinstance(v, dict) else None
        vals.append(v)
    return med(vals)


def fmt(v, digits=1):
    if v is None:
        return "—"
    if abs(v) < 0.5 * 10 ** -digits:
        return "0"
    return f"{v:,.{digits}f}"


def sum_or_none(values):
    values = list(values)
    return None if any(v is None for v in values) else sum(values)


def minus(c, s):
    return None if c is None or s is None else c - s


legs = [p.name.split("-")[0] for p in (results / "timing").iterdir()] if (results / "timing").exists() else []
legs = [l for l in ["direct", "balancer", "stunnel"] if l in legs]
R = {(p, l, m): runs(p, l, m) for p in ["timing", "syscalls", "allocs", "record"] for l in legs for m in "SC"}


def tps(leg, mode):
    return med([r["tps"] for r in R[("timing", leg, mode)] if "error" not in r])


rows = []   # (leg, role) pairs
for leg in legs:
    for role in ROLES.get(leg, []):
        rows.append((leg, role))


def value(leg, role, mode, what):
    if what == "cpu":
        return role_median(R[("timing", leg, mode)], role, "cpu_us")
    if what in ("cs", "vol", "invol"):
        return role_median(R[("timing", leg, mode)], role, what)
    if what == "syscalls":
        return role_median(R[("syscalls", leg, mode)], role, "syscalls", "total")
    if what == "allocs":
        return role_median(R[("allocs", leg, mode)], role, "alloc", "allocs")
    if what == "bytes":
        return role_median(R[("allocs", leg, mode)], role, "alloc", "bytes")
    if what == "frees":
        return role_median(R[("allocs", leg, mode)], role, "alloc", "free")


def cswitch(leg, role, mode, per_conn=False):
    vol, inv = value(leg, role, mode, "vol"), value(leg, role, mode, "invol")
    if per_conn:
        vol, inv = minus(vol, value(leg, role, "S", "vol")), minus(inv, value(leg, role, "S", "invol"))
    if vol is None or inv is None:
        return "—"
    return f"{vol + inv:,.1f} ({vol:,.1f} + {inv:,.1f})"


def conn(leg, role, what, digits=0):
    return fmt(minus(value(leg, role, "C", what), value(leg, role, "S", what)), digits)


out = [
    "## Per-message and per-connection cost (`scripts/bench/profile.sh`)",
    "",
    f"Measured {e['STARTED']} on {os.cpu_count()} cores, {e['CPU_MODEL']}, {e['KERNEL']}, {e['POSTGRES']}, "
    f"{e['OPENSSL']}, {e['PERF']}; meshd: {e['MESHD'] or 'not run'}, {e['BUILD_MODE']}. "
    f"Load average before measuring: {e['LOAD_START']}; after: {e['LOAD_END']}. This machine is shared with "
    "other builds: compare legs within this run (they take turns run by run), not across runs; counts "
    "(context switches, syscalls, allocations) move far less with load than CPU time does.",
    "",
    f"One PostgreSQL primary (pgbench -i -s {e['SCALE']}), pgbench on the same machine, loopback only, as in "
    f"`balancer.sh`. A *transaction* is one `pgbench -n {e['MODE_S']} -T {e['DURATION']}` transaction "
    "(kept connections): one Query message in and one response (RowDescription, DataRow, CommandComplete, "
    "ReadyForQuery) out through each proxy process, i.e. one message each way. A *connection* is what a "
    f"`pgbench -n {e['MODE_C']} -T {e['DURATION']}` transaction costs (connect, SSLRequest answered `N`, startup, "
    "one SELECT, Terminate, close) minus the `-S` transaction's share. Every figure is the median over "
    f"{e['ROUNDS']} run(s) per leg, mode and pass, per proxy process. Passes are separate runs: "
    "*timing* (CPU = utime + stime from /proc/PID/stat; context switches from `perf stat` "
    "(`context-switches`, split by `sched:sched_switch` prev_state into voluntary = blocked and "
    "involuntary = preempted)), *syscalls* (`perf stat` on the `syscalls:sys_enter_*` tracepoints, "
    "in-kernel counters, all threads of the process; not strace), *allocs* (the proxies restarted with "
    "an LD_PRELOAD counter of malloc, calloc, realloc and the aligned allocators, read before and after "
    "each run) and *record* (`perf record -e cpu-clock -F 999 -g`, one `-S` run and one `-S -C` run). Instructions are not "
    "counted: hardware events are `<not supported>` on this VM.",
    "",
    "| leg | -S TPS | -S -C TPS | process | CPU µs/tx | ctx switches/tx (vol + invol) | syscalls/tx | allocs/tx "
    "| CPU µs/conn | ctx switches/conn (vol + invol) | syscalls/conn | allocs/conn |",
    "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
]
for leg in legs:
    if leg == "direct":
        pg_s = med([r.get("postgres_cpu_us") for r in R[("timing", leg, "S")] if "error" not in r])
        pg_c = med([r.get("postgres_cpu_us") for r in R[("timing", leg, "C")] if "error" not in r])
        out.append(f"| direct | {fmt(tps(leg, 'S'), 0)} | {fmt(tps(leg, 'C'), 0)} | (PostgreSQL, for scale) | "
                   f"{fmt(pg_s)} | — | — | — | {fmt(minus(pg_c, pg_s), 0)} | — | — | — |")
        continue
    for i, role in enumerate(ROLES[leg]):
        first = i == 0
        out.append("| " + " | ".join([
            LEG_LABEL[leg] if first else "", fmt(tps(leg, "S"), 0) if first else "", fmt(tps(leg, "C"), 0) if first else "",
            ROLE_LABEL[role], fmt(value(leg, role, "S", "cpu")), cswitch(leg, role, "S"),
            fmt(value(leg, role, "S", "syscalls")), fmt(value(leg, role, "S", "allocs")),
            conn(leg, role, "cpu"), cswitch(leg, role, "C", per_conn=True),
            conn(leg, role, "syscalls"), conn(leg, role, "allocs")]) + " |")
    both = lambda mode, what: sum_or_none(value(leg, role, mode, what) for role in ROLES[leg])
    both_cs = lambda mode: sum_or_none(value(leg, role, mode, k) for role in ROLES[leg] for k in ("vol", "invol"))
    out.append("| " + " | ".join([
        "", "", "", "**both**", fmt(both("S", "cpu")), fmt(both_cs("S")), fmt(both("S", "syscalls")), fmt(both("S", "allocs")),
        fmt(minus(both("C", "cpu"), both("S", "cpu")), 0), fmt(minus(both_cs("C"), both_cs("S"))),
        fmt(minus(both("C", "syscalls"), both("S", "syscalls")), 0), fmt(minus(both("C", "allocs"), both("S", "allocs")), 0)]) + " |")
out.append("")

# syscalls by kind: the kinds that matter per message (>= 0.05 per -S transaction) or per connection
# (>= 1 per connection) in some process; the rest are summed in "other".
def sc(leg, role, k, per):
    s = role_median(R[("syscalls", leg, "S")], role, "syscalls", k)
    return s if per == "tx" else minus(role_median(R[("syscalls", leg, "C")], role, "syscalls", k), s)


kinds = set()
for leg, role in rows:
    for mode in "SC":
        for r in R[("syscalls", leg, mode)]:
            kinds |= set((r.get("roles", {}).get(role, {}).get("syscalls") or {}).keys())
kinds.discard("total")
weight = {k: max([(sc(l, r, k, "tx") or 0) * 20 for l, r in rows] + [sc(l, r, k, "conn") or 0 for l, r in rows]) for k in kinds}
shown = [k for k in sorted(kinds, key=lambda k: -weight[k]) if max((sc(l, r, k, "tx") or 0) for l, r in rows) >= 0.05
         or max((sc(l, r, k, "conn") or 0) for l, r in rows) >= 3]
if rows and shown:
    out += ["System calls by kind per `-S` transaction (*tx*) and per new connection (*conn*); kinds below "
            "0.05 per transaction and 3 per connection in every process are summed in *other*:", "",
            "| process | per | " + " | ".join(f"`{k}`" for k in shown) + " | other | total |",
            "| --- | --- | " + " | ".join("---:" for _ in shown) + " | ---: | ---: |"]
    for leg, role in rows:
        for per in ("tx", "conn"):
            total = sc(leg, role, "total", per)
            vals = [sc(leg, role, k, per) for k in shown]
            other = None if total is None else total - sum(v or 0 for v in vals)
            digits = 1 if per == "tx" else 0
            out.append(f"| {LEG_LABEL[leg]}: {ROLE_LABEL[role]} | {per} | " + " | ".join(fmt(v, digits) for v in vals)
                       + f" | {fmt(other, digits)} | {fmt(total, digits)} |")
    out.append("")

# thread hops
hop_rows = []
for leg, role in rows:
    for per in ("tx", "conn"):
        vals = []
        for k in ("eventfd write", "eventfd read", "timerfd read"):
            sv = role_median(R[("syscalls", leg, "S")], role, "wakeups", k)
            vals.append(sv if per == "tx" else minus(role_median(R[("syscalls", leg, "C")], role, "wakeups", k), sv))
        if any(v is not None for v in vals):
            hop_rows.append(f"| {LEG_LABEL[leg]}: {ROLE_LABEL[role]} | {per} | " + " | ".join(fmt(v, 2 if per == "tx" else 1) for v in vals) + " |")
if hop_rows:
    out += ["Of those, event-loop wake-ups (the `write`s and `read`s above that went to the process's eventfds, "
            "and reads of its timerfds, counted with tracepoint filters on the fd numbers): a NIO event loop is "
            "woken through its eventfd when another thread hands it work, so eventfd writes count thread hops.", "",
            "| process | per | eventfd writes | eventfd reads | timerfd reads |", "| --- | --- | ---: | ---: | ---: |"]
    out += hop_rows + [""]

# symbol buckets, a table per mode recorded
MODE_TEXT = {"S": "one `-S` run", "C": "one `-S -C` run (a new connection per transaction)"}
if e.get("RECORD") == "1" and rows:
    for mode in "SC":
        have = [(leg, role) for leg, role in rows if any(r.get("roles", {}).get(role, {}).get("buckets") for r in R[("record", leg, mode)])]
        if not have:
            continue
        def first_buckets(leg, role):
            for r in R[("record", leg, mode)]:
                if r.get("roles", {}).get(role, {}).get("buckets"):
                    return r["roles"][role]["buckets"]
            return {}
        used = [b for b in BUCKETS if any(first_buckets(leg, role).get(b, 0) >= 0.5 for leg, role in have)]
        out += [f"Where each process's CPU time goes during {MODE_TEXT[mode]} (`perf record -e cpu-clock`, self time "
                "per symbol, % of the process's samples, summed into buckets by shared object and symbol name):", "",
                "| process | " + " | ".join(used) + " |",
                "| --- | " + " | ".join("---:" for _ in used) + " |"]
        for leg, role in have:
            b = first_buckets(leg, role)
            out.append(f"| {LEG_LABEL[leg]}: {ROLE_LABEL[role]} | " + " | ".join(f"{b.get(k, 0):.0f}%" for k in used) + " |")
        out.append("")

# details
for leg in legs:
    told = []
    if leg == "balancer":
        told.append(f"meshd {e['MESHD']}, app 127.0.1.1 → db 127.0.1.2, balancer pg rw listener")
    if leg == "stunnel" and e.get("STUNNEL"):
        told.append(e["STUNNEL"])
    for mode, name in (("S", "-S"), ("C", "-S -C")):
        t = R[("timing", leg, mode)]
        if t:
            told.append(f"{name} TPS per timing run: " + ", ".join(fmt(r["tps"], 0) if "error" not in r else "failed" for r in t)
                        + " (1-min load " + ", ".join(r["load"].split()[0] for r in t) + ")")
        for role in ROLES.get(leg, []):
            cpu = [r["roles"].get(role, {}).get("cpu_us") for r in t if "error" not in r]
            if cpu:
                told.append(f"{role} CPU µs/tx {name} per run: " + ", ".join(fmt(c) for c in cpu))
            al = [r["roles"].get(role, {}).get("alloc") for r in R[("allocs", leg, mode)] if "error" not in r]
            al = [a for a in al if a]
            if al:
                told.append(f"{role} {name} per tx: allocs " + ", ".join(fmt(a["allocs"]) for a in al)
                            + f"; frees {fmt(med([a['free'] for a in al]))}, bytes allocated {fmt(med([a['bytes'] for a in al]), 0)} (medians)")
        bad = [r["error"] for p in ("timing", "syscalls", "allocs", "record") for r in R[(p, leg, mode)] if "error" in r]
        if bad:
            told.append(f"{name}: {len(bad)} run(s) failed, first: {bad[0]}")
    if told:
        out.append(f"- {LEG_LABEL[leg]}: " + "; ".join(told))
for line in filter(None, e.get("UNAVAILABLE", "").splitlines()):
    out.append(f"- not measured: {line}")
print_section("\n".join(out).rstrip() + "\n", "profile", pathlib.Path(write) if write else None)
PY
}
if [ -n "$REPORT_DIR" ]; then
    [ -f "$REPORT_DIR/results/run.json" ] || { echo "profile.sh: $REPORT_DIR/results/run.json not found (a --keep run's directory?)" >&2; exit 2; }
    render_report "$REPORT_DIR/results"
    exit $?
fi

[ -n "${BIN:-}" ] || { echo "profile.sh: set BIN to the directory with meshd and meshctl (see --help)" >&2; exit 2; }
case "$BIN" in /*) ;; *) BIN="$PWD/$BIN" ;; esac
BIN=${BIN%/}
if want balancer; then
    for n in meshd meshctl; do
        [ -x "$BIN/$n" ] || { echo "profile.sh: $BIN/$n is missing or not executable" >&2; exit 2; }
    done
fi
if [ -z "${BUILD_MODE:-}" ]; then
    case "$BIN" in
        */release) BUILD_MODE="release build" ;;
        */debug) BUILD_MODE="DEBUG build: not comparable" ;;
        *) BUILD_MODE="build mode not given (set BUILD_MODE)" ;;
    esac
fi
if [ -x "$BIN/meshd" ]; then
    # Named by the BIN it ran; a meshd built from this tree also gets the tree's `git describe`.
    if [ -z "${MESHD_LABEL:-}" ] && [[ "$BIN" == "$ROOT"/* ]]; then
        MESHD_LABEL="tree $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
    fi
    MESHD_DESC="\`$BIN/meshd\` (${MESHD_LABEL:+$MESHD_LABEL, }sha256 $(sha256sum "$BIN/meshd" | cut -c1-12))"
fi

# The two pgbench workloads of balancer.sh: kept connections, and a new connection per transaction.
declare -A MODE_ARGS=([S]="-S -c 8 -j 2" [C]="-S -C -c 4")
MODES=(S C)
CLK_TCK=$(getconf CLK_TCK)

make_workdir profile

# --- the allocation counter -----------------------------------------------------------------------

# An LD_PRELOAD library that counts heap calls with relaxed atomics into a page of the file
# $ALLOCCOUNT_DIR/<pid>, mapped shared, so that the script reads the counts whenever it likes
# without signalling the process. It forwards to glibc's __libc_* entry points (no dlsym).
build_alloc_counter() {
    cat >"$T/alloccount.c" <<'C'
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

/* malloc, calloc, realloc, aligned (posix_memalign, aligned_alloc, memalign, valloc, pvalloc),
   free of a non-null pointer, bytes requested by the allocating calls. */
enum { MALLOC, CALLOC, REALLOC, ALIGNED, FREE, BYTES, NCOUNTS };
static uint64_t early[NCOUNTS];
static uint64_t *counts = early;

#define COUNT(i, n) __atomic_fetch_add(&counts[i], (n), __ATOMIC_RELAXED)

__attribute__((constructor)) static void alloccount_init(void) {
    const char *dir = getenv("ALLOCCOUNT_DIR");
    char path[4096];
    if (!dir || snprintf(path, sizeof path, "%s/%d", dir, (int)getpid()) >= (int)sizeof path) return;
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return;
    if (ftruncate(fd, 4096) == 0) {
        void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (page != MAP_FAILED) {
            uint64_t *mapped = page;
            for (int i = 0; i < NCOUNTS; i++) mapped[i] = early[i];
            counts = mapped;
        }
    }
    close(fd);
}

void *malloc(size_t n) { COUNT(MALLOC, 1); COUNT(BYTES, n); return __libc_malloc(n); }
void *calloc(size_t m, size_t n) { COUNT(CALLOC, 1); COUNT(BYTES, m * n); return __libc_calloc(m, n); }
void *realloc(void *p, size_t n) { COUNT(REALLOC, 1); COUNT(BYTES, n); return __libc_realloc(p, n); }
void free(void *p) { if (p) COUNT(FREE, 1); __libc_free(p); }
void *memalign(size_t a, size_t n) { COUNT(ALIGNED, 1); COUNT(BYTES, n); return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { return memalign(a, n); }
void *valloc(size_t n) { return memalign(sysconf(_SC_PAGESIZE), n); }
void *pvalloc(size_t n) {
    size_t page = sysconf(_SC_PAGESIZE);
    return memalign(page, (n + page - 1) / page * page);
}
int posix_memalign(void **out, size_t a, size_t n) {
    if (a < sizeof(void *) || (a & (a - 1))) return EINVAL;
    void *p = memalign(a, n);
    if (!p && n) return ENOMEM;
    *out = p;
    return 0;
}
C
    gcc -O2 -shared -fPIC -o "$T/alloccount.so" "$T/alloccount.c" >"$T/alloccount.log" 2>&1 \
        || { log "compiling the allocation counter failed: $(head -3 "$T/alloccount.log")"; return 1; }
    mkdir -p "$T/alloc"
    # Check it on a process that allocates a known amount: python's startup is enough to see counts.
    LD_PRELOAD="$T/alloccount.so" ALLOCCOUNT_DIR="$T/alloc" timeout 10 sh -c 'exit 0'
    local f
    f=$(ls "$T/alloc" | head -1)
    [ -n "$f" ] || { log "the allocation counter wrote no counts"; return 1; }
    rm -f "$T/alloc"/*
}

# --- the proxies ----------------------------------------------------------------------------------

# child_of PID : the pid of PID's (timeout's) one child, waiting up to 5 s for it to appear.
child_of() {
    local i c
    for i in $(seq 50); do
        c=$(pgrep -P "$1" | head -1)
        [ -n "$c" ] && { echo "$c"; return 0; }
        sleep 0.1
    done
    return 1
}

# preload_env : the `env` arguments that load the counter when PRELOAD=1, else just `env`.
preload_env() {
    if [ "${PRELOAD:-0}" = 1 ]; then echo env "LD_PRELOAD=$T/alloccount.so" "ALLOCCOUNT_DIR=$T/alloc"; else echo env; fi
}

# start_mesh : app (the balancer's rw listener) and db (serves "postgres" = our PostgreSQL, probes it
# as meshmon), each a meshd, one tunnel between them, as balancer.sh has them. Leaves APP_PID and
# DB_PID (the meshd processes), MESH_BG (their timeout wrappers) and LEG_PORT[balancer].
start_mesh() {
    local m="$T/mesh-$1" papp pdb rw
    mkdir -p "$m/run"
    make_mesh_pki "$BIN/meshctl" "$m/pki" bench app db || { MESH_ERROR=$MESH_PKI_ERROR; return 1; }
    papp=$(free_port 127.0.1.1); pdb=$(free_port 127.0.1.2); rw=$(free_port 127.0.0.1)
    cat >"$m/mesh.json" <<EOF
{ "mesh": "bench",
  "tls": { "ca": "pki/ca.pem", "cert": "pki/{node}.pem", "key": "pki/{node}.key", "crl": "pki/crl.pem" },
  "nodes": { "app": { "address": "127.0.1.1:$papp", "control": "run/app.sock" },
             "db":  { "address": "127.0.1.2:$pdb", "control": "run/db.sock" } },
  "services": { "postgres": { "on": { "db": "127.0.0.1:$PGPORT" }, "allow": ["app"],
                              "postgres": { "monitor_user": "meshmon", "database": "postgres" } } },
  "balancers": { "pg": { "service": "postgres", "on": { "app": { "rw": "127.0.0.1:$rw" } } } } }
EOF
    # shellcheck disable=SC2046 # preload_env prints several words
    start_bg "$m/db.log" $(preload_env) "$BIN/meshd" --config "$m/mesh.json" --node db; local dbg=$BG_PID
    # shellcheck disable=SC2046
    start_bg "$m/app.log" $(preload_env) "$BIN/meshd" --config "$m/mesh.json" --node app; local appg=$BG_PID
    MESH_BG="$appg $dbg"
    APP_PID=$(child_of "$appg") && DB_PID=$(child_of "$dbg") || { MESH_ERROR="meshd did not start"; return 1; }
    LEG_PORT[balancer]=$rw
    if ! wait_sql "$rw" 30 "$APP_PID" "$DB_PID"; then
        MESH_ERROR="no SQL through the balancer at 127.0.0.1:$rw within 30 s: ${SQL_ERROR:-no answer}; app log: $(grep -v '^\s*$' "$m/app.log" | tail -n 1 | cut -c1-300)"
        return 1
    fi
    ROLE_PIDS[balancer]="app:$APP_PID db:$DB_PID"
    log "balancer ($1): app meshd $APP_PID, db meshd $DB_PID, rw listener 127.0.0.1:$rw"
}

start_stunnel() {
    local d="$T/stunnel-$1" port
    port=$(free_port 127.0.0.1)
    if [ "${PRELOAD:-0}" = 1 ]; then
        LD_PRELOAD="$T/alloccount.so" ALLOCCOUNT_DIR="$T/alloc" \
            start_stunnel_pair "$d" "$port" 127.0.2.2 "$(free_port 127.0.2.2)" "127.0.0.1:$PGPORT"
    else
        start_stunnel_pair "$d" "$port" 127.0.2.2 "$(free_port 127.0.2.2)" "127.0.0.1:$PGPORT"
    fi || { STUNNEL_ERROR="certificate generation failed: $(tail -1 "$d/pki.log")"; return 1; }
    STUNNEL_BG="$STUNNEL_CLIENT_PID $STUNNEL_SERVER_PID"
    local c s
    c=$(child_of "$STUNNEL_CLIENT_PID") && s=$(child_of "$STUNNEL_SERVER_PID") || { STUNNEL_ERROR="stunnel did not start"; return 1; }
    LEG_PORT[stunnel]=$port
    wait_sql "$port" 10 "$c" "$s" || { STUNNEL_ERROR="no SQL through stunnel at 127.0.0.1:$port: ${SQL_ERROR:-no answer}"; return 1; }
    ROLE_PIDS[stunnel]="client:$c server:$s"
    STUNNEL_DESCRIPTION=$(stunnel_description "$d")
    log "stunnel ($1): client $c, server $s, listener 127.0.0.1:$port"
}

# --- measuring ------------------------------------------------------------------------------------

declare -A LEG_PORT ROLE_PIDS
READY=()

# proc_ticks PID : utime + stime of PID (all its threads, live and exited), in clock ticks.
proc_ticks() {
    local line
    line=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    line=${line##*) }
    awk '{print $12 + $13}' <<<"$line"
}

# The syscalls counted one by one in the syscalls pass; raw_syscalls:sys_enter counts them all.
SYSCALLS="read write readv writev recvfrom sendto recvmsg sendmsg epoll_wait epoll_pwait epoll_ctl poll ppoll select pselect6 futex timerfd_settime eventfd2 accept accept4 connect socket close shutdown setsockopt getsockopt getsockname getpeername fcntl ioctl mmap munmap mprotect madvise brk clone clone3 openat newfstatat getrandom sched_yield nanosleep clock_nanosleep rt_sigprocmask"

# perf_events PASS : the `perf stat -e` arguments of a pass.
perf_events() {
    local s args=()
    case "$1" in
        timing)
            # Involuntary: preempted (prev_state is TASK_REPORT_MAX, 256) or still runnable (0);
            # voluntary: blocked. The kernel counts nvcsw/nivcsw the same way.
            args=(-e task-clock -e context-switches
                  -e sched:sched_switch --filter 'prev_state == 0 || prev_state == 256'
                  -e sched:sched_switch --filter 'prev_state != 0 && prev_state != 256') ;;
        syscalls)
            args=(-e raw_syscalls:sys_enter)
            for s in $SYSCALLS; do
                [ -d "/sys/kernel/tracing/events/syscalls/sys_enter_$s" ] && args+=(-e "syscalls:sys_enter_$s")
            done ;;
    esac
    printf '%s\n' "${args[@]}"
}

# or_filter CONDITION... : the conditions joined with ||, for a perf tracepoint --filter.
or_filter() { local IFS='|'; local f="$*"; echo "${f//|/ || }"; }

# wakeup_events PID NAMES : `perf stat` arguments (in NAMES.args) counting writes to and reads from
# the process's eventfds and reads from its timerfds, named in NAMES in the same order. A NIO event
# loop is woken through its eventfd when another thread hands it work, so eventfd writes count thread
# hops. Returns 1 when the process has neither.
wakeup_events() {
    local fd link efd=() tfd=() f
    for fd in /proc/"$1"/fd/*; do
        link=$(readlink "$fd" 2>/dev/null) || continue
        case "$link" in
            "anon_inode:[eventfd]") efd+=("fd == ${fd##*/}") ;;
            "anon_inode:[timerfd]") tfd+=("fd == ${fd##*/}") ;;
        esac
    done
    : >"$2"; : >"$2.args"
    if [ ${#efd[@]} -gt 0 ]; then
        f=$(or_filter "${efd[@]}")
        printf '%s\n' "eventfd write" "eventfd read" >>"$2"
        printf '%s\n' -e syscalls:sys_enter_write --filter "$f" -e syscalls:sys_enter_read --filter "$f" >>"$2.args"
    fi
    if [ ${#tfd[@]} -gt 0 ]; then
        f=$(or_filter "${tfd[@]}")
        printf '%s\n' "timerfd read" >>"$2"
        printf '%s\n' -e syscalls:sys_enter_read --filter "$f" >>"$2.args"
    fi
    [ -s "$2" ]
}

# measure PASS LEG MODE ROUND : one pgbench run through the leg with the pass's instruments on each
# of the leg's proxy processes; everything kept in $RESULTS/PASS/LEG-MODE-ROUND/.
measure() {
    local pass="$1" leg="$2" mode="$3" round="$4" dir="$RESULTS/$1/$2-$3-$4" port rc
    local role pid perf_pids=() events=() entry
    mkdir -p "$dir"
    if [ "$leg" = direct ]; then port=$PGPORT; else port=${LEG_PORT[$leg]}; fi
    mapfile -t events < <(perf_events "$pass")
    for entry in ${ROLE_PIDS[$leg]:-}; do
        role=${entry%%:*} pid=${entry#*:}
        echo "$pid" >"$dir/$role.pid"
        case "$pass" in
            timing|syscalls)
                local extra=()
                [ "$pass" = syscalls ] && wakeup_events "$pid" "$dir/$role.extra" && mapfile -t extra <"$dir/$role.extra.args"
                start_bg "$dir/$role.perf.log" perf stat -x, -o "$dir/$role.perf" -p "$pid" "${events[@]}" "${extra[@]}"
                perf_pids+=("$BG_PID") ;;
            record)
                start_bg "$dir/$role.perf.log" perf record -q -e cpu-clock -F 999 -g -p "$pid" -o "$dir/$role.data"
                perf_pids+=("$BG_PID") ;;
        esac
    done
    [ ${#perf_pids[@]} -gt 0 ] && sleep 1     # perf attaches
    for entry in ${ROLE_PIDS[$leg]:-}; do
        role=${entry%%:*} pid=${entry#*:}
        proc_ticks "$pid" >"$dir/$role.ticks"
        [ "$pass" = allocs ] && cp "$T/alloc/$pid" "$dir/$role.alloc-before" 2>/dev/null
    done
    cpu_ticks "$PG_PID" >"$dir/postgres.ticks"
    # shellcheck disable=SC2086 # MODE_ARGS holds several arguments
    run_bounded $((DURATION + 60)) "$dir/pgbench.out" \
        "$PGBIN/pgbench" -n ${MODE_ARGS[$mode]} -T "$DURATION" -h 127.0.0.1 -p "$port" -U postgres bench
    rc=$?
    for entry in ${ROLE_PIDS[$leg]:-}; do
        role=${entry%%:*} pid=${entry#*:}
        proc_ticks "$pid" >>"$dir/$role.ticks"
        [ "$pass" = allocs ] && cp "$T/alloc/$pid" "$dir/$role.alloc-after" 2>/dev/null
    done
    cpu_ticks "$PG_PID" >>"$dir/postgres.ticks"
    for pid in "${perf_pids[@]}"; do kill -INT "$pid" 2>/dev/null; done
    for pid in "${perf_pids[@]}"; do wait "$pid" 2>/dev/null; done
    printf '{"rc": %d, "load": "%s", "clk_tck": %d}\n' "$rc" "$(cut -d' ' -f1-3 /proc/loadavg)" "$CLK_TCK" >"$dir/meta.json"
    log "$pass $leg pgbench ${MODE_ARGS[$mode]} round $round: $(grep -m1 '^tps' "$dir/pgbench.out" || echo "exit $rc: $(tail -1 "$dir/pgbench.out")")"
}

# Legs take turns run by run, so that a change in background load falls on all of them alike.
run_pass() {
    local pass="$1" rounds="$2" modes="$3" round mode leg
    for round in $(seq "$rounds"); do
        for mode in $modes; do
            for leg in "${READY[@]}"; do
                [ "$pass" != timing ] && [ "$leg" = direct ] && continue
                measure "$pass" "$leg" "$mode" "$round"
            done
        done
    done
}

# --- run ------------------------------------------------------------------------------------------

install_missing_packages openssl postgresql stunnel4 linux-perf gcc libc6-dev
for tool in perf gcc; do
    command -v "$tool" >/dev/null || { log "$tool is not installed (see $T/apt.log)"; exit 1; }
done
build_alloc_counter || exit 1
start_postgres profile || exit 1
log "results in $T"

mkdir -p "$RESULTS"
UNAVAILABLE=()
want direct && READY+=(direct)
start_legs() {
    local which="$1"
    if want balancer; then
        MESH_ERROR=""
        if start_mesh "$which"; then READY+=(balancer); else log "balancer: $MESH_ERROR"; UNAVAILABLE+=("balancer: $MESH_ERROR"); fi
    fi
    if want stunnel; then
        if ! command -v stunnel4 >/dev/null; then
            UNAVAILABLE+=("stunnel: stunnel4 is not installed")
        elif start_stunnel "$which"; then READY+=(stunnel); else log "stunnel: $STUNNEL_ERROR"; UNAVAILABLE+=("stunnel: $STUNNEL_ERROR"); fi
    fi
}
start_legs plain

# A short unmeasured run warms PostgreSQL's buffers and the page cache for every leg alike.
run_bounded 60 "$T/warm-up.log" "$PGBIN/pgbench" -n -S -c 8 -j 2 -T 5 -h 127.0.0.1 -p "$PGPORT" -U postgres bench

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')
run_pass timing "$ROUNDS" "S C"
run_pass syscalls "$ROUNDS" "S C"
[ $RECORD = 1 ] && run_pass record 1 "S C"

# The allocation pass needs the proxies restarted with the counter loaded.
if [ ${#READY[@]} -gt 0 ]; then
    [ -n "${MESH_BG:-}" ] && { stop_pids $MESH_BG; MESH_BG=""; }
    [ -n "${STUNNEL_BG:-}" ] && { stop_pids $STUNNEL_BG; STUNNEL_BG=""; }
    READY=()
    want direct && READY+=(direct)
    ROLE_PIDS=()
    PRELOAD=1 start_legs counted
    # the counter's own readiness: each proxy must have a counts file
    for leg in "${READY[@]}"; do
        for entry in ${ROLE_PIDS[$leg]:-}; do
            [ -f "$T/alloc/${entry#*:}" ] || log "$leg ${entry%%:*}: no allocation counts file (LD_PRELOAD not effective?)"
        done
    done
    run_pass allocs "$ROUNDS" "S C"
fi
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# symbol buckets from the perf record pass
for data in "$RESULTS"/record/*/*.data; do
    [ -f "$data" ] || continue
    timeout 300 perf report -i "$data" --stdio --no-children --sort dso,sym -g none --percent-limit 0 \
        >"${data%.data}.report" 2>"${data%.data}.report.log"
done

PROFILE_MEASURED=1 CPU_MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') \
KERNEL="Linux $(uname -r)" POSTGRES="PostgreSQL $(pg_version)" OPENSSL=$(openssl version | cut -d' ' -f1-2) \
STUNNEL="${STUNNEL_DESCRIPTION:-}" MESHD="${MESHD_DESC:-}" BUILD_MODE="$BUILD_MODE" \
LOAD_START=$LOAD_START LOAD_END=$LOAD_END STARTED=$STARTED DURATION=$DURATION ROUNDS=$ROUNDS SCALE=$SCALE \
MODE_S=${MODE_ARGS[S]} MODE_C=${MODE_ARGS[C]} RECORD=$RECORD PERF="$(perf --version)" \
UNAVAILABLE="$(printf '%s\n' "${UNAVAILABLE[@]}")" \
render_report "$RESULTS"
