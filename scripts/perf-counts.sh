#!/usr/bin/env bash
# Deterministic per-message counts for the echo servers of the loadtest:
#   syscalls per echoed message      (strace -f -c on the server process)
#   user-space instructions / message (valgrind --tool=callgrind on the server)
# Usage: scripts/perf-counts.sh [IMPL ...]      (default: lunanet tokio mio)
# Env:   PEERS (100), SECONDS (8: load duration), TOOLS ("strace callgrind")
# The server runs alone in its own process (`loadtest --serve`); a second
# `loadtest --addr` process generates 64-byte ping-pong and reports the exact
# number of messages it completed, which divides the server's totals.
set -euo pipefail
cd "$(dirname "$0")/.."
peers=${PEERS:-100}
secs=${SECONDS_LOAD:-8}
tools=${TOOLS:-"strace callgrind"}
impls=${*:-"lunanet tokio mio"}
bin=target/release/examples/loadtest
cargo build --release --example loadtest -q
out=$(mktemp -d)
port_base=$((20000 + RANDOM % 20000))

messages_from() { # total messages completed, from the load generator's JSON
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["msgs_total"] if "msgs_total" in d else d["runs"][0]["msgs_total"])' "$1"
}

n=0
for impl in $impls; do
    for tool in $tools; do
        n=$((n + 1))
        port=$((port_base + n))
        case $tool in
            strace) wrap=(strace -f -c -o "$out/$impl.strace") ;;
            callgrind) wrap=(valgrind -q --tool=callgrind --callgrind-out-file="$out/$impl.cg") ;;
        esac
        "${wrap[@]}" "$bin" --serve --impl "$impl" --addr "127.0.0.1:$port" --seconds $((secs + 8)) >/dev/null 2>&1 &
        server=$!
        for _ in $(seq 100); do
            python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),1)" 2>/dev/null && break
            sleep 0.2
        done
        "$bin" --addr "127.0.0.1:$port" --peers "$peers" --warmup 1 --seconds "$secs" --json > "$out/$impl.$tool.json" || true
        kill -INT $server 2>/dev/null || true
        wait $server 2>/dev/null || true
        msgs=$(messages_from "$out/$impl.$tool.json")
        case $tool in
            strace)
                calls=$(awk '/^[ ]*[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9]+/ && $NF != "total" {s+=$4} END {print s}' "$out/$impl.strace")
                python3 -c "import sys; c,m=int(sys.argv[1]),int(sys.argv[2]); print(f'$impl strace: {c} syscalls / {m} msgs = {c/m:.3f} per message')" "$calls" "$msgs"
                grep -E "recvfrom|sendto|read|write|epoll|accept" "$out/$impl.strace" | awk 'NR<=8 {print "    " $NF, $4}'
                ;;
            callgrind)
                ir=$(callgrind_annotate "$out/$impl.cg" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); t=$1} END {print t}')
                python3 -c "import sys; i,m=int(sys.argv[1]),int(sys.argv[2]); print(f'$impl callgrind: {i} Ir / {m} msgs = {i/m:.0f} instructions per message')" "$ir" "$msgs"
                ;;
        esac
    done
done
echo "raw files in $out"
