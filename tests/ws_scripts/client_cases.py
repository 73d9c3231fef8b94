#!/usr/bin/env python3
"""Independent WebSocket client for lunanet's tests (Python `websockets` plus
raw sockets for what a correct client library refuses to send).

Usage: client_cases.py CASE PORT. Prints key=value lines; exits non-zero
(with a message on stderr) when the server misbehaves.
"""
import base64
import hashlib
import os
import socket
import struct
import sys
import time

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TIMEOUT = 20


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def url(port, path="/py"):
    return f"ws://127.0.0.1:{port}{path}"


def expect_close(ws):
    """Reads until the server closes; returns (code, reason) it sent."""
    try:
        while True:
            ws.recv(timeout=TIMEOUT)
    except ConnectionClosed as e:
        if e.rcvd is None:
            fail(f"connection closed without a Close frame: {e!r}")
        return e.rcvd.code, e.rcvd.reason
    except TimeoutError:
        fail("the server did not close")


# Raw-socket helpers -------------------------------------------------------

def raw_connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        (f"GET /raw HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
         f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
         "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            fail("server closed during the handshake")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    if not head.startswith(b"HTTP/1.1 101"):
        fail(f"bad status line: {head[:40]!r}")
    accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest())
    if accept not in head:
        fail("wrong Sec-WebSocket-Accept")
    return s, rest


def frame(opcode, payload, masked=True, fin=True):
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    mbit = 0x80 if masked else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def read_frames_until_close(s, buf):
    """Returns the Close frame's (code, reason) the server sent."""
    deadline = time.time() + TIMEOUT
    while time.time() < deadline:
        while len(buf) >= 2:
            op = buf[0] & 0x0F
            n = buf[1] & 0x7F
            off = 2
            if n == 126:
                if len(buf) < 4:
                    break
                n = struct.unpack("!H", buf[2:4])[0]
                off = 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n = struct.unpack("!Q", buf[2:10])[0]
                off = 10
            if buf[1] & 0x80:
                fail("server frame is masked")
            if len(buf) < off + n:
                break
            payload, buf = buf[off:off + n], buf[off + n:]
            if op == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                return code, payload[2:].decode("utf-8", "replace")
        chunk = s.recv(65536)
        if not chunk:
            fail("connection closed without a Close frame")
        buf += chunk
    fail("no Close frame before the deadline")


# Cases --------------------------------------------------------------------

def case_echo(port):
    with connect(url(port, "/echo?x=1"), open_timeout=TIMEOUT) as ws:
        ws.send("héllo")
        got = ws.recv(timeout=TIMEOUT)
        if got != "héllo":
            fail(f"text echo: {got!r}")
        ws.send(b"\x00\x01\xff")
        got = ws.recv(timeout=TIMEOUT)
        if got != b"\x00\x01\xff":
            fail(f"binary echo: {got!r}")
        big = bytes(range(256)) * 234  # 59 904 bytes: several reads, one message
        ws.send(big)
        got = ws.recv(timeout=TIMEOUT)
        if got != big:
            fail("large echo differs")
        ws.send(b"")
        if ws.recv(timeout=TIMEOUT) != b"":
            fail("empty echo")
    print("ok=1")


def case_fragmented(port):
    with connect(url(port), open_timeout=TIMEOUT) as ws:
        ws.send(["frag", "mented ", "téxt"])  # one text message, three frames
        got = ws.recv(timeout=TIMEOUT)
        if got != "fragmented téxt":
            fail(f"fragmented text: {got!r}")
        ws.send([b"\x01\x02", b"", b"\x03"])
        got = ws.recv(timeout=TIMEOUT)
        if got != b"\x01\x02\x03":
            fail(f"fragmented binary: {got!r}")
    print("ok=1")


def case_ping(port):
    with connect(url(port), open_timeout=TIMEOUT) as ws:
        start = time.time()
        waiter = ws.ping(b"are you there")
        if not waiter.wait(TIMEOUT):
            fail("no pong")
        print(f"pong_ms={(time.time() - start) * 1000:.2f}")
        ws.send("after ping")
        if ws.recv(timeout=TIMEOUT) != "after ping":
            fail("echo after ping")
    print("ok=1")


def case_client_close(port):
    ws = connect(url(port), open_timeout=TIMEOUT)
    ws.send("x")
    ws.recv(timeout=TIMEOUT)
    ws.close(4001, "bye")
    rcvd = ws.protocol.close_rcvd
    if rcvd is None:
        fail("the server did not answer the Close")
    print(f"reply_code={rcvd.code}")
    print(f"reply_reason={rcvd.reason}")


def case_server_close(port):
    with connect(url(port), open_timeout=TIMEOUT) as ws:
        ws.send("close:4002:server bye")
        code, reason = expect_close(ws)
    print(f"code={code}")
    print(f"reason={reason}")


def case_oversize(port):
    with connect(url(port), open_timeout=TIMEOUT, max_size=None) as ws:
        ws.send(b"x" * 70000)
        code, reason = expect_close(ws)
    print(f"code={code}")
    print(f"reason={reason}")


def case_bad_utf8(port):
    s, rest = raw_connect(port)
    s.sendall(frame(0x1, b"ok \xff\xfe not utf-8"))
    code, reason = read_frames_until_close(s, rest)
    print(f"code={code}")
    print(f"reason={reason}")


def case_bad_utf8_fragmented(port):
    s, rest = raw_connect(port)
    # "é" split across two frames is valid; 0xC3 followed by ASCII is not.
    s.sendall(frame(0x1, b"a\xc3", fin=False) + frame(0x0, b"(b"))
    code, reason = read_frames_until_close(s, rest)
    print(f"code={code}")


def case_unmasked(port):
    s, rest = raw_connect(port)
    s.sendall(frame(0x2, b"unmasked from a client", masked=False))
    code, reason = read_frames_until_close(s, rest)
    print(f"code={code}")
    print(f"reason={reason}")


def case_oversized_frame_header(port):
    """A header announcing 2**62 bytes: refused from the header alone."""
    s, rest = raw_connect(port)
    s.sendall(struct.pack("!BBQ", 0x82, 0x80 | 127, 1 << 62) + os.urandom(4))
    code, reason = read_frames_until_close(s, rest)
    print(f"code={code}")


def case_stall(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finishes the request
    start = time.time()
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    print(f"closed_after_s={time.time() - start:.2f}")
    print(f"bytes={len(data)}")


def case_not_websocket(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    print(f"status={data.split(b' ')[1].decode() if b' ' in data else ''}")


def case_wss_echo(port):
    """wss:// with the test CA from $LUNANET_CA (certificate for localhost)."""
    import ssl
    ctx = ssl.create_default_context(cafile=os.environ["LUNANET_CA"])
    with connect(f"wss://localhost:{port}/secure", ssl=ctx, open_timeout=TIMEOUT) as ws:
        ws.send("over tls")
        if ws.recv(timeout=TIMEOUT) != "over tls":
            fail("wss text echo")
        big = os.urandom(50000)
        ws.send(big)
        if ws.recv(timeout=TIMEOUT) != big:
            fail("wss binary echo")
        ws.send("close:4010:tls bye")
        code, reason = expect_close(ws)
    print(f"code={code}")
    print(f"reason={reason}")


def main():
    case, port = sys.argv[1], int(sys.argv[2])
    globals()[f"case_{case}"](port)


if __name__ == "__main__":
    main()
