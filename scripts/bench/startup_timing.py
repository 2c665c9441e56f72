#!/usr/bin/env python3
"""How much of a new PostgreSQL connection is the postmaster's fork (the question behind a
service's `preconnect`, issue 11): StartupMessage -> ReadyForQuery on a fresh TCP connection
(connect included) against the same on a connection opened 50 ms earlier, whose backend has
been forked already. Trust authentication, user postgres, database bench (balancer.sh's
PostgreSQL); point it at PostgreSQL directly or at a forward through the mesh.

Usage: scripts/bench/startup_timing.py PORT [--host 127.0.0.1] [--count 100] [--rounds 3]
Prints the p50 of each kind per round. A by-hand measuring tool, not a table of BENCHMARKS.md.
"""

import argparse
import socket
import struct
import time


def startup_message(user, database):
    body = struct.pack("!I", 196608) + f"user\0{user}\0database\0{database}\0\0".encode()
    return struct.pack("!I", len(body) + 4) + body


def until_ready(sock):
    """Reads until ReadyForQuery (idle); fails on EOF or an ErrorResponse."""
    seen = b""
    while not seen.endswith(b"Z\x00\x00\x00\x05I"):
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("the server closed the connection before ReadyForQuery")
        if not seen and chunk[:1] == b"E":
            raise SystemExit(f"the server refused the startup: {chunk[5:200]!r}")
        seen += chunk


def one(args, opened_early):
    """Seconds from (connect or) StartupMessage to ReadyForQuery."""
    started = time.perf_counter()
    sock = socket.create_connection((args.host, args.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        if opened_early:
            time.sleep(0.05)
            started = time.perf_counter()
        sock.sendall(startup_message("postgres", "bench"))
        until_ready(sock)
        took = time.perf_counter() - started
        sock.sendall(b"X\x00\x00\x00\x04")  # Terminate
        return took
    finally:
        sock.close()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("port", type=int)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    if args.count < 1 or args.rounds < 1:
        p.error("--count and --rounds take whole numbers >= 1")
    for round_number in range(1, args.rounds + 1):
        fresh = sorted(one(args, False) for _ in range(args.count))
        early = sorted(one(args, True) for _ in range(args.count))
        middle = args.count // 2
        print(f"round {round_number}: fresh connection p50 {fresh[middle] * 1e6:,.0f} µs, "
              f"opened 50 ms earlier p50 {early[middle] * 1e6:,.0f} µs")


if __name__ == "__main__":
    main()
