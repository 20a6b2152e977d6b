//! The hit path without HTTP: query string + User-Agent (+ client address) → merged increments
//! in the coalescer, for every report.
//!
//! `TEST_GEOIP_DB=$(scripts/geoip.sh install) cargo bench --bench hit_path`; without the
//! variable the country lookup is left out (and said so). Results and the machine in
//! docs/performance.md.

use actix_web::http::header::{self, HeaderMap, HeaderValue};
use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::net::IpAddr;
use std::sync::Arc;
use tally::aggregate::admission::Admission;
use tally::aggregate::Coalescer;
use tally::field::Key;
use tally::metrics::Metrics;
use tally::period::{system_clock, LocalTime};
use tally::settings::ServeSettings;
use tally::site::{parse_time_zone, Site, SiteId, SiteRegistry};
use tally::track::agent::Agent;
use tally::track::budget::KeyBudget;
use tally::track::client::TrustProxy;
use tally::track::geo::GeoDb;
use tally::track::limit::{IngestLimits, RateLimit};
use tally::track::query::PixelParams;
use tally::track::sender::Sender;
use tally::track::Tracker;

/// A hit carrying every field: a page with campaign parameters and a title, a search referrer
/// with a term, sizes and flags.
const QUERY: &str =
    "site=acme&url=https%3A%2F%2Facme.example%2Fblog%2F2024%2Fhello-world%3Futm_source%3Dnews\
%26utm_medium%3Demail%26utm_campaign%3Dlaunch\
&ref=https%3A%2F%2Fwww.google.com%2Fsearch%3Fq%3Dself%2Bhosted%2Banalytics\
&title=Hello%2C%20world%20%E2%80%94%20Acme%20Blog\
&sw=1920&bw=1280&bh=720&uh=1&ud=1&um=0&uy=0&u=0";

/// Public addresses in several countries, so lookups do not all hit one cached path.
const ADDRESSES: [&str; 4] = ["8.8.8.8", "81.2.69.160", "2001:4860:4860::8888", "1.1.1.1"];

const AGENTS: [&str; 5] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
];

fn tracker(geo: Option<Arc<GeoDb>>) -> Tracker {
    let sites = SiteRegistry::default();
    sites.replace(vec![Site {
        id: SiteId::parse("acme").unwrap(),
        tz: parse_time_zone("America/New_York").unwrap(),
        name: "acme".into(),
        hosts: vec!["acme.example".into()],
        keep_params: vec![],
        tokens: Vec::new(),
        public: false,
        honor_dnt: false,
        created_at: Utc::now(),
    }]);
    Tracker {
        sites: Arc::new(sites),
        // Large enough never to refuse during a run; drained below so it stays small.
        coalescer: Arc::new(Coalescer::new(usize::MAX, usize::MAX)),
        metrics: Arc::new(Metrics::new()),
        clock: system_clock(),
        geo,
        trust: TrustProxy::None,
        limits: IngestLimits::new(None, None),
        budget: None,
        live_minutes: true,
        people: {
            // The site's people key for the year, as the site refresh loads it.
            let keys = tally::track::people::PeopleKeys::default();
            let year = chrono::Datelike::year(&Utc::now());
            for year in [year - 1, year, year + 1] {
                let key = tally::reports::people::Key([7; 16]);
                keys.insert(&SiteId::parse("acme").unwrap(), year, key);
            }
            Arc::new(keys)
        },
    }
}

fn hit_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("hit");
    g.throughput(Throughput::Elements(1));

    let geo = std::env::var_os("TEST_GEOIP_DB").map(|path| {
        Arc::new(GeoDb::open(std::path::Path::new(&path)).expect("the country database opens"))
    });
    if geo.is_none() {
        eprintln!("TEST_GEOIP_DB is not set: measuring without the country lookup");
    }
    let addresses: Vec<IpAddr> = ADDRESSES.iter().map(|a| a.parse().unwrap()).collect();
    let name = if geo.is_some() {
        "full hit (every report, GeoIP)->merged increments"
    } else {
        "full hit (every report, no GeoIP)->merged increments"
    };
    let t = tracker(geo.clone());
    let mut i = 0usize;
    g.bench_function(name, |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let ua = AGENTS[i % AGENTS.len()];
            let ip = addresses[i % addresses.len()];
            black_box(t.track(black_box(QUERY), black_box(ua), Some(ip))).unwrap();
        })
    });
    black_box(t.coalescer.drain());

    // The same, with a page and a referrer never seen before on every hit (the per-thread
    // facts caches miss): the cost of the first view of a page.
    let fresh: Vec<String> = (0..50_000)
        .map(|n| {
            QUERY
                .replace("hello-world", &format!("post-{n}"))
                .replace("analytics", &format!("analytics-{n}"))
        })
        .collect();
    let name = if geo.is_some() {
        "full hit, new page and referrer (GeoIP)->merged increments"
    } else {
        "full hit, new page and referrer (no GeoIP)->merged increments"
    };
    g.bench_function(name, |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let ua = AGENTS[i % AGENTS.len()];
            let ip = addresses[i % addresses.len()];
            let q = &fresh[i % fresh.len()];
            black_box(t.track(black_box(q), black_box(ua), Some(ip))).unwrap();
            if i.is_multiple_of(4096) {
                black_box(t.coalescer.drain());
            }
        })
    });
    black_box(t.coalescer.drain());

    // The same hits with the checks a request gets over HTTP with the defaults, behind a proxy
    // on loopback: the client address from X-Forwarded-For (the default trust), the rate limits
    // per sender and per address (10/s burst 30, 200/s burst 2,000) over 65,536 addresses and
    // 5 User-Agents, the budget of new keys, the Origin against the site's hosts, and the
    // DNT/GPC headers. Each sender comes back about once a second, each address every 65,536
    // hits: under their limits.
    let many: Vec<IpAddr> = (0..65_536u32)
        .map(|n| IpAddr::from(std::net::Ipv4Addr::from(0x5000_0000 + n * 7)))
        .collect();
    let forwarded: Vec<HeaderValue> = many
        .iter()
        .map(|ip| HeaderValue::from_str(&ip.to_string()).unwrap())
        .collect();
    let defaults = ServeSettings::default();
    let (sender_limit, address_limit) = defaults.ingest_limits();
    let base = tracker(geo.clone());
    let budget = KeyBudget::new(
        defaults.new_keys_per_address,
        Arc::clone(base.coalescer.named()),
    );
    let limited = Tracker {
        trust: defaults.trust_proxy.clone(),
        limits: IngestLimits::new(sender_limit, address_limit),
        budget: Some(budget),
        ..base
    };
    // As after the first flush: the flusher's books name the hit's keys, so the budget of new
    // keys costs a lookup per item, as on a running server.
    limited
        .track(QUERY, AGENTS[0], None)
        .expect("the hit is counted");
    let mut drained = limited.coalescer.drain();
    let mut admission = Admission::new(defaults.max_keys, Arc::clone(limited.coalescer.named()));
    for key in admission.missing(&drained) {
        admission.load(key, None);
    }
    admission.resolve(&mut drained);
    let proxy: Option<IpAddr> = Some("127.0.0.1".parse().unwrap());
    let mut headers = HeaderMap::new();
    headers.insert(
        header::ORIGIN,
        HeaderValue::from_static("https://www.acme.example"),
    );
    headers.insert(
        header::HeaderName::from_static("dnt"),
        HeaderValue::from_static("1"),
    );
    let name = if geo.is_some() {
        "full hit + address, rate limits, budget, Origin and DNT (GeoIP)->merged increments"
    } else {
        "full hit + address, rate limits, budget, Origin and DNT (no GeoIP)->merged increments"
    };
    g.bench_function(name, |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let ua = AGENTS[i % AGENTS.len()];
            headers.insert(header::USER_AGENT, HeaderValue::from_static(ua));
            headers.insert(header::X_FORWARDED_FOR, forwarded[i % many.len()].clone());
            let client = limited.admit_from(proxy, black_box(&headers)).unwrap();
            let sender = Sender::from_headers(black_box(&headers));
            black_box(limited.track_from(black_box(QUERY), black_box(ua), client.ip, sender))
                .unwrap();
            if i.is_multiple_of(4096) {
                black_box(limited.coalescer.drain());
            }
        })
    });
    black_box(limited.coalescer.drain());
    // The same without the address, limits and budget, to tell their share from the header
    // checks'.
    let unlimited = tracker(geo.clone());
    g.bench_function(
        "full hit + Origin and DNT checks, no address, limits or budget->merged increments",
        |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                let ua = AGENTS[i % AGENTS.len()];
                let ip = many[i % many.len()];
                let sender = Sender::from_headers(black_box(&headers));
                black_box(unlimited.track_from(black_box(QUERY), black_box(ua), Some(ip), sender))
                    .unwrap();
                if i.is_multiple_of(4096) {
                    black_box(unlimited.coalescer.drain());
                }
            })
        },
    );
    black_box(unlimited.coalescer.drain());
    // Alone, the checks run millions of times a second: at the default rates each sender would
    // soon be refused, so the rates are set high enough that every check admits (the common
    // path).
    let fast = RateLimit {
        per_second: 1_000_000.0,
        burst: 60,
    };
    let limits = IngestLimits::new(Some(fast), Some(fast));
    g.bench_function(
        "rate limit checks, sender and address (65,536 addresses)",
        |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                let ua = AGENTS[i % AGENTS.len()].as_bytes();
                black_box(limits.check(black_box(many[i % many.len()]), ua)).unwrap();
            })
        },
    );
    // The budget alone on one hit's increments, its keys named (the steady state) or new to
    // the process (the first second of a month, or keys past a full document's books).
    let hit_incs = |t: &Tracker| {
        t.track(QUERY, AGENTS[0], None).expect("the hit is counted");
        let drained = t.coalescer.drain();
        let mut incs = tally::reports::Increments::default();
        for (key, fields) in drained {
            for (field, value) in fields {
                incs.entries.push((key.doc, field, value));
            }
        }
        incs
    };
    let sample = hit_incs(&unlimited);
    let site = SiteId::parse("acme").unwrap();
    for (name, budget) in [
        (
            "budget of new keys, keys named",
            limited.budget.as_ref().unwrap(),
        ),
        (
            "budget of new keys, keys new (65,536 addresses)",
            &KeyBudget::new(defaults.new_keys_per_address, Arc::default()),
        ),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched_ref(
                || tally::reports::Increments {
                    entries: sample.entries.clone(),
                },
                |incs| {
                    i = i.wrapping_add(1);
                    budget.vouch(many[i % many.len()], &site, incs);
                },
                criterion::BatchSize::SmallInput,
            )
        });
    }
    let trust = TrustProxy::default();
    g.bench_function("client address from X-Forwarded-For (default trust)", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            headers.insert(header::X_FORWARDED_FOR, forwarded[i % many.len()].clone());
            black_box(tally::track::client::client_address(
                proxy,
                black_box(&headers),
                &trust,
            ))
        })
    });
    g.bench_function("Origin and DNT headers read", |b| {
        b.iter(|| black_box(Sender::from_headers(black_box(&headers))))
    });

    if let Some(db) = &geo {
        g.bench_function("country lookup", |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                black_box(db.country(black_box(addresses[i % addresses.len()])))
            })
        });
    }
    let path = "/blog/2024/hello-world.html";
    g.bench_function("escape a path key", |b| {
        b.iter(|| black_box(Key::escape(black_box(path))))
    });

    g.bench_function("parse query", |b| {
        b.iter(|| black_box(PixelParams::parse(black_box(QUERY))))
    });
    g.bench_function("user-agent (cached)", |b| {
        b.iter(|| black_box(Agent::parse(black_box(AGENTS[0]))))
    });
    g.bench_function("user-agent (woothee + isbot, uncached)", |b| {
        b.iter(|| black_box(Agent::parse_uncached(black_box(AGENTS[0]))))
    });
    g.bench_function("user-agent (isbot list alone)", |b| {
        b.iter(|| black_box(Agent::on_bot_list(black_box(AGENTS[0]))))
    });
    let tz = parse_time_zone("America/New_York").unwrap();
    g.bench_function("local time in zone", |b| {
        b.iter(|| black_box(LocalTime::at(black_box(Utc::now()), tz)))
    });
    g.finish();
}

/// The read side of a capped report: a full content month document (1,000 pages with titles)
/// decoded from BSON bytes, unescaped and ranked, as a dashboard reads it.
fn read_top_pages(c: &mut Criterion) {
    use tally::reports::content::Content;
    use tally::reports::Report;
    let mut pages = mongodb::bson::Document::new();
    for n in 0..1000 {
        let key = Key::escape(&format!("/blog/2026/{n}/a-post-about-things.html"));
        pages.insert(
            key.as_str(),
            mongodb::bson::doc! {"v": (n * 7 % 1000) as i64, "t": format!("A post about things, part {n}")},
        );
    }
    let doc = mongodb::bson::doc! {"_id": "acme:2026-11", "n": 1000_i64, "p": pages};
    let bytes = mongodb::bson::to_vec(&doc).unwrap();
    let mut g = c.benchmark_group("read");
    g.bench_function(
        format!("full content month ({} bytes) -> top 50", bytes.len()),
        |b| {
            b.iter(|| {
                let doc = mongodb::bson::Document::from_reader(black_box(&bytes[..])).unwrap();
                let view = Content::read(&doc);
                black_box(view.pages.top(50).len())
            })
        },
    );
    g.finish();
}

criterion_group!(benches, hit_path, read_top_pages);
criterion_main!(benches);
