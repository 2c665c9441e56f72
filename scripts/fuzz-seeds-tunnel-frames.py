#!/usr/bin/env python3
"""Writes the hand-made seeds of the tunnel-frames fuzz target (Tests/FuzzCorpus/tunnel-frames/).

Each seed is one option byte (see Tests/MeshFuzzTargets/FuzzInput.swift: low bits are the target's
options, the high nibble cuts the rest into reads) followed by HTTP/2 frames a peer sends after the
client preface, which the target sends itself. Needs `pip install hyperframe hpack`.
Usage: scripts/fuzz-seeds-tunnel-frames.py DIR
"""
import os
import sys

from hpack import Encoder
from hyperframe.frame import ContinuationFrame, DataFrame, GoAwayFrame, HeadersFrame, RstStreamFrame, WindowUpdateFrame

ALLOWED = 0x01   # option bit 0: the peer may use "echo"
ENDS = 0x02      # option bit 1: the peer ends its input after the bytes


def headers(stream, fields, end_stream=False, end_headers=True):
    frame = HeadersFrame(stream)
    frame.data = Encoder().encode(fields)
    frame.flags.add("END_HEADERS") if end_headers else None
    if end_stream:
        frame.flags.add("END_STREAM")
    return frame.serialize()


def connect(stream, service, **kw):
    return headers(stream, [(":method", "CONNECT"), (":authority", service)], **kw)


def data(stream, payload, end_stream=False):
    frame = DataFrame(stream, data=payload)
    if end_stream:
        frame.flags.add("END_STREAM")
    return frame.serialize()


def seeds():
    yield "seed-connect-allowed", bytes([ALLOWED]) + connect(1, "echo") + data(1, b"hello") + data(1, b"", True)
    yield "seed-connect-forbidden", bytes([0]) + connect(1, "echo") + data(1, b"hello")
    yield "seed-connect-unknown-service", bytes([ALLOWED]) + connect(1, "nosuch")
    yield "seed-not-connect", bytes([ALLOWED]) + headers(1, [(":method", "GET"), (":authority", "echo"), (":scheme", "https"), (":path", "/")])
    yield "seed-connect-byte-by-byte", bytes([ALLOWED | 0x10]) + connect(1, "echo") + data(1, b"hello")
    rapid = b"".join(connect(n, "echo") + RstStreamFrame(n, error_code=8).serialize() for n in range(1, 2 * 260, 2))
    yield "seed-rapid-reset", bytes([ALLOWED]) + rapid
    control = connect(1, "tunnelmesh.control") + data(1, b"note backend-report {}\nrefuse 1 403\nopen 1 echo\n")
    yield "seed-control-stream", bytes([0]) + control
    yield "seed-control-line-too-long", bytes([0]) + connect(1, "tunnelmesh.control") + data(1, b"x" * 16500)
    reverse = connect(1, "tunnelmesh.control") + headers(3, [(":method", "CONNECT"), (":authority", "tunnelmesh.reverse"), ("tm-reverse-id", "1")])
    yield "seed-reverse-unrequested", bytes([0]) + reverse
    yield "seed-data-unknown-stream", bytes([ALLOWED]) + data(7, b"stray") + RstStreamFrame(9, error_code=0).serialize()
    overflow = WindowUpdateFrame(0, window_increment=0x7FFFFFFF).serialize() * 2
    yield "seed-window-overflow", bytes([0]) + overflow
    stream_overflow = connect(1, "echo") + WindowUpdateFrame(1, window_increment=0x7FFFFFFF).serialize() * 2
    yield "seed-stream-window-overflow", bytes([ALLOWED]) + stream_overflow
    flood = headers(1, [(":method", "CONNECT"), (":authority", "echo")], end_headers=False)
    flood += b"".join(ContinuationFrame(1, data=b"").serialize() for _ in range(200))
    yield "seed-continuation-flood", bytes([ALLOWED]) + flood
    yield "seed-data-over-window", bytes([ALLOWED]) + connect(1, "echo") + data(1, b"z" * 16384) * 5
    yield "seed-goaway", bytes([ALLOWED | ENDS]) + connect(1, "echo") + GoAwayFrame(0, last_stream_id=1, error_code=0).serialize()


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    os.makedirs(sys.argv[1], exist_ok=True)
    for name, payload in seeds():
        with open(os.path.join(sys.argv[1], name), "wb") as f:
            f.write(payload)


if __name__ == "__main__":
    main()
