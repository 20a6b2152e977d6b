#!/usr/bin/env python3
"""Start-up cost of `tally serve`: wall time to its `addr=` log line, CPU time and resident
memory (VmRSS, RssAnon, RssFile from /proc) 0.3 s later, on a fresh embedded store; 16 starts,
the first left out. docs/operations.md ("Countries") has its figures.

    scripts/bench/startup.py target/release/tally                      # the defaults
    scripts/bench/startup.py target/release/tally --geoip-db none      # any serve flags
"""
import os, signal, statistics, subprocess, sys, tempfile, time

binary, extra = sys.argv[1], sys.argv[2:]
times, rss, anon, filed, cpu = [], [], [], [], []
tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
for i in range(16):
    data = tempfile.mkdtemp()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
    env["TALLY_DATA_DIR"] = data
    t0 = time.monotonic()
    p = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0"] + extra, env=env,
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    for line in p.stderr:
        if "addr=" in line:
            break
    started = (time.monotonic() - t0) * 1000
    time.sleep(0.3)
    with open(f"/proc/{p.pid}/status") as f:
        status = dict(l.split(":", 1) for l in f.read().splitlines())
    with open(f"/proc/{p.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    p.send_signal(signal.SIGTERM)
    p.wait()
    if i:
        times.append(started)
        cpu.append((int(fields[11]) + int(fields[12])) * tick_ms)
        kib = lambda k: int(status[k].split()[0]) / 1024
        rss.append(kib("VmRSS")); anon.append(kib("RssAnon")); filed.append(kib("RssFile"))
med = statistics.median
print(f"{' '.join(extra) or '(defaults)'}: {len(times)} starts; wall median {med(times):.0f} ms "
      f"(min {min(times):.0f}, max {max(times):.0f}); CPU median {med(cpu):.0f} ms; "
      f"RSS median {med(rss):.1f} MiB (anon {med(anon):.1f}, file {med(filed):.1f})")
