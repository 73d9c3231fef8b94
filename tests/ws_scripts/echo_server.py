#!/usr/bin/env python3
"""Independent WebSocket server (Python `websockets`) for lunanet's client
tests. Prints `port=N`, serves until stdin closes (or 120 s).

Messages: "fragment-me" -> the text "abc" in three frames; "ping-me" -> a
Ping; "close-me" -> Close 4003 "py bye"; anything else is echoed.
"""
import sys
import threading

from websockets.sync.server import serve


def handler(ws):
    for msg in ws:
        if msg == "fragment-me":
            ws.send(["a", "b", "c"])
        elif msg == "ping-me":
            ws.ping(b"from python")
            ws.send("pinged")
        elif msg == "close-me":
            ws.close(4003, "py bye")
            return
        else:
            ws.send(msg)


def main():
    with serve(handler, "127.0.0.1", 0, subprotocols=["chat", "other"]) as server:
        port = server.socket.getsockname()[1]
        print(f"port={port}", flush=True)
        t = threading.Thread(target=server.serve_forever, daemon=True)
        t.start()
        timer = threading.Timer(120, server.shutdown)
        timer.daemon = True
        timer.start()
        sys.stdin.read()  # the test closes our stdin when done
        server.shutdown()


if __name__ == "__main__":
    main()
