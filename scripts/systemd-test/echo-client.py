#!/usr/bin/python3
"""Clients of an echo service, for scripts/systemd-test.sh (runs inside the test container).

  echo-client.py once HOST:PORT [--timeout S]
      one connection: send a line, expect it back. Exit 0 and print "ok <seconds>", or exit 1
      and print what happened instead (refused, reset, closed, timeout, wrong).
  echo-client.py loop HOST:PORT --until FILE [--max-seconds S] [--pause S]
      connections one after another, each a round trip, until FILE exists (or S passed); prints
      one JSON line counting attempts, ok, refused and the other outcomes.
  echo-client.py hold HOST:PORT --until FILE [--max-seconds S] [--every S]
      one long-lived connection, a round trip every S seconds, until FILE exists; prints one
      JSON line: round trips done, and how the stream ended ("open" if it outlived the run).

Every wait is bounded: a connection gets --timeout per attempt, a loop ends at --max-seconds.
"""

import argparse
import json
import os
import socket
import sys
import time


def address(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def outcome_of(error):
    """A word for what went wrong, the counters' keys."""
    if isinstance(error, ConnectionRefusedError):
        return "refused"
    if isinstance(error, ConnectionResetError):
        return "reset"
    if isinstance(error, (socket.timeout, TimeoutError)):
        return "timeout"
    if isinstance(error, EOFError):
        return "closed"
    if isinstance(error, ValueError):
        return "wrong"
    return type(error).__name__


def round_trip(sock, line, deadline):
    """Send one line and read it back, all before the monotonic `deadline`."""
    sock.sendall(line)
    received = b""
    while not received.endswith(b"\n"):
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        chunk = sock.recv(4096)
        if not chunk:
            raise EOFError("closed before the echo came back")
        received += chunk
    if received != line:
        raise ValueError(f"echoed {received!r}, sent {line!r}")


def one_connection(target, timeout, serial):
    deadline = time.monotonic() + timeout
    with socket.create_connection(target, timeout=timeout) as sock:
        round_trip(sock, f"systemd-test {serial} {os.getpid()}\n".encode(), deadline)


def once(args):
    started = time.monotonic()
    try:
        one_connection(args.target, args.timeout, 0)
    except Exception as error:  # every failure is the answer, printed with its kind
        print(f"{outcome_of(error)} after {time.monotonic() - started:.2f}s: {error}")
        return 1
    print(f"ok {time.monotonic() - started:.2f}s")
    return 0


def loop(args):
    counts = {"attempts": 0, "ok": 0, "refused": 0}
    slowest = 0.0
    end = time.monotonic() + args.max_seconds
    while not os.path.exists(args.until) and time.monotonic() < end:
        counts["attempts"] += 1
        started = time.monotonic()
        try:
            one_connection(args.target, args.timeout, counts["attempts"])
            counts["ok"] += 1
        except Exception as error:
            kind = outcome_of(error)
            counts[kind] = counts.get(kind, 0) + 1
        slowest = max(slowest, time.monotonic() - started)
        time.sleep(args.pause)
    counts["slowest_seconds"] = round(slowest, 3)
    counts["stopped_by"] = "file" if os.path.exists(args.until) else "max-seconds"
    print(json.dumps(counts))
    return 0


def hold(args):
    result = {"round_trips": 0, "ended": "open"}
    end = time.monotonic() + args.max_seconds
    try:
        with socket.create_connection(args.target, timeout=args.timeout) as sock:
            while not os.path.exists(args.until) and time.monotonic() < end:
                line = f"held {result['round_trips']}\n".encode()
                round_trip(sock, line, time.monotonic() + args.timeout)
                result["round_trips"] += 1
                time.sleep(args.every)
    except Exception as error:
        result["ended"] = outcome_of(error)
        result["error"] = str(error)
    print(json.dumps(result))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = parser.add_subparsers(dest="mode", required=True)
    for name in ("once", "loop", "hold"):
        mode = modes.add_parser(name)
        mode.add_argument("target", type=address)
        mode.add_argument("--timeout", type=float, default=5.0, help="seconds per connection or round trip")
        if name != "once":
            mode.add_argument("--until", required=True, help="stop once this file exists")
            mode.add_argument("--max-seconds", type=float, default=120.0)
    modes.choices["loop"].add_argument("--pause", type=float, default=0.05)
    modes.choices["hold"].add_argument("--every", type=float, default=0.2)
    args = parser.parse_args()
    return {"once": once, "loop": loop, "hold": hold}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
