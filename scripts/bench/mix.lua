-- The request mix of scripts/bench/ingest.sh, for wrk.
--
-- Every wrk thread pre-builds 20,000 requests from a seeded generator in init() and cycles
-- through them, so generating load costs wrk almost nothing per request. One logical hit is
-- written for either target: tally's pixel (`/t.gif`) or GoatCounter's `/count`.
--
--   wrk ... -s scripts/bench/mix.lua http://127.0.0.1:PORT -- TARGET [seed]
--
-- TARGET: tally (the pixel), goatcounter (its /count), empty (tally's /healthz with the same
-- headers), uncounted (the pixel for a site that does not exist: the same request sizes, refused
-- right after the query is parsed, so nothing is counted).
--
-- The mix: 100 sites (Zipf-like, s = 0.8), 2,000 paths per site (Zipf-like, s = 1.0), titles,
-- 50 real browser User-Agents (no crawlers: every hit is countable), referrers (none, internal,
-- search engines with and without terms, social and news sites), screen and window sizes,
-- uniqueness flags, visit starts, campaign parameters on 4% of views, and client addresses from
-- 48 public IPv4 /8 blocks in X-Forwarded-For (tally runs with its default --trust-proxy, which
-- believes wrk on loopback, and a GeoIP database).
--
-- MIX_DELAY_MS=N in the environment makes every connection wait N ms between a response and
-- its next request: the paced runs (a closed loop, like readers pausing between pages).

local uas = {
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0",
  "Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Safari/605.1.15",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
  "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
  "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 16_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/133.0 Mobile/15E148 Safari/605.1.15",
  "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
  "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36",
  "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36",
  "Mozilla/5.0 (Linux; Android 13; SM-S908B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Mobile Safari/537.36",
  "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
  "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-A536B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
  "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
  "Mozilla/5.0 (Linux; Android 12; M2101K6G) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
  "Mozilla/5.0 (Linux; Android 11; Redmi Note 8 Pro) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/128.0.0.0 Mobile Safari/537.36",
  "Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 OPR/86.0.0.0",
  "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 EdgA/131.0.0.0",
  "Mozilla/5.0 (Linux; U; Android 12; zh-CN; V2134A Build/SP1A.210812.003) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/100.0.4896.58 UCBrowser/17.0.6.1322 Mobile Safari/537.36",
  "Mozilla/5.0 (Linux; Android 9; SM-J730F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/114.0.0.0 Mobile Safari/537.36",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Vivaldi/7.0.3495.18",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) YaBrowser/24.10.0.0 Safari/537.36",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0",
  "Mozilla/5.0 (X11; Linux aarch64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Brave/131",
}
assert(#uas == 50, "50 User-Agents")

local sections = { "blog", "docs", "guides", "news", "products", "help", "about", "pricing" }
local words = { "getting-started", "install", "release-notes", "api", "faq", "pricing", "tour",
  "security", "changelog", "roadmap", "privacy", "contact", "careers", "team", "events" }
local engines = {
  { "https://www.google.com/search?q=", true },
  { "https://www.google.de/", false },
  { "https://www.bing.com/search?q=", true },
  { "https://duckduckgo.com/", false },
  { "https://search.yahoo.com/search?p=", true },
  { "https://www.ecosia.org/search?q=", true },
  { "https://yandex.ru/search/?text=", true },
}
local externals = { "https://news.ycombinator.com/", "https://t.co/abc123", "https://www.reddit.com/r/rust/",
  "https://github.com/", "https://lobste.rs/", "https://www.facebook.com/", "https://l.instagram.com/",
  "https://www.linkedin.com/feed/", "https://mastodon.social/@someone/1234", "https://example.org/links" }
local terms = { "self+hosted+analytics", "tally+analytics", "web+counter", "privacy+friendly+stats",
  "gauges+alternative", "rust+web+analytics", "mongodb+counters", "pageview+tracking" }
local screens = { { 1920, 1080 }, { 1366, 768 }, { 1536, 864 }, { 1440, 900 }, { 2560, 1440 },
  { 1280, 720 }, { 390, 844 }, { 393, 873 }, { 414, 896 }, { 360, 800 }, { 768, 1024 }, { 820, 1180 } }
local campaigns = { { "newsletter", "email", "november" }, { "twitter", "social", "launch" },
  { "google", "cpc", "brand" } }

local target = "tally"
local requests = {}
local n = 0

-- A table of cumulative weights 1/k^s, for picking rank k with a Zipf-like skew.
local function zipf(count, s)
  local cdf, total = {}, 0
  for k = 1, count do
    total = total + 1 / k ^ s
    cdf[k] = total
  end
  for k = 1, count do cdf[k] = cdf[k] / total end
  return cdf
end

local function pick(cdf)
  local r, lo, hi = math.random(), 1, #cdf
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < r then lo = mid + 1 else hi = mid end
  end
  return lo
end

local function path_of(rank)
  if rank == 1 then return "/" end
  local section = sections[(rank % #sections) + 1]
  local word = words[(rank % #words) + 1]
  return "/" .. section .. "/" .. word .. "-" .. rank
end

local function title_of(path)
  return (path:gsub("/", " "):gsub("-", " "):gsub("^ ", "")) .. " | Example"
end

local function escape(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

local function referrer(host, r)
  if r < 0.40 then return "" end
  if r < 0.60 then return "https://" .. host .. path_of(math.random(1, 50)) end
  if r < 0.80 then
    local e = engines[math.random(#engines)]
    if e[2] then return e[1] .. terms[math.random(#terms)] end
    return e[1]
  end
  return externals[math.random(#externals)]
end

local function build()
  local site_cdf, path_cdf = zipf(100, 0.8), zipf(2000, 1.0)
  for i = 1, 20000 do
    local site = pick(site_cdf) - 1
    local host = string.format("site%02d.example", site)
    local path = path_of(pick(path_cdf))
    local url = "https://" .. host .. path
    if math.random() < 0.04 then
      local c = campaigns[math.random(#campaigns)]
      url = url .. "?utm_source=" .. c[1] .. "&utm_medium=" .. c[2] .. "&utm_campaign=" .. c[3]
    end
    local ref = referrer(host, math.random())
    local screen = screens[math.random(#screens)]
    local bw, bh = screen[1] - math.random(0, 40), screen[2] - math.random(60, 160)
    local new_day = math.random() < 0.3
    local new_visit = math.random() < 0.35
    local ua = uas[math.random(#uas)]
    local ip = string.format("%d.%d.%d.%d", ({ 8, 31, 46, 62, 77, 81, 88, 91, 94, 109, 134, 141,
      151, 176, 178, 185, 188, 193, 195, 212, 217, 24, 50, 66, 73, 98, 104, 142, 174, 1, 14, 27,
      36, 42, 49, 58, 101, 110, 116, 119, 121, 124, 177, 179, 186, 190, 200, 201 })[math.random(48)],
      math.random(0, 255), math.random(0, 255), math.random(1, 254))
    local query
    if target == "empty" then
      query = "/healthz"
    elseif target == "uncounted" then
      -- The same pixel request for a site that does not exist: HTTP and parsing, no counting.
      query = "/t.gif?site=nosuchsite&url=" .. escape(url) .. "&title=" .. escape(title_of(path))
        .. "&ref=" .. escape(ref) .. "&sw=" .. screen[1] .. "&bw=" .. bw .. "&bh=" .. bh
        .. "&uh=0&ud=0&um=0&uy=0&u=0&vp=1&vt=1763900000000"
    elseif target == "goatcounter" then
      -- GoatCounter's count.js parameters: p path, t title, r referrer, s screen size.
      query = "/count?p=" .. escape(path .. (url:match("%?.*") or "")) .. "&t=" .. escape(title_of(path))
        .. "&r=" .. escape(ref) .. "&s=" .. screen[1] .. "," .. screen[2] .. ",1&b=0&rnd=" .. i
    else
      query = "/t.gif?site=" .. string.format("site%02d", site) .. "&url=" .. escape(url)
        .. "&title=" .. escape(title_of(path)) .. "&ref=" .. escape(ref)
        .. "&sw=" .. screen[1] .. "&bw=" .. bw .. "&bh=" .. bh
        .. "&uh=" .. (new_day and 1 or (math.random() < 0.1 and 1 or 0))
        .. "&ud=" .. (new_day and 1 or 0)
        .. "&um=" .. (new_day and math.random() < 0.5 and 1 or 0)
        .. "&uy=0&u=" .. (new_day and math.random() < 0.3 and 1 or 0)
        .. "&vp=" .. (new_visit and 1 or math.random(2, 6))
        .. "&vt=" .. 1763900000000 + math.random(0, 86400000)
    end
    local headers = { ["User-Agent"] = ua, ["X-Forwarded-For"] = ip }
    if target == "goatcounter" then headers["Host"] = "stats.localhost" end
    requests[i] = wrk.format("GET", query, headers)
  end
  n = 0
end

-- Each thread gets its own number, so the threads send different hits.
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end

function init(args)
  target = args[1] or "tally"
  math.randomseed(tonumber(args[2] or "1") * 1000 + (thread_id or 0))
  build()
end

function request()
  n = n % #requests + 1
  return requests[n]
end

local pause = tonumber(os.getenv("MIX_DELAY_MS") or "")
if pause and pause > 0 then
  function delay() return pause end
end

-- One line of JSON that ingest.py reads; latency in microseconds.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
end
