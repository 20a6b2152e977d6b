#!/usr/bin/env bash
# How many bytes of durable log one pixel hit costs (docs/performance.md, "Durable mode"):
# a release tally with --durable and no timed flush for a minute takes HITS pixel hits with a
# page, title, search referrer, sizes and visit flags, and the journal's size is divided by them.
#
#   scripts/bench/journal_size.sh [HITS]     (default 2000)
set -euo pipefail
cd "$(dirname "$0")/../.."
hits=${1:-2000}
cargo build --release --locked --bin tally >&2
tally=$PWD/target/release/tally
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
"$tally" --data-dir "$work/data" site add acme --tz Europe/Berlin --host acme.example >/dev/null
port=$(scripts/free-port)
"$tally" --data-dir "$work/data" serve --listen "127.0.0.1:$port" --durable \
  --flush-interval-ms 60000 2>/dev/null &
pid=$!
python3 - "$port" "$hits" <<'PY'
import http.client, sys, time
port, hits = int(sys.argv[1]), int(sys.argv[2])
for _ in range(100):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port); c.request("GET", "/healthz"); c.getresponse().read(); break
    except OSError:
        time.sleep(0.1)
ua = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/131.0.0.0 Safari/537.36")
for i in range(hits):
    q = (f"site=acme&url=%2Fblog%2Fpost-{i % 200}&title=Post%20{i % 200}"
         "&ref=https%3A%2F%2Fwww.google.com%2Fsearch%3Fq%3Dtally&sw=1920&bw=1280&bh=800"
         f"&ud=1&um=1&u={i % 2}&vp=1&vt=1")
    # Each hit from a visitor of its own (loopback is a trusted proxy by default).
    xff = f"81.2.{i // 250 % 256}.{i % 250 + 1}"
    c.request("GET", "/t.gif?" + q, headers={"User-Agent": ua, "X-Forwarded-For": xff})
    r = c.getresponse(); r.read()
    assert r.status == 200, r.status
PY
bytes=$(cat "$work/data/durable/journal/"*.log | wc -c)
echo "$hits hits: $bytes bytes of journal, $((bytes / hits)) bytes per hit"
