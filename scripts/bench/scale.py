#!/usr/bin/env python3
"""Measuring tools for scripts/bench/scale.sh (stdlib only). Each subcommand prints one JSON line.

  echo     --listen 127.0.0.1:PORT
           An echo server for thousands of connections (one thread, selectors): the service the
           idle streams end at. How many connections it holds is read from its /proc fd count.
  streams  --connect HOST:PORT --count N --server-pid PID --pids P1,P2 [--settle S]
           Opens N connections to a forward, waits until the echo server behind the tunnel holds
           all N, echoes one byte on every one of them, and samples VmRSS of the meshd PIDS with
           the tunnel up and no streams, with the N streams open and idle, after each carried a
           byte, after --busy of them carried --busy-bytes each way (then idle again), and after
           all are closed again.
  mesh     --sockets S1,S2,... --since-file PATH --timeout S [--interval S]
           Polls GET /v1/peers on every node's control socket (a thread per node) until every
           node reports every peer up; prints the seconds from the Unix time written to PATH
           (once the poller said it is polling) until then, and the time line of tunnels up.
  idle     --pids P1,P2,... --seconds S --sockets S1,S2,...
           CPU (utime + stime) and VmRSS of each PID over S seconds of an idle mesh, and whether
           any tunnel was redialed meanwhile (reconnect counters before and after).
"""

import argparse
import http.client
import json
import os
import selectors
import socket
import statistics
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def hostport(text):
    host, sep, port = text.rpartition(":")
    if not sep or not host.startswith("127.") or not port.isdigit():
        raise SystemExit(f"scale.py: expected a loopback host:port (127.0.0.0/8), got {text!r}")
    return host, int(port)


def pid_list(text):
    return [int(p) for p in text.split(",") if p]


def rss_kib(pid):
    """VmRSS of PID in KiB (what the process has resident: heap, stacks, mapped binary pages)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit(f"scale.py: /proc/{pid}/status has no VmRSS (not a live process?)")


def cpu_seconds(pid):
    """utime + stime of PID itself (its threads included), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def wait_for(condition, seconds, what):
    """Polls condition() every 50 ms until it is true; fails after SECONDS naming WHAT."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"scale.py: {what} did not happen within {seconds} s")
        time.sleep(0.05)


# --- echo server ------------------------------------------------------------------------------------

def cmd_echo(args):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(hostport(args.listen))
    listener.listen(4096)
    listener.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    unsent = {}   # bytes a connection's send buffer did not take yet; it is not read meanwhile
    print(json.dumps({"echo": args.listen}), flush=True)
    while True:
        for key, events in sel.select():
            sock = key.fileobj
            if sock is listener:
                for _ in range(256):
                    try:
                        conn, _ = listener.accept()
                    except BlockingIOError:
                        break
                    conn.setblocking(False)
                    sel.register(conn, selectors.EVENT_READ)
                continue
            try:
                if events & selectors.EVENT_WRITE:
                    data = unsent.pop(sock)
                else:
                    data = sock.recv(1 << 20)
                    if not data:
                        raise ConnectionError("end of input")
                try:
                    sent = sock.send(data)
                except BlockingIOError:
                    sent = 0
                if sent < len(data):
                    unsent[sock] = data[sent:]
                sel.modify(sock, selectors.EVENT_WRITE if sock in unsent else selectors.EVENT_READ)
                continue
            except BlockingIOError:
                continue   # a wake-up with nothing to read after all
            except OSError:
                pass
            unsent.pop(sock, None)
            sel.unregister(sock)
            sock.close()


# --- idle streams -----------------------------------------------------------------------------------

def probe(addr, seconds):
    """One echo round trip through the forward: the tunnel and the service behind it are up."""
    deadline, last = time.monotonic() + seconds, "no attempt"
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(addr, timeout=2) as s:
                s.sendall(b"p")
                if s.recv(1) == b"p":
                    return
                last = "the echo closed without answering"
        except OSError as err:
            last = str(err)
        time.sleep(0.1)
    raise SystemExit(f"scale.py: no echo through {addr[0]}:{addr[1]} within {seconds} s ({last})")


def open_connections(addr, count, seconds, in_flight=256):
    """COUNT connected sockets to ADDR, at most IN_FLIGHT connects pending at once (the forward's
    accept backlog is 1,024), within SECONDS."""
    sel = selectors.DefaultSelector()
    done, pending, started = [], 0, 0
    deadline = time.monotonic() + seconds
    while len(done) < count:
        while started < count and pending < in_flight:
            s = socket.socket()
            s.setblocking(False)
            err = s.connect_ex(addr)
            if err not in (0, 115):   # 115: EINPROGRESS
                raise SystemExit(f"scale.py: connect #{started + 1} to {addr} failed: {os.strerror(err)}")
            sel.register(s, selectors.EVENT_WRITE)
            started += 1
            pending += 1
        if time.monotonic() > deadline:
            raise SystemExit(f"scale.py: only {len(done)} of {count} connections open after {seconds} s")
        for key, _ in sel.select(timeout=1):
            s = key.fileobj
            sel.unregister(s)
            pending -= 1
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise SystemExit(f"scale.py: connection #{len(done) + 1} to {addr} failed: {os.strerror(err)}")
            done.append(s)
    sel.close()
    return done


def echo_all(socks, seconds):
    """Sends one byte on every socket and reads it back; returns how many came back. A stream that
    is not really open end to end answers nothing (or EOF) and is not counted."""
    sel = selectors.DefaultSelector()
    for s in socks:
        s.send(b"e")
        sel.register(s, selectors.EVENT_READ)
    answered, deadline = 0, time.monotonic() + seconds
    while answered < len(socks) and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            sel.unregister(key.fileobj)
            try:
                answered += key.fileobj.recv(1) == b"e"
            except OSError:
                pass
    sel.close()
    return answered


def echo_bulk(sock, total, seconds):
    """Sends TOTAL bytes on SOCK in 1 MiB writes while a thread reads their echo back; fails unless
    every byte came back within SECONDS."""
    got = [0]

    def read():
        while got[0] < total:
            n = len(sock.recv(1 << 20))
            if n == 0:
                return
            got[0] += n

    sock.settimeout(seconds)
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    chunk, left = memoryview(bytes(1 << 20)), total
    while left > 0:
        left -= sock.send(chunk[:min(left, len(chunk))])
    reader.join(seconds)
    if got[0] != total:
        raise SystemExit(f"scale.py: a busy stream echoed {got[0]} of {total} bytes")


def cmd_streams(args):
    addr, pids = hostport(args.connect), pid_list(args.pids)
    rss = lambda: [rss_kib(p) for p in pids]
    probe(addr, 30)
    time.sleep(args.settle)
    server_base = open_fds(args.server_pid)
    baseline = rss()

    t0 = time.monotonic()
    socks = open_connections(addr, args.count, 120)
    connected = time.monotonic() - t0
    # Connected here means only that meshd accepted; the stream is open end to end once the echo
    # server behind the tunnel holds a connection for it.
    wait_for(lambda: open_fds(args.server_pid) - server_base >= args.count, 120,
             f"the echo server holding all {args.count} connections")
    opened = time.monotonic() - t0
    time.sleep(args.settle)
    server_held = open_fds(args.server_pid) - server_base
    idle = rss()

    t1 = time.monotonic()
    echoed = echo_all(socks, 120)
    echo_seconds = time.monotonic() - t1
    time.sleep(args.settle)
    after_echo = rss()

    t2 = time.monotonic()
    busy = socks[:args.busy]
    for s in busy:
        echo_bulk(s, args.busy_bytes, 60)
    busy_seconds = time.monotonic() - t2
    time.sleep(args.settle)
    after_busy = rss()

    for s in socks:
        s.close()
    wait_for(lambda: open_fds(args.server_pid) <= server_base, 60, "the echo server seeing every stream closed")
    time.sleep(args.settle)
    closed = rss()

    per_stream = lambda sample: [round((a - b) / args.count, 2) for a, b in zip(sample, baseline)]
    print(json.dumps({
        "count": args.count, "server_held": server_held, "echoed": echoed,
        "connect_s": round(connected, 2), "open_s": round(opened, 2), "echo_s": round(echo_seconds, 2),
        "busy": len(busy), "busy_bytes": args.busy_bytes, "busy_s": round(busy_seconds, 2),
        "rss_kib": {"baseline": baseline, "idle": idle, "after_echo": after_echo, "after_busy": after_busy,
                    "closed": closed},
        "kib_per_stream": {"idle": per_stream(idle), "after_echo": per_stream(after_echo)},
        "kib_per_busy_stream": [round((a - b) / max(1, len(busy)), 1) for a, b in zip(after_busy, after_echo)],
    }), flush=True)


# --- the mesh ---------------------------------------------------------------------------------------

class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP/1.1 over a Unix socket: the control API meshctl speaks (GET /v1/peers)."""

    def __init__(self, path, timeout):
        super().__init__("meshd", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def peers(control_socket):
    """The node's /v1/peers list, or None while its agent does not answer (not started yet)."""
    conn = UnixHTTPConnection(control_socket, timeout=2)
    try:
        conn.request("GET", "/v1/peers", headers={"Accept": "application/json"})
        response = conn.getresponse()
        return json.loads(response.read()) if response.status == 200 else None
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def up_views(sockets):
    """How many (node, peer) pairs report `up`, and the reconnect counters summed over all nodes."""
    up = reconnects = 0
    for path in sockets:
        for peer in peers(path) or []:
            up += peer["state"] == "up"
            reconnects += peer["reconnects"]
    return up, reconnects


class NodeWatch(threading.Thread):
    """Polls one node's /v1/peers every INTERVAL s: how many of its peers are up, and since when
    (the reply that began its current run of all-up answers) it has seen every peer up."""

    def __init__(self, path, peers_expected, interval, stop):
        super().__init__(daemon=True)
        self.path, self.expected, self.interval, self.stop = path, peers_expected, interval, stop
        self.up, self.complete_since, self.down = 0, None, []

    def run(self):
        while not self.stop.is_set():
            answer = peers(self.path)
            now = time.time()
            self.up = sum(p["state"] == "up" for p in answer or [])
            self.down = [[p["name"], p["state"], p["last_error"]] for p in answer or [] if p["state"] != "up"]
            if self.up == self.expected:
                self.complete_since = self.complete_since or now
            else:
                self.complete_since = None
            self.stop.wait(self.interval)


def cmd_mesh(args):
    # One poller per node, in parallel, rather than `meshctl peers --json` 32 times a round: the
    # same API and JSON, but a slow answer from one busy node does not hold up the others, so the
    # time measured is the mesh's, not the poller's. The mesh is whole once every node's latest
    # answers show every peer up; its time is when the last node's run of such answers began.
    sockets = args.sockets.split(",")
    stop = threading.Event()
    watches = [NodeWatch(path, len(sockets) - 1, args.interval, stop) for path in sockets]
    for w in watches:
        w.start()
    print(json.dumps({"polling": len(watches)}), flush=True)
    wait_for(lambda: os.path.exists(args.since_file), 60, f"{args.since_file} appearing")
    since = float(open(args.since_file).read())
    first_poll = round(time.time() - since, 2)   # how late this poller itself got going
    deadline, timeline, last, whole_at = time.monotonic() + args.timeout, [], -1, None
    while time.monotonic() < deadline:
        up = sum(w.up for w in watches) // 2
        if up != last:
            timeline.append([round(time.time() - since, 2), up])
            last = up
        starts = [w.complete_since for w in watches]
        if all(starts):
            whole_at = max(starts)
            break
        time.sleep(0.05)
    stop.set()
    print(json.dumps({
        "nodes": len(sockets), "tunnels": len(sockets) * (len(sockets) - 1) // 2, "whole": whole_at is not None,
        "seconds": round(whole_at - since, 2) if whole_at else None, "tunnels_up": last,
        "nodes_complete": sum(bool(w.complete_since) for w in watches), "timeline": timeline,
        "poller_started_s": first_poll,
        # What the nodes that did not see all peers up saw last: [node socket, [peer, state, last error]...]
        "not_up": [[os.path.basename(w.path), w.down] for w in watches if not w.complete_since][:8],
    }), flush=True)


def cmd_idle(args):
    pids, sockets = pid_list(args.pids), args.sockets.split(",")
    up_before, reconnects_before = up_views(sockets)
    before = {p: cpu_seconds(p) for p in pids if os.path.exists(f"/proc/{p}")}
    t0 = time.monotonic()
    time.sleep(args.seconds)
    seconds = time.monotonic() - t0
    live = [p for p in before if os.path.exists(f"/proc/{p}")]
    if not live:
        raise SystemExit("scale.py: no meshd of the mesh ran through the idle period")
    cpu_pct = [round((cpu_seconds(p) - before[p]) / seconds * 100, 3) for p in live]
    rss = [rss_kib(p) for p in live]
    up_after, reconnects_after = up_views(sockets)
    print(json.dumps({
        "seconds": round(seconds, 1), "cpu_pct": cpu_pct, "rss_kib": rss,
        "cpu_pct_median": statistics.median(cpu_pct), "cpu_pct_max": max(cpu_pct),
        "rss_kib_median": statistics.median(rss), "rss_kib_max": max(rss),
        "exited": [p for p in pids if p not in live],
        "tunnels_up": [up_before // 2, up_after // 2], "reconnects": reconnects_after - reconnects_before,
    }), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("echo")
    p.add_argument("--listen", required=True)
    p.set_defaults(func=cmd_echo)
    p = sub.add_parser("streams")
    p.add_argument("--connect", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--server-pid", type=int, required=True)
    p.add_argument("--pids", required=True, help="meshd pids, comma-separated")
    p.add_argument("--settle", type=float, default=2.0, help="seconds to wait before each RSS sample")
    p.add_argument("--busy", type=int, default=100, help="streams that then carry --busy-bytes each way")
    p.add_argument("--busy-bytes", type=int, default=4 << 20)
    p.set_defaults(func=cmd_streams)
    p = sub.add_parser("mesh")
    p.add_argument("--sockets", required=True)
    p.add_argument("--since-file", required=True, help="a file that will hold the Unix time the clock starts at")
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--interval", type=float, default=0.25, help="seconds between two polls of one node")
    p.set_defaults(func=cmd_mesh)
    p = sub.add_parser("idle")
    p.add_argument("--pids", required=True)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--sockets", required=True)
    p.set_defaults(func=cmd_idle)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
