#!/usr/bin/env bash
# Where a counted pixel's time goes: a release `tally serve` on the embedded store with the
# ingest benchmark's 100 sites, driven by wrk with scripts/bench/mix.lua, profiled with perf.
#
#   scripts/bench/profile.sh              perf profile of 8 s at full speed, then the flushes
#                                         /metrics counted during 10 s at full speed
#   RENICE=10 scripts/bench/profile.sh    also: two paced runs (150 connections, 10 ms pauses)
#                                         as is, then two with the runtime's blocking threads
#                                         (the embedded store's flushes) reniced to +10
#
# Needs what scripts/bench/ingest.sh installs (wrk, the GeoIP database, a release build) and
# perf (Debian's linux-perf).
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/apt-ensure wrk wrk "for the load"
command -v perf >/dev/null || { echo "needs perf (Debian: linux-perf)" >&2; exit 1; }
cargo build --release --locked --bin tally >&2
GEOIP_DB=$(scripts/geoip.sh install)
tally=target/release/tally
work=$(mktemp -d)
port=$(scripts/free-port)
url=http://127.0.0.1:$port
for i in $(seq 0 99); do
  n=$(printf %02d "$i")
  $tally --data-dir "$work/data" site add "site$n" --tz UTC --host "site$n.example" >/dev/null
done
TALLY_LOG=warn $tally --data-dir "$work/data" serve --listen "127.0.0.1:$port" \
  --geoip-db "$GEOIP_DB" >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
until curl -sf "$url/healthz" >/dev/null; do sleep 0.1; done
load() { wrk -t2 "$@" -s scripts/bench/mix.lua "$url" -- tally 1 | tail -1; }

load -c64 -d5s >/dev/null # warm-up
perf record -F 199 --call-graph dwarf,16384 -p "$pid" -o "$work/perf.data" -- sleep 8 \
  >/dev/null 2>&1 &
load -c64 -d8s
wait $!
perf report -i "$work/perf.data" --children --sort sym --stdio -g none >"$work/report.txt" 2>/dev/null
echo "== share of the server's samples (children included)"
grep -E "\] (tally::track::Tracker::track_at|tally::aggregate::Coalescer::add|<tally::reports::[a-z]+::[A-Za-z]+ as tally::reports::Report>::count|tally::reports::facts::(page|referrer)|tally::track::query::PixelParams::parse|tally::track::geo::GeoDb::country|tally::store::embedded::decode|tally::aggregate::Coalescer::drain)$" \
  "$work/report.txt" || true
awk '/with_conn/ {print $1, "the embedded store (blocking pool)"; exit}' "$work/report.txt"

flushes() { curl -s "$url/metrics" | awk '/^tally_flushes_total/ {s += $2} END {print s}'; }
before=$(flushes)
load -c64 -d10s >/dev/null
echo "== flushes during 10 s at full speed: $(( $(flushes) - before ))"

if [ -n "${RENICE:-}" ]; then
  paced() { MIX_DELAY_MS=10 load -c150 -d10s; }
  echo "== paced, as is"; paced; paced
  for t in /proc/$pid/task/*; do
    [ "$(cat "$t/comm")" = tokio-rt-worker ] && renice -n "$RENICE" -p "$(basename "$t")" >/dev/null
  done
  echo "== paced, blocking threads reniced to +$RENICE"; paced; paced
fi
