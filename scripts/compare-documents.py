#!/usr/bin/env python3
"""Do two tally builds write the same documents for the same hits?

    scripts/compare-documents.py OLD_TALLY_BIN NEW_TALLY_BIN [--keep] [--seed N] [--geoip-db PATH]

Starts `tally serve` from each binary, each on a fresh embedded store (its own temporary data
directory) and its own loopback port, with the same settings: a country database (default:
`scripts/geoip.sh install`), `--trust-proxy private` (loopback is a proxy, so `X-Forwarded-For`
names the visitor), the rate limits off (they depend on timing), and a short flush interval (so
the run spans many flushes). Both get the same sites (`tally site add`), then the same request
corpus, interleaved request by request (old, new, old, new...), so both see the same minute:
a pair is never sent within 0.3 s of a minute boundary. The corpus is deterministic for a seed
(timestamps are offsets from the start of the run): pixel hits with every parameter the pixel
reads (url with kept and campaign parameters, referrers from search engines and elsewhere,
titles, screen and window sizes, the uniqueness flags, visits, cohorts), a spread of
User-Agents (desktop, mobile, tablet, consoles, bots, HTTP libraries), public client addresses
(IPv4 and IPv6, through `X-Forwarded-For` and `Forwarded`), opt-outs and foreign pages,
events (`POST /e` single and batched with properties, `GET /e`), visit beacons (`/v`), bad
requests of every kind, and two phases that fill capped documents (a content month to
`--max-keys`, an event property to its 100 values) and one address past its budget of new
keys, each phase after both servers have flushed what came before (what is admitted to a
capped document depends on which flush a key arrives in).

Both servers are then stopped with SIGTERM (which flushes what is pending), and every document
of every collection is read from both SQLite files (table `docs(coll, id, doc)`, `doc` the BSON
bytes; see src/store/embedded.rs) and compared, with the writer marks `_w` removed. The answers
(status, and the JSON of `POST /e`) are compared too. Exit status 0 when everything is the
same, 1 on any difference, 2 when a run could not be made.

Not compared, because they are per-process bookkeeping rather than reports:
- `writers`: one document per process (its pid, host, start time, epoch, heartbeats).
- `parked`: statements a document refused for good, keyed by writer id and time; a healthy run
  writes none, so only their number is compared (it must be 0 on both sides).
- `_w` in every document: the writer marks (random writer ids, flush numbers).
- `created_at` in `sites`: when `tally site add` ran.
Documents keep their key order from the order increments were applied; a difference in order
alone is reported but is not a difference in the documents.

Python 3 standard library only.
"""

import argparse
import datetime
import http.client
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOT_COMPARED = {"writers", "parked"}
SITES = [
    ("acme", ["--tz", "Europe/Berlin", "--name", "Acme", "--host", "acme.example",
              "--host", "*.acme.example", "--keep-param", "id"]),
    ("beta", ["--tz", "America/New_York"]),
    ("kiri", ["--tz", "Pacific/Kiritimati"]),
    ("quiet", ["--tz", "UTC", "--host", "quiet.example", "--honor-dnt", "on"]),
    ("capped", ["--tz", "Asia/Tokyo"]),
    ("forge", ["--tz", "Australia/Adelaide"]),
]
MAX_KEYS = 1000  # tally's default --max-keys
BUDGET = 100  # tally's default --new-keys-per-address
FLUSH_MS = 250


# ---- BSON: just enough to read tally's documents ----------------------------------------------

class Int32(int):
    """A BSON int32, kept apart from int64 (`int`): a change of type is a difference."""

    def __repr__(self):
        return f"Int32({int(self)})"


class Tagged(tuple):
    """A BSON value without a Python type of its own: (type name, payload)."""


def bson_document(data, at=0):
    (size,) = struct.unpack_from("<i", data, at)
    end, at, out = at + size - 1, at + 4, {}
    while at < end:
        kind = data[at]
        at += 1
        nul = data.index(b"\0", at)
        name = data[at:nul].decode("utf-8")
        at = nul + 1
        out[name], at = bson_value(kind, data, at)
    return out, end + 1


def bson_value(kind, data, at):
    if kind == 0x01:
        return struct.unpack_from("<d", data, at)[0], at + 8
    if kind == 0x02:
        (n,) = struct.unpack_from("<i", data, at)
        return data[at + 4:at + 3 + n].decode("utf-8"), at + 4 + n
    if kind in (0x03, 0x04):
        doc, at = bson_document(data, at)
        return (doc if kind == 0x03 else list(doc.values())), at
    if kind == 0x05:
        (n,) = struct.unpack_from("<i", data, at)
        return Tagged(("binary", data[at + 4], data[at + 5:at + 5 + n])), at + 5 + n
    if kind == 0x07:
        return Tagged(("objectid", data[at:at + 12].hex())), at + 12
    if kind == 0x08:
        return data[at] != 0, at + 1
    if kind == 0x09:
        return Tagged(("date", struct.unpack_from("<q", data, at)[0])), at + 8
    if kind == 0x0A:
        return None, at
    if kind == 0x10:
        return Int32(struct.unpack_from("<i", data, at)[0]), at + 4
    if kind == 0x11:
        return Tagged(("timestamp", struct.unpack_from("<Q", data, at)[0])), at + 8
    if kind == 0x12:
        return struct.unpack_from("<q", data, at)[0], at + 8
    if kind == 0x13:
        return Tagged(("decimal128", data[at:at + 16].hex())), at + 16
    raise ValueError(f"BSON type 0x{kind:02x} is not one tally writes")


def read_store(data_dir):
    """{collection: {id: document}} and the collections `colls` lists."""
    conn = sqlite3.connect(os.path.join(data_dir, "tally.sqlite3"))
    try:
        docs = {}
        for coll, ident, blob in conn.execute("SELECT coll, id, doc FROM docs ORDER BY coll, id"):
            doc, _ = bson_document(bytes(blob))
            docs.setdefault(coll, {})[ident] = doc
        listed = {row[0] for row in conn.execute("SELECT coll FROM colls")}
    finally:
        conn.close()
    return docs, listed


# ---- The servers ------------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, label, binary, work, geoip_db):
        self.label, self.binary = label, binary
        self.data_dir = os.path.join(work, label, "data")
        os.makedirs(self.data_dir)
        self.log_path = os.path.join(work, label, "serve.log")
        self.port = None
        self.proc = None
        self.geoip_db = geoip_db

    def cli(self, *args):
        out = subprocess.run([self.binary, "--data-dir", self.data_dir, *args],
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:
            fail(f"{self.label}: `tally {' '.join(args)}` exited {out.returncode}: "
                 f"{out.stderr.strip()}")
        return out.stdout

    def start(self):
        self.port = free_port()
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [self.binary, "--data-dir", self.data_dir, "--log", "warn", "serve",
             "--listen", f"127.0.0.1:{self.port}", "--geoip-db", self.geoip_db,
             "--trust-proxy", "private", "--ingest-rate", "0", "--ingest-address-rate", "0",
             "--flush-interval-ms", str(FLUSH_MS), "--max-keys", str(MAX_KEYS),
             "--new-keys-per-address", str(BUDGET)],
            stdout=log, stderr=subprocess.STDOUT, env=clean_env())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                fail(f"{self.label}: tally serve exited {self.proc.returncode}: {self.log_tail()}")
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        fail(f"{self.label}: not healthy within 60 s: {self.log_tail()}")

    def request(self, method, path, headers=None, body=None):
        """(status, body bytes), one connection per request."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def metric(self, name):
        status, body = self.request("GET", "/metrics")
        if status != 200:
            fail(f"{self.label}: /metrics answered {status}")
        for line in body.decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        fail(f"{self.label}: /metrics has no {name}")

    def stop(self):
        """SIGTERM, which flushes what is pending; the exit status must be 0."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self):
        if not self.proc:
            return
        try:
            code = self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            fail(f"{self.label}: did not stop within 120 s of SIGTERM")
        if code != 0:
            fail(f"{self.label}: exited {code} after SIGTERM: {self.log_tail()}")

    def log_tail(self):
        try:
            with open(self.log_path) as f:
                return "".join(f.readlines()[-15:])
        except OSError:
            return "(no log)"


def clean_env():
    """The environment without TALLY_* settings, so both servers run with the flags alone."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}


def fail(message):
    raise RunError(message)


class RunError(Exception):
    pass


# ---- The corpus -------------------------------------------------------------------------------

SETTLE = "settle"  # both servers flush everything before the next request

USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/16.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.6723.102 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/129.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.70",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0",
    "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/128.0.0.0 YaBrowser/24.10.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) GSA/343.0.695551749 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 6.1; Trident/7.0; rv:11.0) like Gecko",
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko)",
    "Mozilla/5.0 (X11; FreeBSD amd64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Opera/9.80 (J2ME/MIDP; Opera Mini/9.80 (S60; SymbOS; Opera Mobi/23.348; U; en) Presto/2.5.25",
    "SomethingNew/1.0 (unknown platform)",
    # Bots, libraries, automation: not counted.
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "curl/8.5.0",
    "python-requests/2.32.3",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; "
    "+https://openai.com/gptbot)",
    "",
]

ADDRESSES = [
    "8.8.8.8", "1.1.1.1", "9.9.9.9", "208.67.222.222", "81.2.69.142", "46.4.0.1",
    "185.60.216.35", "202.12.27.33", "200.160.2.3", "196.49.0.1", "103.21.244.1",
    "77.88.55.80", "133.1.0.1", "41.203.64.1", "5.255.255.5", "151.101.1.69", "95.216.0.1",
    "177.71.128.1", "62.210.0.1", "210.140.92.1", "2001:4860:4860::8888",
    "2606:4700:4700::1111", "2a01:4f8:c0c:1::1", "2400:cb00::1", "2001:67c:2e8:22::c100:68b",
    "203.0.113.7",  # documentation: not looked up, `unknown`
]

SEARCH_REFERRERS = [
    "https://www.google.com/", "https://www.google.de/search?q=Rust+Analytics",
    "https://www.google.co.uk/search?q=self-hosted%20analytics&hl=en",
    "https://www.google.com/url?q=https://acme.example/", "https://www.bing.com/search?q=tally+app",
    "https://duckduckgo.com/?q=privacy+analytics", "https://search.yahoo.com/search?p=tally",
    "https://uk.search.yahoo.com/search?q=only+q", "https://search.yahoo.co.jp/search?p=%E6%A4%9C%E7%B4%A2",
    "https://www.baidu.com/s?wd=%E7%BB%9F%E8%AE%A1", "https://yandex.ru/search/?text=%D0%B0%D0%BD%D0%B0%D0%BB%D0%B8%D1%82%D0%B8%D0%BA%D0%B0",
    "https://www.ecosia.org/search?q=trees", "https://www.qwant.com/?q=qwant+term",
    "https://www.startpage.com/do/search?query=start+page", "https://search.brave.com/search?q=brave",
    "https://search.naver.com/search.naver?query=naver", "https://search.seznam.cz/?q=seznam",
    "https://www.sogou.com/web?query=sogou", "https://www.so.com/s?q=so360",
    "https://search.daum.net/search?q=daum", "https://www.ask.com/web?q=ask",
    "https://search.aol.com/aol/search?q=aol", "https://kagi.com/search?q=kagi",
    "https://www.mojeek.com/search?q=mojeek", "android-app://com.google.android.googlequicksearchbox",
    "https://www.google.com/search?q=https://acme.example/", "https://www.bing.com/search?q=%20%20Mixed%20CASE%20%20term",
]
OTHER_REFERRERS = [
    "https://news.ycombinator.com/item?id=42", "https://news.ycombinator.com/",
    "https://www.example.org/links.html", "http://example.org:8080/a.b/c", "https://t.co/abc123",
    "https://google.evil.com/?q=not+an+engine", "https://mail.google.com/mail/u/0/",
    "https://acme.example/internal", "https://blog.acme.example/post", "http://localhost:3000/",
    "not a url", "https://%E2%80%A6.example/%00x", "https://xn--caf-dma.example/caf%C3%A9",
    "https://" + "long" * 600 + ".example/",
]
PAGES = [
    "/", "/about", "/blog/hello.html", "/caf%C3%A9", "/a.b.c/d", "/$where", "/(other)",
    "/ctl%00%07x", "/item?id=7&x=1", "/item?x=2&id=8", "/item?id=7", "/p/%EF%BC%8E",
    "/__proto__", "/emoji/%F0%9F%8E%89", "/rtl/%E2%80%8F", "/search?q=x#frag", "/%ZZ%",
    "/" + "deep/" * 500, "/pricing?utm_source=newsletter&utm_medium=email&utm_campaign=black-friday",
    "/launch?utm_source=producthunt&utm_campaign=%20launch%20", "/?ref=hn", "/?source=reddit",
    "/?utm_source=a.b&utm_medium=c$d&utm_campaign=%F0%9F%8E%89",
    "/docs/intro", "/docs/setup", "/docs/api", "/blog/", "/contact",
]
TITLES = [None, "Home", "Hello, world", "Ünïcödé — ✓", "A.B$C", "ctl\x07bell\x00", "x" * 600,
          "\U0001F389 party", "   ", "Pricing", "%ZZ not an escape", "right\u200fto\u202eleft"]
SIZES = [None, "320", "375", "414", "768", "1024", "1280", "1366", "1440", "1536", "1920",
         "2560", "3840", "0", "99999", "100001", "abc", "-5"]


def iso_week(day):
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def cohorts(now):
    today = now.date()
    weeks = [iso_week(today - datetime.timedelta(weeks=k)) for k in range(0, 15)]
    months = []
    y, m = today.year, today.month
    for _ in range(0, 14):
        months.append(f"{y}-{m:02d}")
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return weeks + ["2026-W99", "garbage"], months + ["2026-13", "2026"]


def q(value):
    return urllib.parse.quote(value, safe="")


class Corpus:
    def __init__(self, seed, now):
        self.rng = random.Random(seed)
        self.now_ms = int(now.timestamp() * 1000)
        self.weeks, self.months = cohorts(now)
        self.items = []

    def add(self, method, path, headers=None, body=None, note=""):
        self.items.append((method, path, headers or {}, body, note))

    def sender(self, address=None, ua=None):
        """Headers naming a client: a User-Agent, and the address through a forwarding header
        (one in ten requests has none: the loopback peer itself). A given `address` is always
        forwarded as `X-Forwarded-For`."""
        rng = self.rng
        headers = {"User-Agent": ua if ua is not None else rng.choice(USER_AGENTS)}
        if address:
            headers["X-Forwarded-For"] = address
            return headers
        address = rng.choice(ADDRESSES)
        how = rng.random()
        if how < 0.7:
            headers["X-Forwarded-For"] = address
        elif how < 0.8:
            headers["X-Forwarded-For"] = f"198.51.100.9, {address}, 10.0.0.2"
        elif how < 0.9:
            host = f'"[{address}]"' if ":" in address else address
            headers["Forwarded"] = f"for={host};proto=https"
        # else: no header, the loopback peer itself (`unknown` location)
        return headers

    def ms(self, seconds_ago):
        return self.now_ms - int(seconds_ago * 1000)

    def pixel(self, site, page=None, address=None, extra=None, title=None):
        """A pixel hit with random parameters and headers; with `address`, one that is surely
        counted (a browser, the page's URL, no opt-out) from that address."""
        rng = self.rng
        fixed = address is not None
        hosts = {"acme": ["acme.example", "www.acme.example", "blog.acme.example"],
                 "quiet": ["quiet.example"]}.get(site, [f"{site}.example", "other.example"])
        page = page if page is not None else rng.choice(PAGES)
        pairs = [("site", site)]
        if fixed or rng.random() < 0.9:
            url = page if rng.random() < 0.1 else f"https://{rng.choice(hosts)}{page}"
            pairs.append(("url", url))
        if rng.random() < 0.6:
            pairs.append(("ref", rng.choice(SEARCH_REFERRERS + OTHER_REFERRERS)))
        title = title if title is not None else rng.choice(TITLES)
        if title is not None:
            pairs.append(("title", title))
        for name in ("sw", "bw", "bh"):
            size = rng.choice(SIZES)
            if size is not None:
                pairs.append((name, size))
        for flag in ("uh", "ud", "um", "uy", "u"):
            r = rng.random()
            if r < 0.45:
                pairs.append((flag, "1"))
            elif r < 0.9:
                pairs.append((flag, "0"))
            elif r < 0.95:
                pairs.append((flag, "true"))
        if rng.random() < 0.8:
            pairs.append(("vp", str(rng.choice([1, 1, 1, 2, 3, 4, 5, 7, 12, 25, 60, 0, 100001]))))
            seconds_ago = rng.choice([5, 300, 2400, 3 * 3600, 23 * 3600, 30 * 3600, -600])
            pairs.append(("vt", str(self.ms(seconds_ago))))
        if rng.random() < 0.25:
            pairs.append(("cw", rng.choice(self.weeks)))
        if rng.random() < 0.25:
            pairs.append(("cm", rng.choice(self.months)))
        pairs += extra or []
        if rng.random() < 0.2:
            rest = pairs[1:]
            rng.shuffle(rest)
            pairs = pairs[:1] + rest
        query = "&".join(f"{k}={q(v) if k in ('url', 'ref', 'title') else v}" for k, v in pairs)
        if fixed:
            headers = self.sender(address, USER_AGENTS[0])
            self.add("GET", "/t.gif?" + query, headers, note=f"pixel {site}")
            return
        headers = self.sender()
        r = rng.random()
        page_host = rng.choice(hosts)
        if r < 0.5:
            headers["Referer"] = f"https://{page_host}{page.split('#')[0]}"
        elif r < 0.6:
            headers["Origin"] = f"https://{page_host}"
        elif r < 0.65:
            headers["Referer"] = "https://copycat.example/stolen"
        elif r < 0.68:
            headers["Origin"] = "null"
        r = rng.random()
        if r < 0.08:
            headers["DNT"] = "1"
        elif r < 0.12:
            headers["Sec-GPC"] = "1"
        elif r < 0.14:
            headers["DNT"] = "0"
        self.add("GET", "/t.gif?" + query, headers, note=f"pixel {site}")

    def event(self, site, n=1):
        rng = self.rng
        events = []
        for _ in range(n):
            e = {"site": site, "name": rng.choice(
                ["signup", "purchase", "download", "play.video", "$click", "ünïcode", "x" * 250])}
            if rng.random() < 0.7:
                e["value"] = rng.choice([1, 3, 49, 0, -2, 10 ** 12])
            if rng.random() < 0.7:
                keys = rng.sample(["plan", "source", "seats", "trial", "a.b", "$k", "currency"],
                                  rng.randint(1, 5))
                e["props"] = {k: rng.choice(["pro", "free", 3, True, False, "EUR", "x.y", ""])
                              for k in keys}
            if rng.random() < 0.8:
                e["ts"] = self.ms(rng.choice([1, 120, 7200, 20 * 3600, 30 * 86400, -3600, -60]))
            events.append(e)
        body = events[0] if n == 1 and rng.random() < 0.7 else events
        headers = self.sender()
        headers["Content-Type"] = rng.choice(["application/json", "text/plain;charset=UTF-8"])
        self.add("POST", "/e", headers, json.dumps(body).encode(), note=f"event {site} x{n}")

    def build(self):
        rng = self.rng
        sites = ["acme", "beta", "kiri", "quiet", "forge"]
        for i in range(700):
            r = rng.random()
            site = rng.choice(sites)
            if r < 0.72:
                self.pixel(site)
            elif r < 0.82:
                self.event(site, n=rng.choice([1, 1, 1, 2, 5, 20]))
            elif r < 0.87:
                pairs = [f"site={site}", f"name={q(rng.choice(['signup', 'view.pdf', 'ünï']))}"]
                if rng.random() < 0.6:
                    pairs.append(f"value={rng.choice(['2', '7', '1.5', 'x'])}")
                pairs += [f"p.{k}={v}" for k, v in rng.sample(
                    [("plan", "pro"), ("plan", "x"), ("src", "img"), ("a.b", "c")], 2)]
                if rng.random() < 0.5:
                    pairs.append(f"ts={self.ms(rng.choice([60, 3600, 90000]))}")
                self.add("GET", "/e?" + "&".join(pairs), self.sender(), note="event get")
            elif r < 0.97:
                vt_ago = rng.choice([30, 600, 4000, 20 * 3600, 26 * 3600])
                vd = rng.choice([0, 2500, 8000, 45000, 200000, 1900000])
                pvd = rng.choice([0, 0, 1000, 9000, vd + 1])
                query = f"site={site}&vt={self.ms(vt_ago)}&vd={vd}&pvd={pvd}&ts={self.ms(0)}"
                if rng.random() < 0.1:
                    query = f"site={site}&vd=x"
                self.add(rng.choice(["GET", "POST"]), "/v?" + query, self.sender(),
                         b"" if rng.random() < 0.5 else None, note="visit")
            else:
                self.bad()
        self.bad_all()
        self.capped_phases()
        self.budget_phase()
        self.property_cap_phases()

    def bad(self):
        rng = self.rng
        choice = rng.choice([
            ("GET", "/t.gif", None), ("GET", "/t.gif?url=/x", None), ("GET", "/t.gif?site=BAD!", None),
            ("GET", "/t.gif?site=nosuch&url=/x", None), ("POST", "/e", b"{not json"),
            ("POST", "/e", b'{"site":"acme"}'), ("POST", "/e", b'{"site":"nosuch","name":"x"}'),
            ("GET", "/nowhere", None), ("GET", "/v?site=acme", None),
        ])
        self.add(choice[0], choice[1], self.sender(), choice[2], note="bad")

    def bad_all(self):
        many = "&".join(f"x{i}=1" for i in range(70)) + "&site=beta&url=/after-64-pairs"
        self.add("GET", "/t.gif?" + many, self.sender(), note="70 pairs")
        self.add("GET", "/t.gif?site=beta&site=acme&url=/first-site-wins", self.sender())
        self.add("GET", "/t.gif?site=beta&url=/" + "a" * 70000, self.sender(), note="huge uri")
        self.add("POST", "/e", self.sender(), b"[" + b'{"site":"beta","name":"x"},' * 100 +
                 b'{"site":"beta","name":"x"}]', note="101 events")
        self.add("POST", "/e", self.sender(), json.dumps(
            [{"site": "beta", "name": "a"}, {"site": "kiri", "name": "b"}]).encode(), note="two sites")
        self.add("POST", "/e", self.sender(), json.dumps(
            {"site": "beta", "name": "x", "props": {str(i): i for i in range(6)}}).encode())
        self.add("POST", "/e", self.sender(), json.dumps(
            {"site": "beta", "name": "x", "value": 1.5}).encode())
        self.add("POST", "/e", self.sender(), b'{"site":"beta","name":"' + b"x" * 70000 + b'"}',
                 note="too large")
        self.add("POST", "/e", {**self.sender(), "Origin": "https://copycat.example"},
                 json.dumps({"site": "acme", "name": "foreign"}).encode())
        self.add("POST", "/e", {**self.sender(), "DNT": "1"},
                 json.dumps({"site": "quiet", "name": "optout"}).encode())
        self.add("OPTIONS", "/e", self.sender())
        self.add("GET", "/t.js", self.sender())

    def capped_phases(self):
        """`capped`'s content month to exactly --max-keys, from addresses within their budget;
        after a flush, new pages (counted under `(other)`) and named ones."""
        addresses = [f"{20 + i * 9}.{i + 1}.3.4" for i in range(20)]
        per = MAX_KEYS // len(addresses)
        assert per < BUDGET
        for i in range(MAX_KEYS):
            self.pixel("capped", page=f"/long-tail/{i}", address=addresses[i // per],
                       title=f"Page {i}")
        self.items.append(SETTLE)
        for i in range(60):
            self.pixel("capped", page=f"/late/{i}", address=addresses[i % 3])
            self.pixel("capped", page=f"/long-tail/{i * 7}", address=addresses[5])

    def budget_phase(self):
        """One address brings 130 new pages and referrers to `forge`: 100 are named."""
        for i in range(130):
            self.pixel("forge", page=f"/forged/{i}", address="45.33.32.156",
                       extra=[("ref", f"https://spam{i}.example/x")])

    def property_cap_phases(self):
        """An event property to its 100 values (two batches from two addresses, each within its
        budget), then, after a flush, 20 more (counted under `(other)`) and 5 named ones."""
        def batch(values):
            return json.dumps([{"site": "kiri", "name": "login", "props": {"user": f"u{v}"},
                                "ts": self.ms(60)} for v in values]).encode()
        self.add("POST", "/e", self.sender("172.104.1.1"), batch(range(50)))
        self.add("POST", "/e", self.sender("172.104.1.2"), batch(range(50, 100)))
        self.items.append(SETTLE)
        self.add("POST", "/e", self.sender("172.104.1.3"), batch(range(95, 120)))


# ---- Running and comparing --------------------------------------------------------------------

def settle(servers):
    """Until nothing is pending on either, then two more flush intervals: what came before is
    admitted (or not) before what comes next."""
    deadline = time.monotonic() + 60
    while any(s.metric("tally_pending_increments") for s in servers):
        if time.monotonic() > deadline:
            fail("increments still pending after 60 s")
        time.sleep(0.05)
    time.sleep(3 * FLUSH_MS / 1000)


def away_from_minute_boundary():
    into = time.time() % 60
    if into > 59.7:
        time.sleep(60 - into + 0.05)


def answer(method, status, body, path):
    if method == "POST" and path.startswith("/e") and body[:1] == b"{":
        try:
            return status, json.loads(body)
        except ValueError:
            pass
    return status, None


def send_all(corpus, old, new):
    differences = []
    sent = 0
    statuses = {}
    for item in corpus.items:
        if item == SETTLE:
            settle([old, new])
            continue
        method, path, headers, body, note = item
        away_from_minute_boundary()
        got = []
        for server in (old, new):
            try:
                status, data = server.request(method, path, headers, body)
            except OSError as e:
                status, data = f"error: {type(e).__name__}", b""
            got.append(answer(method, status, data, path))
        sent += 1
        statuses[got[0][0]] = statuses.get(got[0][0], 0) + 1
        if got[0] != got[1]:
            differences.append((method, path[:120], note, got[0], got[1]))
    return sent, differences, statuses


def canon(value):
    """A value with dictionaries in key order, for comparing regardless of field order."""
    if isinstance(value, dict):
        return ("doc", tuple(sorted((k, canon(v)) for k, v in value.items())))
    if isinstance(value, list):
        return ("array", tuple(canon(v) for v in value))
    return (type(value).__name__, value)


def key_order(value):
    if isinstance(value, dict):
        return [(k, key_order(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [key_order(v) for v in value]
    return None


def leaves(value):
    if isinstance(value, dict):
        return sum(leaves(v) for v in value.values())
    if isinstance(value, list):
        return sum(leaves(v) for v in value) or 1
    return 1


def diff_paths(old, new, path=""):
    """The paths where two documents differ, with both values (missing: `<absent>`)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in list(old) + [k for k in new if k not in old]:
            p = f"{path}.{k}" if path else k
            if k not in new:
                out.append((p, old[k], "<absent>"))
            elif k not in old:
                out.append((p, "<absent>", new[k]))
            else:
                out += diff_paths(old[k], new[k], p)
        return out
    return [] if canon(old) == canon(new) else [(path, old, new)]


def normalise(coll, doc):
    doc = dict(doc)
    doc.pop("_w", None)
    if coll == "sites":
        doc.pop("created_at", None)
    return doc


def compare_stores(old_dir, new_dir, out):
    old_docs, old_listed = read_store(old_dir)
    new_docs, new_listed = read_store(new_dir)
    differences = 0
    for coll in sorted(NOT_COMPARED):
        a, b = len(old_docs.get(coll, {})), len(new_docs.get(coll, {}))
        out(f"not compared: {coll} ({a} old, {b} new documents)")
        if coll == "parked" and (a or b):
            out(f"  DIFFERENCE: parked statements in a healthy run ({a} old, {b} new)")
            differences += 1
    if old_listed != new_listed:
        out(f"DIFFERENCE: collections listed (table colls): only old {sorted(old_listed - new_listed)}, "
            f"only new {sorted(new_listed - old_listed)}")
        differences += 1
    colls = sorted((set(old_docs) | set(new_docs)) - NOT_COMPARED)
    total_docs = total_fields = reordered = 0
    out(f"{'collection':<22} {'documents':>9} {'fields':>8}")
    for coll in colls:
        a, b = old_docs.get(coll, {}), new_docs.get(coll, {})
        fields = 0
        for ident in sorted(set(a) | set(b)):
            if ident not in b:
                out(f"  DIFFERENCE: {coll} {ident}: only in old")
                differences += 1
                continue
            if ident not in a:
                out(f"  DIFFERENCE: {coll} {ident}: only in new")
                differences += 1
                continue
            da, db = normalise(coll, a[ident]), normalise(coll, b[ident])
            fields += leaves(da)
            paths = diff_paths(da, db)
            if paths:
                differences += 1
                out(f"  DIFFERENCE: {coll} {ident}: {len(paths)} field(s)")
                for p, va, vb in paths[:10]:
                    out(f"    {p}: old {short(va)}, new {short(vb)}")
            elif key_order(da) != key_order(db):
                reordered += 1
        out(f"{coll:<22} {len(a):>9} {fields:>8}" + ("" if len(a) == len(b) else f" (new: {len(b)})"))
        total_docs += len(a)
        total_fields += fields
    out(f"{len(colls)} collections, {total_docs} documents, {total_fields} fields compared "
        f"(without _w; sites without created_at)")
    if reordered:
        out(f"note: {reordered} documents hold the same fields in another order (not a difference)")
    return differences, total_docs


def short(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def version(binary):
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.strip() or f"(exit {out.returncode})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", help="the tally binary taken as the reference")
    parser.add_argument("new", help="the tally binary compared with it")
    parser.add_argument("--seed", type=int, default=20261123, help="the corpus's random seed")
    parser.add_argument("--geoip-db", help="a country database (default: scripts/geoip.sh install)")
    parser.add_argument("--keep", action="store_true", help="keep the data directories and logs")
    args = parser.parse_args()
    geoip = args.geoip_db or subprocess.run(
        [os.path.join(REPO, "scripts", "geoip.sh"), "install"], capture_output=True, text=True,
        check=True).stdout.strip()
    work = tempfile.mkdtemp(prefix="tally-compare-")
    servers = []
    try:
        old = Server("old", os.path.abspath(args.old), work, geoip)
        new = Server("new", os.path.abspath(args.new), work, geoip)
        servers = [old, new]
        print(f"old: {args.old} ({version(old.binary)})")
        print(f"new: {args.new} ({version(new.binary)})")
        for server in servers:
            for site, flags in SITES:
                server.cli("site", "add", site, *flags)
        now = datetime.datetime.now(datetime.timezone.utc)
        corpus = Corpus(args.seed, now)
        corpus.build()
        for server in servers:
            server.start()
        started = time.monotonic()
        sent, answers, statuses = send_all(corpus, old, new)
        for server in servers:
            server.stop()
        for server in servers:
            server.wait()
        print(f"{sent} requests sent to each, interleaved, in {time.monotonic() - started:.1f} s "
              f"(seed {args.seed}, {len(SITES)} sites)")
        for method, path, note, a, b in answers[:20]:
            print(f"  DIFFERENCE in the answer to {method} {path} ({note}): old {a}, new {b}")
        by_status = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items(), key=str))
        print(f"answers: {'identical' if not answers else f'{len(answers)} differ'} "
              f"(old's by status: {by_status})")
        differences, documents = compare_stores(old.data_dir, new.data_dir, print)
        if documents == 0:
            fail("no documents were written: the run did not count anything")
        differences += len(answers)
        print("identical" if not differences else f"DIFFERENT: {differences} difference(s)")
        return 0 if not differences else 1
    except RunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        for server in servers:
            if server.proc and server.proc.poll() is None:
                server.proc.kill()
                server.proc.wait()
        if args.keep:
            print(f"kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
