#!/usr/bin/env bash
# Ping-pong latency of the lunanet server with the default config (writes
# coalesced once per reactor pass; a reply to a read is written at once)
# against `Config::coalesce_writes(false)` (every put_data written at once),
# in interleaved rounds: default, write-at-once, default, ...
# Prints each run's p50/p99/rate, the per-round p99 ratio and the medians.
# Usage: scripts/latency-coalescing.sh      Env: ROUNDS (6), PEERS (100), SECS (3)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-6}
peers=${PEERS:-100}
secs=${SECS:-3}
bin=target/release/examples/loadtest
cargo build --release --all-features --example loadtest -q
out=$(mktemp -d)
for r in $(seq "$rounds"); do
    "$bin" --impl lunanet --peers "$peers" --seconds "$secs" --json > "$out/default.$r.json"
    "$bin" --impl lunanet --peers "$peers" --seconds "$secs" --write-at-once --json > "$out/at-once.$r.json"
done
python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def load(kind, r):
    d = json.load(open(f"{out}/{kind}.{r}.json"))
    return d["latency_ns"]["p50"], d["latency_ns"]["p99"], d["msgs_per_s"], d["errors"]["total"]
ratios, rows = [], {"default": [], "at-once": []}
print(f"{'round':<6}{'config':<10}{'p50 us':>9}{'p99 us':>9}{'msgs/s':>10}{'errors':>8}")
for r in range(1, rounds + 1):
    got = {k: load(k, r) for k in rows}
    for k, (p50, p99, rate, err) in got.items():
        rows[k].append(got[k])
        print(f"{r:<6}{k:<10}{p50/1e3:>9.1f}{p99/1e3:>9.1f}{rate:>10.0f}{err:>8}")
    ratios.append(got["default"][1] / got["at-once"][1])
med = lambda k, i: statistics.median(x[i] for x in rows[k])
for k in rows:
    print(f"median {k:<10} p50 {med(k,0)/1e3:.1f} us  p99 {med(k,1)/1e3:.1f} us  {med(k,2):.0f} msgs/s")
print("p99 default / write-at-once per round:", " ".join(f"{x:.3f}" for x in ratios))
print(f"median p99 ratio: {statistics.median(ratios):.3f} (target <= 1.1)")
PY
