#!/usr/bin/env python3
"""The ingest benchmark behind scripts/bench/ingest.sh (which installs what this needs).

For each store (embedded, and MongoDB through FerretDB) it starts a release `tally serve` on
loopback with 100 sites, and drives it with wrk and scripts/bench/mix.lua:

  empty   the same server's empty handler (/healthz) at full speed: the ceiling
  uncounted  the pixel for a site that does not exist, at full speed: HTTP and query parsing
          of the same requests without counting (where the rest of the gap to `empty` is)
  max     the pixel at full speed
  half    the pixel at half the `max` rate (paced connections)
  10k     the pixel at about 10,000 hits/s, for statements per hit

For every phase it reads the server's /metrics and /proc before and after, and prints hits/s,
latency percentiles (wrk's), the server's CPU, its peak RSS, store statements and commands per
hit. After the phases it stops tally with SIGTERM (it writes everything it holds) and checks
that the views in the sites' documents add up, exactly, to the pixel answers tally gave
(`tally_hits_accepted_total` + `tally_hits_rejected_total`; with this mix nothing is rejected).
wrk's own count of 2xx answers is printed beside it: it is lower by the requests in flight when
each phase's time ran out (answered by the server, never read by wrk), at most the number of
connections per phase.

Then GoatCounter, built from its Go module by scripts/bench/goatcounter.sh, gets the same mix at
full speed through its /count endpoint, and the script prints the ratios. Everything runs on
this one machine: the load generator shares the cores with the server, for every contender.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from zoneinfo import ZoneInfo

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MIX = os.path.join(HERE, "mix.lua")
SITES = 100
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney",
         "America/Los_Angeles", "Europe/London", "Asia/Kolkata", "America/Sao_Paulo",
         "Pacific/Auckland"]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def wait_http(url, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            get(url, timeout=1)
            return
        except Exception:
            time.sleep(0.1)
    sys.exit(f"nothing answered at {url} within {seconds} s")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def metrics(base):
    """The counters of tally's /metrics that the phases compare."""
    text = get(f"{base}/metrics")
    out = {}
    for name in ("tally_hits_accepted_total", "tally_store_statements_total",
                 "tally_store_commands_total"):
        m = re.search(rf"^{name} (\S+)$", text, re.M)
        out[name] = float(m.group(1)) if m else 0.0
    out["rejected"] = sum(float(v) for v in
                          re.findall(r"^tally_hits_rejected_total\{[^}]*\} (\S+)$", text, re.M))
    return out


def pending(base):
    """Increments tally holds that are not written yet."""
    m = re.search(r"^tally_pending_increments (\S+)$", get(f"{base}/metrics"), re.M)
    return float(m.group(1)) if m else 0.0


def wrk(args, url, target, secs, connections, threads, delay_ms=0):
    env = dict(os.environ)
    if delay_ms:
        env["MIX_DELAY_MS"] = str(delay_ms)
    cmd = [args.wrk, f"-t{threads}", f"-c{connections}", f"-d{secs}s", "--timeout", "10s",
           "-s", MIX, url, "--", target, str(args.seed)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    line = [l for l in out.splitlines() if l.startswith("{")][-1]
    result = json.loads(line)
    result["rate"] = result["requests"] / (result["duration_us"] / 1e6)
    errors = result["errors"]
    result["ok"] = result["requests"] - errors["status"]
    result["failed"] = errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]
    return result


class Phase:
    """One wrk run against a server process, with the server's counters around it."""

    def __init__(self, name, pid, base=None):
        self.name, self.pid, self.base = name, pid, base

    def run(self, args, url, target, secs, connections, delay_ms=0):
        before = metrics(self.base) if self.base else None
        cpu0 = cpu_seconds(self.pid)
        r = wrk(args, url, target, secs, connections, args.threads, delay_ms)
        r["cpu"] = (cpu_seconds(self.pid) - cpu0) / (r["duration_us"] / 1e6)
        if self.base:
            # The last flush of the phase: after one flush interval, and its own time.
            time.sleep(args.flush_wait + (args.flush_interval_ms or 1000) / 1000 - 1)
            after = metrics(self.base)
            d = {k: after[k] - before[k] for k in after}
            hits = d["tally_hits_accepted_total"]
            r["accepted"] = hits
            r["rejected"] = d["rejected"]
            r["statements_per_hit"] = d["tally_store_statements_total"] / hits if hits else None
            r["commands_per_hit"] = d["tally_store_commands_total"] / hits if hits else None
        r["name"], r["connections"], r["delay_ms"] = self.name, connections, delay_ms
        return r


def paced(phase, args, url, target, rate, delay_ms=10):
    """A run at about `rate` requests/s: enough connections, each pausing `delay_ms`."""
    connections = max(1, round(rate * (delay_ms + 0.4) / 1000))
    probe = phase.run(args, url, target, 3, connections, delay_ms)
    # Correct once for the latency the first guess assumed.
    connections = max(1, round(connections * rate / probe["rate"]))
    result = phase.run(args, url, target, args.secs, connections, delay_ms)
    result["probe"] = probe
    return result


def tally_cmd(args, data, uri):
    cmd = [args.tally, "--data-dir", data]
    if uri:
        cmd += ["--mongodb-uri", uri, "--database", "bench"]
        if not args.mongodb_uri:
            # FerretDB v1 on SQLite hangs on update commands of 100 statements or more that
            # match existing documents (docs/operations.md); MongoDB needs no such limit.
            cmd += ["--mongodb-batch", "50"]
    return cmd


def bench_tally(args, name):
    # `embedded+durable`, `mongo+durable`: the same store with --durable.
    store, _, mode = name.partition("+")
    work = tempfile.mkdtemp(prefix=f"tally-ingest-{store}-")
    data, uri, ferret = os.path.join(work, "data"), None, None
    try:
        if store == "mongo" and args.mongodb_uri:
            uri = args.mongodb_uri  # a real MongoDB; the bench uses the database `bench`
        elif store == "mongo":
            port = free_port()
            os.makedirs(os.path.join(work, "ferretdb"))
            ferret = int(subprocess.run(
                [os.path.join(ROOT, "scripts/ferretdb.sh"), "start",
                 os.path.join(work, "ferretdb"), str(port)],
                capture_output=True, text=True, check=True).stdout.strip())
            uri = f"mongodb://127.0.0.1:{port}/"
        base_cmd = tally_cmd(args, data, uri)
        for i in range(SITES):
            subprocess.run(base_cmd + ["site", "add", f"site{i:02d}", "--tz", ZONES[i % len(ZONES)],
                                       "--host", f"site{i:02d}.example"],
                           check=True, capture_output=True)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        # Default settings: wrk on loopback is a trusted proxy, its X-Forwarded-For the visitor.
        serve = base_cmd + ["serve", "--listen", f"127.0.0.1:{port}"]
        if args.geoip_db:
            serve += ["--geoip-db", args.geoip_db]
        if args.flush_interval_ms:
            serve += ["--flush-interval-ms", str(args.flush_interval_ms)]
        if mode == "durable":
            serve += ["--durable", "--durable-dir", os.path.join(work, "durable")]
        env = dict(os.environ, TALLY_LOG="warn")
        server = subprocess.Popen(serve, env=env, stdout=subprocess.DEVNULL)
        wait_http(f"{base}/healthz")
        phase = lambda name: Phase(name, server.pid, base)
        results = {}
        want = set(args.phases.split(","))
        # Warm-up: the year's collections are created, caches filled; its hits count too.
        warm = phase("warm-up").run(args, base, "tally", 3, args.connections)
        if "empty" in want:
            results["empty"] = phase("empty handler").run(args, base, "empty", args.secs,
                                                          args.connections)
        if "uncounted" in want:
            results["uncounted"] = phase("pixel, unknown site (nothing counted)").run(
                args, base, "uncounted", args.secs, args.connections)
        if "max" in want or "half" in want:
            results["max"] = phase("pixel, full speed").run(args, base, "tally", args.secs,
                                                           args.connections)
        if "half" in want:
            results["half"] = paced(phase("pixel, half of full speed"), args, base, "tally",
                                    results["max"]["rate"] / 2)
        if "10k" in want:
            results["10k"] = paced(phase("pixel, about 10,000/s"), args, base, "tally", 10_000)
        rss = peak_rss_mb(server.pid)
        # A store slower than the hits (FerretDB on these same two cores) leaves a backlog in
        # tally's memory: wait until it is written, and say how long that took.
        started = time.time()
        while pending(base) > 0 and time.time() - started < args.drain_timeout:
            time.sleep(1)
        catch_up = time.time() - started
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=args.drain_timeout)
        except subprocess.TimeoutExpired:
            server.kill()
            code = "killed: the store did not take the backlog in time"
        if code != 0:
            print(f"{store}: tally exited with {code}; the documents are not checked",
                  file=sys.stderr)
        pixel_runs = [warm] + [results[k] for k in ("max", "half", "10k") if k in results] \
            + [results[k]["probe"] for k in ("half", "10k") if k in results]
        answered = sum(r["ok"] for r in pixel_runs)
        accepted = sum(r["accepted"] for r in pixel_runs)
        rejected = sum(r["rejected"] for r in pixel_runs)
        in_flight = sum(r["connections"] for r in pixel_runs)
        counted = count_views(base_cmd) if code == 0 else None
        return {"store": name, "phases": results, "peak_rss_mb": rss, "catch_up_s": catch_up,
                "exit": code,
                "answered_2xx": answered,
                "accepted": accepted, "rejected": rejected, "in_flight": in_flight,
                "counted": counted}
    finally:
        if ferret:
            os.kill(ferret, signal.SIGTERM)
        shutil.rmtree(work, ignore_errors=True)


def count_views(base_cmd):
    """Views in the traffic year documents of every site (their own zone's year)."""
    total = 0
    for i in range(SITES):
        year = datetime.now(ZoneInfo(ZONES[i % len(ZONES)])).year
        out = subprocess.run(base_cmd + ["doc", f"traffic.{year}", f"site{i:02d}:{year}"],
                             capture_output=True, text=True)
        if out.returncode == 0:
            total += int(json.loads(out.stdout).get("v", 0))
    return total


def bench_goatcounter(args):
    work = tempfile.mkdtemp(prefix="tally-ingest-goatcounter-")
    script = os.path.join(HERE, "goatcounter.sh")
    try:
        port = free_port()
        pid = int(subprocess.run([script, "start", work, str(port)], capture_output=True,
                                 text=True, check=True).stdout.strip())
        base = f"http://127.0.0.1:{port}"
        phase = Phase("GoatCounter /count, full speed", pid)
        warm = phase.run(args, base, "goatcounter", 3, args.connections)
        result = phase.run(args, base, "goatcounter", args.secs, args.connections)
        rss = peak_rss_mb(pid)
        os.kill(pid, signal.SIGTERM)
        for _ in range(300):
            if not os.path.exists(f"/proc/{pid}"):
                break
            time.sleep(0.1)
        stored = int(subprocess.run([script, "count", work], capture_output=True, text=True,
                                    check=True).stdout.strip())
        return {"store": "goatcounter", "phases": {"max": result}, "peak_rss_mb": rss,
                "answered_2xx": warm["ok"] + result["ok"], "counted": stored,
                "in_flight": warm["connections"] + result["connections"]}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def ms(us):
    return f"{us / 1000:.2f} ms"


def report(args, runs):
    lines = [f"{args.secs} s per phase, wrk {args.threads} threads; full-speed phases over "
             f"{args.connections} connections; paced phases pause {10} ms per connection.", "",
             "| store | phase | conns | hits/s | p50 | p99 | p99.9 | server CPU | statements/hit "
             "| commands/hit |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        for key in ("empty", "uncounted", "max", "half", "10k"):
            r = run["phases"].get(key)
            if not r:
                continue
            lat = r["latency_us"]
            sph = r.get("statements_per_hit")
            cph = r.get("commands_per_hit")
            lines.append(
                f"| {run['store']} | {r['name']} | {r['connections']} | {r['rate']:,.0f} "
                f"| {ms(lat['p50'])} | {ms(lat['p99'])} | {ms(lat['p999'])} "
                f"| {r['cpu'] * 100:.0f}% | {'' if not sph else f'{sph:.4f}'} "
                f"| {'' if not cph else f'{cph:.5f}'} |")
    lines.append("")
    lines.append("| store | peak RSS | pixel answers (server) | 2xx read by wrk (+ in flight at "
                 "most) | counted in the documents | exact |")
    lines.append("|---|---|---|---|---|---|")
    for run in runs:
        if run["store"] == "goatcounter":
            server, exact = "—", "stored − wrk's 2xx = " + f"{run['counted'] - run['answered_2xx']:,}"
        else:
            answers = int(run["accepted"] + run["rejected"])
            server = f"{answers:,}"
            if run["counted"] is None:
                exact = f"not checked ({run['exit']})"
            else:
                exact = "yes" if run["counted"] == answers and run["rejected"] == 0 else "NO"
        lines.append(f"| {run['store']} | {run['peak_rss_mb']:.1f} MB | {server} "
                     f"| {run['answered_2xx']:,} (+ ≤ {run['in_flight']}) "
                     f"| {'—' if run['counted'] is None else format(run['counted'], ',')} "
                     f"| {exact} |")
    for run in runs:
        if run.get("catch_up_s", 0) > 2:
            lines.append(f"\n{run['store']}: after the last phase the store took "
                         f"{run['catch_up_s']:.0f} s more to take everything tally held.")
    lines.append("")
    by = {run["store"]: run for run in runs}
    for store in ("embedded", "embedded+durable", "mongo", "mongo+durable"):
        if store not in by:
            continue
        p = by[store]["phases"]
        if "max" not in p:
            continue
        if all(k in p for k in ("empty", "uncounted")):
            lines.append(f"- {store}: pixel ÷ empty handler = "
                         f"{p['max']['rate'] / p['empty']['rate']:.2f} (unknown-site pixel ÷ empty "
                         f"handler = {p['uncounted']['rate'] / p['empty']['rate']:.2f}); server CPU "
                         f"per request: empty {p['empty']['cpu'] / p['empty']['rate'] * 1e6:.1f} µs, "
                         f"unknown site {p['uncounted']['cpu'] / p['uncounted']['rate'] * 1e6:.1f} µs, "
                         f"pixel {p['max']['cpu'] / p['max']['rate'] * 1e6:.1f} µs")
        base = store.partition("+")[0]
        if store != base and base in by and "max" in by[base]["phases"]:
            b = by[base]["phases"]["max"]
            lines.append(f"- {store} ÷ {base} hits/s at full speed = {p['max']['rate'] / b['rate']:.2f} "
                         f"(p99 {ms(p['max']['latency_us']['p99'])} vs {ms(b['latency_us']['p99'])})")
        if "goatcounter" in by:
            g = by["goatcounter"]["phases"]["max"]
            lines.append(f"- {store}: tally ÷ GoatCounter hits/s = {p['max']['rate'] / g['rate']:.1f} "
                         f"(p99 {ms(p['max']['latency_us']['p99'])} vs "
                         f"{ms(g['latency_us']['p99'])})")
    for run in runs:
        failed = sum(r["failed"] for r in run["phases"].values())
        if failed:
            lines.append(f"- {run['store']}: {failed} requests failed at the socket (wrk errors)")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tally", required=True)
    p.add_argument("--wrk", default="wrk")
    p.add_argument("--geoip-db")
    p.add_argument("--stores", default="embedded,mongo,goatcounter")
    p.add_argument("--mongodb-uri", help="for the mongo store: this MongoDB instead of FerretDB "
                   "(the database `bench` in it must not exist)")
    p.add_argument("--secs", type=int, default=20)
    p.add_argument("--phases", default="empty,uncounted,max,half,10k",
                   help="which phases to run (half needs max, and runs it)")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--flush-wait", type=float, default=1.5,
                   help="seconds to wait after a phase for tally's last flush of it")
    p.add_argument("--flush-interval-ms", type=int,
                   help="tally's --flush-interval-ms (default: tally's own, 1000)")
    p.add_argument("--drain-timeout", type=float, default=900,
                   help="seconds to wait for tally to write its backlog after the phases")
    p.add_argument("--json", help="also write the raw results here")
    args = p.parse_args()
    runs = []
    for store in args.stores.split(","):
        print(f"== {store}", file=sys.stderr, flush=True)
        if store == "goatcounter":
            runs.append(bench_goatcounter(args))
        else:
            runs.append(bench_tally(args, store))
        # What is known so far, in case a later store fails.
        print(report(args, runs[-1:]), file=sys.stderr, flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(runs, f, indent=1)
    print(f"{datetime.now().strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, "
          f"{os.uname().sysname} {os.uname().release}")
    print(report(args, runs))
    for run in runs:
        if run["store"] == "goatcounter" or run["counted"] is None:
            continue
        if run["counted"] != run["accepted"] + run["rejected"] or run["rejected"]:
            sys.exit(f"{run['store']}: tally's documents do not add up to the hits it answered")
        if not run["answered_2xx"] <= run["counted"] <= run["answered_2xx"] + run["in_flight"]:
            sys.exit(f"{run['store']}: wrk's 2xx answers and the documents disagree")


if __name__ == "__main__":
    main()
