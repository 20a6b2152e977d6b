#!/usr/bin/env bash
# The ingest benchmark: tally (embedded store, and MongoDB through FerretDB) against its own
# empty handler and against GoatCounter, under one realistic request mix (scripts/bench/mix.lua),
# all in one run on this machine. See docs/performance.md for what it prints and how to read it.
#
#   scripts/bench/ingest.sh [--secs 20] [--connections 64] [--stores embedded,mongo,goatcounter]
#                           [--json results.json]
#
# On a fresh Debian machine with Rust, Go and Python it installs what it needs: wrk (Debian's
# package), FerretDB and GoatCounter (built from their Go modules, cached), the free GeoIP
# country database, and a release build of tally.
set -euo pipefail
cd "$(dirname "$0")/../.."

scripts/apt-ensure wrk wrk "for the load"

cargo build --release --locked --bin tally >&2
scripts/ferretdb.sh install >/dev/null
scripts/bench/goatcounter.sh install >/dev/null
GEOIP_DB=$(scripts/geoip.sh install)

exec python3 scripts/bench/ingest.py --tally target/release/tally --wrk "$(command -v wrk)" \
  --geoip-db "$GEOIP_DB" "$@"
