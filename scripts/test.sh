#!/usr/bin/env bash
# The test command. On a fresh Debian machine with Rust, Go and Python it installs what the tests
# need (Debian's nodejs for the dashboard's JavaScript unit tests, which it runs first; FerretDB
# v1, the MongoDB-protocol server, built once; Shopify's toxiproxy, built once, for the
# network-fault tests; Debian's chromium for the browser test; nginx and openssl for the
# reverse-proxy tests), starts FerretDB on a free loopback port, runs the whole suite against it
# and the embedded store, and stops it. Extra arguments go to `cargo test`. The suite runs with
# the `fuzz` feature, which builds tests/fuzz.rs (without it, tests/fuzz_feature.rs fails the run).
set -euo pipefail
cd "$(dirname "$0")/.."

# The dashboard's JavaScript unit tests: a second, no server, so first; a failure stops here.
scripts/apt-ensure node nodejs "for the dashboard's unit tests"
node --test src/dashboard/js/test/*.test.mjs

# Headless Chromium, for the test that runs the real snippet in a real browser.
scripts/apt-ensure chromium chromium "for the browser test"
# nginx in front of tally, with a certificate made by openssl, for tests/proxy.rs. Installing
# Debian's nginx may start a system nginx on port 80: the tests never use 80 or 443.
scripts/apt-ensure nginx nginx "for the reverse-proxy tests"
scripts/apt-ensure openssl openssl "for the reverse-proxy tests"
# Debian's nginx is in /usr/sbin, which a non-root PATH may not have.
TEST_NGINX_BIN=${TEST_NGINX_BIN:-$(PATH=$PATH:/usr/sbin command -v nginx)}
export TEST_NGINX_BIN

FERRETDB=$(scripts/ferretdb.sh install)
work=$(mktemp -d)
port=$(scripts/free-port)
pid=$(scripts/ferretdb.sh start "$work/ferretdb" "$port")
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
echo "FerretDB $("$FERRETDB" --version | awk '/version:/ {print $2}') on 127.0.0.1:$port" >&2

export TEST_MONGODB_URI="mongodb://127.0.0.1:$port/"
export TEST_FERRETDB_BIN="$FERRETDB"
# toxiproxy between tally and a FerretDB of the test's own, for tests/faults.rs.
TEST_TOXIPROXY_BIN=$(scripts/toxiproxy.sh install)
export TEST_TOXIPROXY_BIN
# The built-in country database as a file, for the tests that pass one with --geoip-db
# (unpacked from data/geoip/, no network).
GEOIP_DB=$(scripts/geoip.sh install)
export TEST_GEOIP_DB="$GEOIP_DB"
cargo test --locked --features fuzz "$@"
