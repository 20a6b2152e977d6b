#!/usr/bin/env python3
"""How fast a trivial request answers beside the first-screen summary, idle and under load.

On a store seeded by the reads-over-a-year bench and kept
(`RANGE_READ_KEEP=/some/dir cargo bench --bench range_read`), starts `tally serve` on a copy
of it, and one client reading one request at a time times: 400 `GET /healthz`, 400
`GET /api/v1/sites/bench` (one authorised store read), then 12 rounds of the first-screen
summary of the 16 `sum` sites (each round at least 2.1 s: the summary is kept 2 s per site, so
every one is read from the store). Then the same while wrk sends the ingest benchmark's mix
(scripts/bench/mix.lua) at about 10,000 hits/s, as the bench does. See docs/performance.md.

    scripts/bench/read_floor.py --tally target/release/tally --store /some/dir [-- serve args]
"""

import argparse
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def token(tally, data, site):
    out = subprocess.run(
        [tally, "--data-dir", data, "site", "token", site],
        check=True, capture_output=True, text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def timed(url, token=None):
    headers = {"Authorization": "Bearer " + token} if token else {}
    started = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as r:
        r.read()
        assert r.status == 200, url
    return (time.perf_counter() - started) * 1000


def line(name, ms):
    ms = sorted(ms)
    at = lambda p: ms[min(len(ms) - 1, int(len(ms) * p))]
    return f"  {name:<14} n {len(ms):>4}  p50 {at(0.5):7.2f} ms  p99 {at(0.99):7.2f} ms  max {ms[-1]:7.2f} ms"


def phase(base, bench, sums):
    healthz = [timed(base + "/healthz") for _ in range(400)]
    site = [timed(base + "/api/v1/sites/bench", bench) for _ in range(400)]
    first = []
    for _ in range(12):
        started = time.perf_counter()
        for i, tok in enumerate(sums):
            first.append(timed(f"{base}/api/v1/sites/sum{i:02d}/summary", tok))
        time.sleep(max(0.0, 2.1 - (time.perf_counter() - started)))
    return [line("healthz", healthz), line("site", site), line("first screen", first)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tally", required=True)
    ap.add_argument("--store", required=True, help="a directory kept by RANGE_READ_KEEP")
    ap.add_argument("--port", type=int, default=18700)
    ap.add_argument("serve", nargs="*", help="more `tally serve` arguments")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "store")
        shutil.copytree(args.store, data)
        bench = token(args.tally, data, "bench")
        sums = [token(args.tally, data, f"sum{i:02d}") for i in range(16)]
        base = f"http://127.0.0.1:{args.port}"
        server = subprocess.Popen(
            [args.tally, "--data-dir", data, "serve", "--listen", f"127.0.0.1:{args.port}"]
            + args.serve,
            env=dict(os.environ, TALLY_LOG="warn"), stdout=subprocess.DEVNULL,
        )
        try:
            time.sleep(2)
            print("idle:")
            print("\n".join(phase(base, bench, sums)))
            wrk = subprocess.Popen(
                ["wrk", "-t2", "-c120", "-d3600s", "-s", os.path.join(HERE, "mix.lua"), base,
                 "--", "tally", "1"],
                env=dict(os.environ, MIX_DELAY_MS="10"), stdout=subprocess.PIPE, text=True,
            )
            time.sleep(3)
            loaded = phase(base, bench, sums)
            wrk.send_signal(signal.SIGINT)
            out = wrk.communicate()[0]
            rate = next((l.split()[-1] for l in out.splitlines() if "Requests/sec" in l), "?")
            print(f"while wrk sent {rate} requests/s:")
            print("\n".join(loaded))
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
