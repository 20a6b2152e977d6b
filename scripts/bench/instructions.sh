#!/usr/bin/env bash
# Instructions per pixel request, counted by valgrind's callgrind: repeatable where wall-clock
# benchmarks on a shared machine are not (docs/performance.md). A release `tally serve` with
# the ingest benchmark's 100 sites runs under callgrind while wrk sends scripts/bench/mix.lua's
# pixel hits for 30 s over 8 connections; then the instructions of the whole request
# (actix's dispatcher, handler included) and of the hit path's parts are divided by the hits.
#
#   scripts/bench/instructions.sh [BINARY [serve flags...]]
#
# Without BINARY it builds and measures this tree's. To compare with an older commit, build it
# in a worktree and pass its binary (and the flags its version needed, e.g. --trust-proxy).
# Needs valgrind and wrk (Debian's packages) and the GeoIP database (scripts/geoip.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/apt-ensure valgrind valgrind "for counting instructions"
scripts/apt-ensure wrk wrk "for the load"
if [ $# -gt 0 ]; then
  bin=$(realpath "$1"); shift
else
  cargo build --release --locked --bin tally >&2
  bin=$PWD/target/release/tally
fi
GEOIP_DB=$(scripts/geoip.sh install)
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(scripts/free-port)
url=http://127.0.0.1:$port
for i in $(seq 0 99); do
  n=$(printf %02d "$i")
  "$bin" --data-dir "$work/data" site add "site$n" --tz UTC --host "site$n.example" >/dev/null
done
TALLY_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" \
  "$bin" --data-dir "$work/data" serve --listen "127.0.0.1:$port" --geoip-db "$GEOIP_DB" "$@" \
  >/dev/null 2>"$work/valgrind.log" &
pid=$!
until curl -sf "$url/healthz" >/dev/null; do sleep 0.5; done
wrk -t1 -c8 -d30s -s scripts/bench/mix.lua "$url" -- tally 1 >/dev/null
hits=$(curl -s "$url/metrics" | awk '/^tally_hits_(accepted|rejected)_total/ {s += $2} END {print s}')
kill -INT "$pid"
wait "$pid" || true
echo "$hits pixel requests answered"
# Each part's inclusive instructions at its call site (`=> file:function (calls)`), per request.
callgrind_annotate --inclusive=yes "$work/callgrind.out" 2>/dev/null | python3 -c '
import re, sys
hits = int(sys.argv[1])
parts = ["Dispatcher<T,S,B,X,U> as core::future::future::Future>::poll", "Tracker::admit",
         "Tracker::admit_from", "client::client_ip", "client::client_address",
         "Tracker::try_track", "PixelParams::parse", "KeyBudget::vouch", "Coalescer::add"]
best = {}
for line in sys.stdin:
    m = re.match(r"\s*([0-9,]+) \([ 0-9.]+%\)\s+=> [^:]*?:(.+?) \(([0-9,]+)x\)", line)
    if not m:
        continue
    cost, name = int(m.group(1).replace(",", "")), m.group(2)
    for part in parts:
        if name.endswith(part):
            best[part] = max(best.get(part, 0), cost)
for part in parts:
    if part in best:
        name = "the whole request (actix h1 Dispatcher::poll)" if "Dispatcher" in part else part
        print(f"{best[part] / hits:>9,.0f}  {name}")
' "$hits"
