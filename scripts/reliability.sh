#!/usr/bin/env bash
# The heavy variants of tests/reliability.rs, on a release build: the load test with a million
# pixel hits over 256 connections (TEST_LOAD_HITS), and every other reliability test, one at a
# time so their figures do not share the cores. It prints each test's figures (what the
# clients were answered, what the counters hold). Extra arguments go to the test binary, e.g.
# `scripts/reliability.sh load_is` for the load tests alone.
set -euo pipefail
cd "$(dirname "$0")/.."
export TEST_LOAD_HITS=${TEST_LOAD_HITS:-1000000}
exec scripts/test.sh --release --test reliability -- --nocapture --test-threads 1 "$@"
