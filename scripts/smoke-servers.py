#!/usr/bin/env python3
"""Drives a running server example with real TCP clients and checks the bytes
that come back; exits non-zero (with the reason) otherwise.

    scripts/smoke-servers.py echo 127.0.0.1 7777     # examples/echo_server
    scripts/smoke-servers.py tick 127.0.0.1 7778     # examples/tick_server
    scripts/smoke-servers.py chat 127.0.0.1 7780     # examples/packet_chat

Every wait is bounded (socket timeouts, a deadline per phase); nothing sleeps
to synchronise except the paced resend of the chat probe.
Standard library only, so a fresh CI machine needs nothing but python3.
"""
import select
import socket
import struct
import sys
import time

TIMEOUT = 10.0  # seconds for any single blocking call


def fail(msg):
    print(f"smoke FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def connect(host, port, deadline_s=15.0):
    """Connects, retrying while the server is still starting (bounded)."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            s = socket.create_connection((host, port), timeout=TIMEOUT)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return s
        except OSError as e:
            if time.monotonic() >= deadline:
                fail(f"cannot connect to {host}:{port} within {deadline_s} s: {e}")
            time.sleep(0.1)


def recv_exact(s, n, what):
    out = bytearray()
    while len(out) < n:
        try:
            chunk = s.recv(n - len(out))
        except socket.timeout:
            fail(f"{what}: timed out after {len(out)} of {n} bytes")
        if not chunk:
            fail(f"{what}: connection closed after {len(out)} of {n} bytes")
        out += chunk
    return bytes(out)


def pattern(seed, n):
    return bytes((seed * 31 + i * 7 + (i >> 8)) % 251 for i in range(n))


def echo(host, port):
    """Two clients at once; each sends 200 KiB in uneven pieces (more than a
    socket buffer, so the server's backpressure path runs) and must get every
    byte back, in order."""
    clients = [connect(host, port) for _ in range(2)]
    total = 200 * 1024
    data = [pattern(k + 1, total) for k in range(len(clients))]
    got = [bytearray() for _ in clients]
    sent = [0] * len(clients)
    sizes = [1, 7, 1000, 4096, 65536, 13]
    step = 0
    deadline = time.monotonic() + 30
    for s in clients:
        s.setblocking(False)
    while any(len(g) < total for g in got):
        if time.monotonic() >= deadline:
            fail(f"echo: timed out with {[len(g) for g in got]} of {total} bytes back")
        moved = False
        for k, s in enumerate(clients):
            if sent[k] < total and sent[k] - len(got[k]) < 256 * 1024:
                n = sizes[step % len(sizes)]
                step += 1
                try:
                    sent[k] += s.send(data[k][sent[k]:sent[k] + n])
                    moved = True
                except BlockingIOError:
                    pass
            try:
                chunk = s.recv(65536)
                if not chunk:
                    fail(f"echo: client {k} closed by the server after {len(got[k])} bytes")
                got[k] += chunk
                moved = True
            except BlockingIOError:
                pass
        if not moved:
            time.sleep(0.001)  # pacing only: nothing to send or read right now
    for k in range(len(clients)):
        if bytes(got[k]) != data[k]:
            at = next(i for i, (a, b) in enumerate(zip(got[k], data[k])) if a != b)
            fail(f"echo: client {k} got a wrong byte at offset {at}")
        clients[k].close()
    print(f"echo: 2 clients x {total} bytes echoed exactly")


def tick(host, port):
    """One player: sends 6 input bytes, then reads 16-byte state records
    (u64 tick, u32 players, u32 input bytes this tick, little-endian): ticks
    consecutive, the player counted, the input accounted for."""
    s = connect(host, port)
    first = struct.unpack("<QII", recv_exact(s, 16, "first tick record"))
    s.sendall(b"input\n")
    records = [first]
    deadline = time.monotonic() + 10
    inputs = 0
    while len(records) < 15 or inputs < 6:
        if time.monotonic() >= deadline:
            fail(f"tick: after {len(records)} records only {inputs} of 6 input bytes counted")
        records.append(struct.unpack("<QII", recv_exact(s, 16, "tick record")))
        inputs = sum(r[2] for r in records)
    ticks = [r[0] for r in records]
    for a, b in zip(ticks, ticks[1:]):
        if b != a + 1:
            fail(f"tick: records not consecutive: {a} then {b}")
    if any(r[1] < 1 for r in records):
        fail(f"tick: a record counts no player: {records}")
    if records[-1][1] != 1:
        fail(f"tick: the last record counts {records[-1][1]} players, expected 1 (only us)")
    if inputs != 6:
        fail(f"tick: {inputs} input bytes counted, 6 sent")
    s.close()
    print(f"tick: {len(records)} consecutive records (ticks {ticks[0]}..{ticks[-1]}), "
          f"1 player, 6 input bytes counted")


def frame(payload):
    return struct.pack("<I", len(payload)) + payload


def read_packet(s, what):
    (n,) = struct.unpack("<I", recv_exact(s, 4, what + " (header)"))
    if n > 1 << 20:
        fail(f"{what}: a header announces {n} bytes")
    return recv_exact(s, n, what + " (payload)")


def chat(host, port):
    """Two clients in Godot's PacketPeerStream framing: a packet from A
    reaches B exactly (A resends until B is known to the server), then a
    3000-byte binary packet from B reaches A exactly; nobody gets their own."""
    a = connect(host, port)
    b = connect(host, port)
    probe = b"hello from A"
    deadline = time.monotonic() + 10
    while True:
        if time.monotonic() >= deadline:
            fail("chat: B never received A's packet")
        a.sendall(frame(probe))
        # B may not be registered yet when that one is relayed: resend until
        # something arrives for B (select bounds the wait).
        readable, _, _ = select.select([b], [], [], 0.2)
        if readable:
            break
    got = read_packet(b, "chat: B reading A's packet")
    if got != probe:
        fail(f"chat: B got {got!r}, expected {probe!r}")
    big = pattern(9, 3000)
    b.sendall(frame(big))
    # A may first see nothing of its own probes (never its own packets): the
    # next packet A reads must be B's.
    back = read_packet(a, "chat: A reading B's packet")
    if back != big:
        fail(f"chat: A got {len(back)} bytes that are not B's 3000-byte packet")
    a.close()
    b.close()
    print("chat: A -> B and B -> A (3000 bytes) relayed exactly in PacketPeerStream frames")


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("echo", "tick", "chat"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    kind, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    {"echo": echo, "tick": tick, "chat": chat}[kind](host, port)


if __name__ == "__main__":
    main()
