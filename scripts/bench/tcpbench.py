#!/usr/bin/env python3
"""Measuring client and server for scripts/bench/tunnel.sh (stdlib only).

The same server sits behind every path (direct, tunnelmesh, stunnel, ssh -L), so
the paths differ only in what lies between client and server.

Wire protocol (the first byte of a connection selects the mode):
  'T' + u64be N : throughput. Server answers 'R' once the header arrived (so the
                  clock starts after any tunnel handshake), sinks exactly N bytes,
                  then answers u64be total so the clock covers delivery, not just
                  the client's send buffer.
  'L'           : latency. Server echoes every byte it reads.

Subcommands print one JSON line each:
  serve      --listen 127.0.0.1:PORT
  throughput --connect HOST:PORT --bytes N
  latency    --connect HOST:PORT --count N [--warmup W] [--raw FILE] [--cpu-of PID ...]
             (--cpu-of: also the CPU time the path's processes, and their
             descendants, spent per timed round trip, from schedstat)
  connect    --connect HOST:PORT --count N [--warmup W] [--raw FILE] [--timeout S] [--cpu-of PID ...]
             (N new connections one after another, each: connect, 'L' + 1 byte,
             wait for its echo, close; times connect() to the echo; --cpu-of as
             for latency, per timed connection, closes included)
  probe      --connect HOST:PORT --timeout S   (1-byte echo round trip, retried)
  free-port  --host 127.0.0.x                  (prints a free port number)
"""

import argparse
import json
import os
import pathlib
import socket
import struct
import sys
import threading
import time

CHUNK = 1 << 20
HEADER = struct.Struct(">Q")


def parse_hostport(text):
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise SystemExit(f"tcpbench: expected host:port, got {text!r}")
    if not host.startswith("127."):
        raise SystemExit(f"tcpbench: only loopback addresses (127.0.0.0/8) are allowed, got {host!r}")
    return host, int(port)


def recv_exact(sock, n):
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise ConnectionError(f"peer closed after {got} of {n} bytes")
        got += k
    return bytes(buf)


def nodelay(sock):
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


# --- server ---------------------------------------------------------------

def serve_sink(conn):
    (total,) = HEADER.unpack(recv_exact(conn, HEADER.size))
    conn.sendall(b"R")
    buf = bytearray(CHUNK)
    left = total
    while left > 0:
        k = conn.recv_into(buf, min(CHUNK, left))
        if k == 0:
            raise ConnectionError(f"sink: peer closed with {left} of {total} bytes missing")
        left -= k
    conn.sendall(HEADER.pack(total))


def serve_echo(conn):
    nodelay(conn)
    while True:
        data = conn.recv(65536)
        if not data:
            return
        conn.sendall(data)


def serve_connection(conn):
    with conn:
        try:
            mode = conn.recv(1)
            if mode == b"T":
                serve_sink(conn)
            elif mode == b"L":
                serve_echo(conn)
        except (ConnectionError, OSError) as err:
            print(f"tcpbench serve: connection ended: {err}", file=sys.stderr)


def cmd_serve(args):
    host, port = parse_hostport(args.listen)
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((host, port))
    lsock.listen(128)
    print(json.dumps({"serve": f"{host}:{port}"}), flush=True)
    while True:
        conn, _ = lsock.accept()
        threading.Thread(target=serve_connection, args=(conn,), daemon=True).start()


# --- clients --------------------------------------------------------------

def connect(text, timeout):
    sock = socket.create_connection(parse_hostport(text), timeout=timeout)
    nodelay(sock)
    return sock


def cmd_throughput(args):
    payload = memoryview(bytes(CHUNK))
    with connect(args.connect, args.timeout) as sock:
        sock.sendall(b"T" + HEADER.pack(args.bytes))
        if recv_exact(sock, 1) != b"R":
            raise SystemExit("tcpbench: server did not answer the throughput header with 'R'")
        start = time.perf_counter()
        left = args.bytes
        while left > 0:
            n = min(CHUNK, left)
            sock.sendall(payload[:n])
            left -= n
        (acked,) = HEADER.unpack(recv_exact(sock, HEADER.size))
        seconds = time.perf_counter() - start
    if acked != args.bytes:
        raise SystemExit(f"tcpbench: server acknowledged {acked} bytes, sent {args.bytes}")
    print(json.dumps({
        "mode": "throughput",
        "bytes": args.bytes,
        "seconds": round(seconds, 6),
        "mb_per_s": round(args.bytes / seconds / 1e6, 1),
    }), flush=True)


def percentile(sorted_values, p):
    """Nearest-rank percentile: the smallest sample with at least p% at or below it."""
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(rank) - 1]


def process_tree(pids):
    """The given PIDs and every process descended from them (sshd serves a forward from a child)."""
    children = {}
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), list(pids)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return found


def cpu_ns(pids):
    """Time on a CPU (user and kernel, ns) of every thread of these processes so far."""
    total = 0
    for pid in pids:
        for sched in pathlib.Path(f"/proc/{pid}/task").glob("*/schedstat"):
            try:
                total += int(sched.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pass  # a thread that ended meanwhile
    return total


def cpu_ns_with_exited_threads(pids):
    """Like cpu_ns, but from each process's utime + stime, which keep the time of threads that have
    exited (stunnel runs a thread per connection; schedstat forgets them): clock ticks, so only as
    fine as 1/CLK_TCK (10 ms), enough over a run of hundreds of connections."""
    tick_ns = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        total += (int(fields[11]) + int(fields[12])) * tick_ns
    return total


def cmd_latency(args):
    one = b"x"
    samples = []
    with connect(args.connect, args.timeout) as sock:
        sock.sendall(b"L")
        clock = time.perf_counter_ns
        tree, cpu_start = set(), 0
        for i in range(args.warmup + args.count):
            if i == args.warmup and args.cpu_of:
                tree = process_tree(args.cpu_of)
                cpu_start = cpu_ns(tree)
            t0 = clock()
            sock.sendall(one)
            if not sock.recv(1):
                raise SystemExit(f"tcpbench: echo closed after {i} round trips")
            if i >= args.warmup:
                samples.append(clock() - t0)
        cpu = cpu_ns(tree) - cpu_start if args.cpu_of else None
    if args.raw:
        with open(args.raw, "a") as f:
            f.write("".join(f"{ns}\n" for ns in samples))
    samples.sort()
    us = lambda ns: round(ns / 1000, 1)
    print(json.dumps({
        "mode": "latency",
        "count": args.count,
        "warmup": args.warmup,
        "p50_us": us(percentile(samples, 50)),
        "p99_us": us(percentile(samples, 99)),
        "min_us": us(samples[0]),
        "max_us": us(samples[-1]),
        "mean_us": us(sum(samples) / len(samples)),
        **({"cpu_us_per_rt": round(cpu / 1000 / args.count, 1)} if cpu is not None else {}),
    }), flush=True)


MAX_CONNECTS = 100_000


def cmd_connect(args):
    """New-connection cost: COUNT connections one after another (after WARMUP
    untimed ones), each connect() → 'L' + one byte → the byte's echo → close.
    A sample runs from just before connect() to the echo's arrival, so through
    a tunnel it covers accepting the connection, opening the tunnel's stream
    and its connection to the server. The whole run is bounded by --timeout."""
    if args.count + args.warmup > MAX_CONNECTS:
        raise SystemExit(f"tcpbench: --count + --warmup is at most {MAX_CONNECTS:,}")
    addr = parse_hostport(args.connect)
    deadline = time.monotonic() + args.timeout
    clock = time.perf_counter_ns
    samples = []
    start = None
    tree, cpu_start = set(), 0
    for i in range(args.warmup + args.count):
        left = deadline - time.monotonic()
        if left <= 0:
            raise SystemExit(f"tcpbench: connect run exceeded {args.timeout}s after {i} of "
                             f"{args.warmup + args.count} connections")
        if i == args.warmup:
            start = time.perf_counter()
            if args.cpu_of:
                tree = process_tree(args.cpu_of)
                cpu_start = cpu_ns_with_exited_threads(tree)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.settimeout(min(10.0, left))
            t0 = clock()
            sock.connect(addr)
            nodelay(sock)
            sock.sendall(b"Lc")
            got = sock.recv(1)
            t1 = clock()
        except OSError as err:
            if time.monotonic() >= deadline:
                raise SystemExit(f"tcpbench: connect run exceeded {args.timeout}s after {i} of "
                                 f"{args.warmup + args.count} connections")
            raise SystemExit(f"tcpbench: connection {i + 1} failed: {err or type(err).__name__}")
        finally:
            sock.close()
        if got != b"c":
            raise SystemExit(f"tcpbench: connection {i + 1}: no echo (got {got!r})")
        if i >= args.warmup:
            samples.append(t1 - t0)
    seconds = time.perf_counter() - start
    # Read at once: what the path still spends on the last close is one connection's worth, far
    # below the counters' 10 ms resolution over a run of hundreds.
    cpu = cpu_ns_with_exited_threads(tree) - cpu_start if args.cpu_of else None
    if args.raw:
        with open(args.raw, "a") as f:
            f.write("".join(f"{ns}\n" for ns in samples))
    samples.sort()
    us = lambda ns: round(ns / 1000, 1)
    print(json.dumps({
        "mode": "connect",
        "count": args.count,
        "warmup": args.warmup,
        "p50_us": us(percentile(samples, 50)),
        "p99_us": us(percentile(samples, 99)),
        "min_us": us(samples[0]),
        "max_us": us(samples[-1]),
        "mean_us": us(sum(samples) / len(samples)),
        "seconds": round(seconds, 6),
        "conns_per_s": round(args.count / seconds, 1),
        **({"cpu_us_per_conn": round(cpu / 1000 / args.count, 1)} if cpu is not None else {}),
    }), flush=True)


def cmd_probe(args):
    """Succeeds once one echo round trip works end to end (a listening forward
    port alone does not prove the tunnel behind it is up)."""
    deadline = time.monotonic() + args.timeout
    last = "no attempt"
    attempts = 0
    while time.monotonic() < deadline and attempts < 1000:
        attempts += 1
        try:
            with connect(args.connect, 2.0) as sock:
                sock.sendall(b"L" + b"p")
                if sock.recv(1) == b"p":
                    print(json.dumps({"probe": args.connect, "attempts": attempts}), flush=True)
                    return
                last = "echo returned no byte"
        except OSError as err:
            last = str(err) or type(err).__name__
        time.sleep(0.1)
    raise SystemExit(f"tcpbench: no echo through {args.connect} within {args.timeout}s ({last})")


def cmd_free_port(args):
    if not args.host.startswith("127."):
        raise SystemExit("tcpbench: only loopback addresses are allowed")
    with socket.socket() as s:
        s.bind((args.host, 0))
        print(s.getsockname()[1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("serve")
    p.add_argument("--listen", required=True)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("throughput")
    p.add_argument("--connect", required=True)
    p.add_argument("--bytes", type=int, default=1 << 30)
    p.add_argument("--timeout", type=float, default=60.0)
    p.set_defaults(func=cmd_throughput)

    p = sub.add_parser("latency")
    p.add_argument("--connect", required=True)
    p.add_argument("--count", type=int, default=20000)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--raw", help="append every round-trip time (ns, one per line) to this file")
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--cpu-of", type=int, action="append", default=[], metavar="PID",
                   help="a process of the path (repeatable): report its CPU time per timed round trip")
    p.set_defaults(func=cmd_latency)

    p = sub.add_parser("connect")
    p.add_argument("--connect", required=True)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--warmup", type=int, default=0, help="untimed connections first")
    p.add_argument("--raw", help="append every connect-to-echo time (ns, one per line) to this file")
    p.add_argument("--timeout", type=float, default=60.0, help="bound on the whole run, in seconds")
    p.add_argument("--cpu-of", type=int, action="append", default=[], metavar="PID",
                   help="a process of the path (repeatable): report its CPU time per timed connection")
    p.set_defaults(func=cmd_connect)

    p = sub.add_parser("probe")
    p.add_argument("--connect", required=True)
    p.add_argument("--timeout", type=float, default=10.0)
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("free-port")
    p.add_argument("--host", default="127.0.0.1")
    p.set_defaults(func=cmd_free_port)

    args = parser.parse_args()
    if getattr(args, "count", 1) < 1 or getattr(args, "bytes", 1) < 1:
        raise SystemExit("tcpbench: --count and --bytes must be positive")
    if getattr(args, "warmup", 0) < 0 or getattr(args, "timeout", 1) <= 0:
        raise SystemExit("tcpbench: --warmup must not be negative, --timeout must be positive")
    args.func(args)


if __name__ == "__main__":
    main()
