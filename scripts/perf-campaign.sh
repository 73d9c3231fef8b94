#!/usr/bin/env bash
# The measurement campaign behind docs/performance.md. Runs every --compare
# scenario of the loadtest (lunanet, tokio current_thread and hand-written mio
# servers interleaved A B C A B C ..., ROUNDS rounds) and prints the median of
# the per-round ratios. Run it on an otherwise idle machine; takes ~15 min.
# Usage: scripts/perf-campaign.sh [OUTDIR]     Env: ROUNDS (6), SECS (5)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-$(mktemp -d)}
mkdir -p "$out"
rounds=${ROUNDS:-6}
secs=${SECS:-5}
bin=target/release/examples/loadtest
cargo build --release --example loadtest -q
ulimit -n "$(ulimit -Hn)"

run() { # name, loadtest flags...
    local name=$1; shift
    echo "== $name: loadtest --compare --rounds $rounds --seconds $secs $*" >&2
    "$bin" --compare --rounds "$rounds" --seconds "$secs" --json "$@" > "$out/$name.json"
}

run pingpong-1 --peers 1
run pingpong-100 --peers 100
run pingpong-1000 --peers 1000
run bulk-1 --mode bulk --peers 1
run broadcast-1000 --mode broadcast --peers 1000

python3 - "$out" <<'PY'
import json, statistics, sys, pathlib
out = pathlib.Path(sys.argv[1])
print(f"| scenario | msgs/s lunanet/tokio | msgs/s lunanet/mio | server CPU per msg lunanet/tokio | lunanet/mio | errors | per-round rate vs mio |")
print("|---|---|---|---|---|---|---|")
for f in sorted(out.glob("*.json")):
    d = json.load(open(f))
    runs = d["runs"]
    by = {}
    for i, r in enumerate(runs):
        by.setdefault(i // 3, {})[r["impl"]] = r
    rate_t, rate_m, cpu_t, cpu_m = [], [], [], []
    errors = sum(r["errors"]["total"] for r in runs)
    for rnd in by.values():
        l, t, m = rnd["lunanet"], rnd["tokio"], rnd["mio"]
        rate_t.append(l["msgs_per_s"] / t["msgs_per_s"])
        rate_m.append(l["msgs_per_s"] / m["msgs_per_s"])
        cpu_t.append(l["server_cpu_s_per_million"] / t["server_cpu_s_per_million"])
        cpu_m.append(l["server_cpu_s_per_million"] / m["server_cpu_s_per_million"])
    med = lambda xs: f"{statistics.median(xs):.2f}"
    spread = " ".join(f"{x:.2f}" for x in rate_m)
    print(f"| {f.stem} | {med(rate_t)} | {med(rate_m)} | {med(cpu_t)} | {med(cpu_m)} | {errors} | {spread} |")
    for impl in ("lunanet", "tokio", "mio"):
        rs = [rnd[impl] for rnd in by.values()]
        print(f"|   {impl} (median) | {statistics.median(r['msgs_per_s'] for r in rs)/1000:.1f} k/s | | {statistics.median(r['server_cpu_s_per_million'] for r in rs):.3f} µs/msg | | | p99 {statistics.median(r['latency_ns']['p99'] for r in rs)/1000:.0f} µs |")
PY
echo "raw JSON in $out" >&2
