//! The hit path without HTTP: query string + User-Agent → merged increments in the coalescer.
//!
//! `cargo bench --bench hit_path`; results and the machine in docs/performance.md.

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::sync::Arc;
use tally::aggregate::Coalescer;
use tally::metrics::Metrics;
use tally::period::{system_clock, LocalTime};
use tally::site::{parse_time_zone, Site, SiteId, SiteRegistry};
use tally::track::agent::Agent;
use tally::track::query::PixelParams;
use tally::track::Tracker;

const QUERY: &str =
    "site=acme&url=https%3A%2F%2Facme.example%2Fblog%2F2024%2Fhello-world%3Futm_source%3Dnews\
&ref=https%3A%2F%2Fwww.google.com%2F&title=Hello%2C%20world%20%E2%80%94%20Acme%20Blog\
&sw=1920&bw=1280&bh=720&uh=1&ud=1&um=0&uy=0&u=0";

const AGENTS: [&str; 5] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
];

fn tracker() -> Tracker {
    let sites = SiteRegistry::default();
    sites.replace(vec![Site {
        id: SiteId::parse("acme").unwrap(),
        tz: parse_time_zone("America/New_York").unwrap(),
        name: "acme".into(),
        hosts: vec![],
        created_at: Utc::now(),
    }]);
    Tracker {
        sites: Arc::new(sites),
        // Large enough never to refuse during a run; drained below so it stays small.
        coalescer: Arc::new(Coalescer::new(usize::MAX, usize::MAX)),
        metrics: Arc::new(Metrics::new()),
        clock: system_clock(),
    }
}

fn hit_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("hit");
    g.throughput(Throughput::Elements(1));

    let t = tracker();
    let mut i = 0usize;
    g.bench_function("query+ua->merged increments", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let ua = AGENTS[i % AGENTS.len()];
            black_box(t.track(black_box(QUERY), black_box(ua))).unwrap();
        })
    });
    black_box(t.coalescer.drain());

    g.bench_function("parse query", |b| {
        b.iter(|| black_box(PixelParams::parse(black_box(QUERY))))
    });
    g.bench_function("user-agent (cached)", |b| {
        b.iter(|| black_box(Agent::parse(black_box(AGENTS[0]))))
    });
    g.bench_function("user-agent (woothee, uncached)", |b| {
        b.iter(|| black_box(Agent::parse_uncached(black_box(AGENTS[0]))))
    });
    let tz = parse_time_zone("America/New_York").unwrap();
    g.bench_function("local time in zone", |b| {
        b.iter(|| black_box(LocalTime::at(black_box(Utc::now()), tz)))
    });
    g.finish();
}

criterion_group!(benches, hit_path);
criterion_main!(benches);
