#!/usr/bin/env python3
"""Scale-out calculation for docs/performance.md: what N tracker processes cost MongoDB.

tally writes a document once per flush when at least one hit of the flush touched it, however
many hits did. So what the store sees is not hits but *touched (site, document) pairs per flush
per process*. For a site with r hits/s, a document kind that a hit touches with probability q,
P tracker processes that each get a share of the site's hits, and a flush interval T, the
expected number of upserts per second is

    sum over processes p of (1 - exp(-r_p * T * q)) / T

(hits arrive as a Poisson stream; a document is written by a process's flush iff at least one of
its hits touched it). This script sums that over a Zipf-distributed population of sites, for
two ways of spreading hits over the processes:

  random    any process takes any hit (round-robin / least-connections load balancing)
  by-site   hits of one site go to one process (load balancer hashing on `site`), except that
            a site too big for one process is split over just enough processes

and prints store upserts/s, upserts per hit, the busiest process's hits/s, the most-updated
document's updates/s and the MongoDB shards needed for a given per-shard upsert budget.

The per-hit touch probabilities (`PROFILE`) are those of scripts/bench/mix.lua's mix, read off
the report code; `--calibrate` checks the formula against statements per hit measured by
scripts/bench/ingest.sh on one process.
"""

import argparse
import math

# Document kinds a pixel hit of the benchmark mix touches, with the probability per hit.
PROFILE = {
    "traffic month": 1.0,
    "traffic year": 1.0,
    "technology month": 1.0,
    "resolutions month": 1.0,
    "locations month": 1.0,
    "content month": 1.0,
    "content day": 1.0,
    "engagement day": 1.0,
    "referrers month": 0.40,  # external: search engines 20%, other sites 20%
    "referrers day": 0.40,
    "terms month": 0.20,  # a search engine, with or without a term
    "campaigns month": 0.04,  # utm_* on the page URL
}


def zipf_rates(sites, total, s):
    weights = [1 / (k ** s) for k in range(1, sites + 1)]
    norm = sum(weights)
    return [total * w / norm for w in weights]


def upserts_per_second(rate, processes, interval, profile):
    """Expected upserts/s for one site whose `rate` is split evenly over `processes`."""
    share = rate / processes
    per_process = sum(1 - math.exp(-share * interval * q) for q in profile.values()) / interval
    return processes * per_process


def spread(rates, processes, capacity, policy):
    """For each site: over how many processes its hits are spread."""
    if policy == "random":
        return [processes] * len(rates)
    return [min(processes, max(1, math.ceil(r / capacity))) for r in rates]


def scenario(args, processes, policy):
    rates = zipf_rates(args.sites, args.rate, args.skew)
    ways = spread(rates, processes, args.capacity, policy)
    upserts = sum(upserts_per_second(r, w, args.interval, PROFILE) for r, w in zip(rates, ways))
    if policy == "random":
        busiest = args.rate / processes
    else:
        # Greedy: biggest sites first onto the least-loaded process (what a consistent hash
        # approximates for many sites).
        load = [0.0] * processes
        for r, w in sorted(zip(rates, ways), reverse=True):
            for _ in range(w):
                i = load.index(min(load))
                load[i] += r / w
        busiest = max(load)
    hottest_doc = max(ways) / args.interval  # the biggest site's month documents
    return {
        "processes": processes, "policy": policy, "upserts": upserts,
        "per_hit": upserts / args.rate, "busiest": busiest, "hottest_doc": hottest_doc,
        "shards": math.ceil(upserts / args.shard_budget),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sites", type=int, default=10_000)
    p.add_argument("--rate", type=float, default=100_000, help="hits/s over all sites")
    p.add_argument("--skew", type=float, default=1.0, help="Zipf exponent over sites")
    p.add_argument("--interval", type=float, default=1.0, help="flush interval, s")
    p.add_argument("--capacity", type=float, default=20_000,
                   help="hits/s one tracker process takes comfortably (measured: half its max)")
    p.add_argument("--shard-budget", type=float, default=10_000,
                   help="upserts/s one MongoDB shard (replica set) is given")
    p.add_argument("--processes", default="1,2,4,8,16")
    p.add_argument("--calibrate", type=float, nargs=3, metavar=("SITES", "RATE", "SKEW"),
                   help="print only the one-process prediction for the ingest benchmark's mix")
    args = p.parse_args()

    if args.calibrate:
        sites, rate, skew = args.calibrate
        rates = zipf_rates(int(sites), rate, skew)
        upserts = sum(upserts_per_second(r, 1, args.interval, PROFILE) for r in rates)
        print(f"{int(sites)} sites, {rate:,.0f} hits/s, skew {skew}, flush {args.interval} s: "
              f"{upserts:,.0f} upserts/s, {upserts / rate:.4f} per hit")
        return

    print(f"{args.sites:,} sites, {args.rate:,.0f} hits/s in all, Zipf skew {args.skew}, "
          f"flush every {args.interval} s; a process takes {args.capacity:,.0f} hits/s; "
          f"a shard is given {args.shard_budget:,.0f} upserts/s")
    print()
    print("| processes | load balancing | upserts/s | upserts/hit | busiest process, hits/s "
          "| within capacity | hottest document, updates/s | shards |")
    print("|---|---|---|---|---|---|---|---|")
    for n in (int(x) for x in args.processes.split(",")):
        for policy in ("random", "by-site"):
            r = scenario(args, n, policy)
            print(f"| {n} | {policy} | {r['upserts']:,.0f} | {r['per_hit']:.4f} "
                  f"| {r['busiest']:,.0f} | {'yes' if r['busiest'] <= args.capacity else 'no'} "
                  f"| {r['hottest_doc']:.1f} | {r['shards']} |")


if __name__ == "__main__":
    main()
