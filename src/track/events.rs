//! `/e`: custom events, and `/v`: visit-duration beacons.
//!
//! - `POST /e` takes a JSON event `{"site", "name", "value"?, "props"?, "ts"?}` or an array of
//!   up to [`MAX_BATCH`] of them (one site per request), from servers and from the snippet's
//!   `navigator.sendBeacon` (any content type). The whole request is checked first and counted
//!   all or nothing: `202 {"accepted": n}`, or a 4xx with the JSON error shape and nothing
//!   counted. Bodies over [`MAX_BODY`] get 413 before they are read. A page on a host the site
//!   does not list gets 403 `disallowed_host`; an opted-out browser (DNT/GPC, for a site that
//!   honours it) gets `202 {"accepted": 0, "ignored": "do_not_track"}`; a sender over the rate
//!   limit gets 429 `rate_limited` with `Retry-After`.
//! - `GET /e?site=&name=&value=&p.KEY=VAL&ts=` is the same for one event from an `<img>`: it
//!   answers the pixel, like `/t.gif` (429 over the rate limit, else 200).
//! - `GET|POST /v?site=&vt=&vd=&pvd=&ts=` moves a visit between duration segments
//!   (`reports::engagement`); it answers 204 (429 over the rate limit).
//!
//! Like the pixel, these only validate and enqueue; every outcome is counted in `/metrics`.

use super::sender::Sender;
use super::{pixel, Tracker};
use crate::aggregate::Refused;
use crate::error::json_error;
use crate::field::Key;
use crate::hit::client_time;
use crate::hit::text::decode;
use crate::metrics::Rejection;
use crate::period::LocalTime;
use crate::reports::engagement;
use crate::reports::events::{self, Event, MAX_PROPERTIES};
use crate::reports::Increments;
use crate::site::SiteId;
use crate::track::agent::Agent;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Largest `POST /e` body read.
pub const MAX_BODY: usize = 64 * 1024;
/// Most events in one `POST /e`.
pub const MAX_BATCH: usize = 100;

/// How long a `POST /e` body may take to arrive (`--body-timeout-ms`).
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub std::time::Duration);

/// An event as sent, before it is checked against its site; text borrowed from the request
/// where it needs no unescaping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent<'a> {
    pub site: Cow<'a, str>,
    pub name: Cow<'a, str>,
    pub value: i64,
    pub props: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub ts: Option<i64>,
}

impl RawEvent<'_> {
    /// The event to count, its name and properties escaped into field keys, at `local`.
    pub fn event(&self, local: LocalTime) -> Event {
        Event {
            name: Key::escape(&self.name),
            value: self.value,
            props: self
                .props
                .iter()
                .map(|(k, v)| (Key::escape(k), Key::escape(v)))
                .collect(),
            local,
        }
    }
}

/// The JSON form of an event, deserialised without building a tree of values.
#[derive(serde::Deserialize)]
struct JsonEvent<'a> {
    #[serde(borrow)]
    site: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    value: Option<i64>,
    #[serde(borrow)]
    props: Option<BTreeMap<Cow<'a, str>, PropValue<'a>>>,
    ts: Option<i64>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum PropValue<'a> {
    #[serde(borrow)]
    Text(Cow<'a, str>),
    Integer(i64),
    Number(f64),
    Flag(bool),
}

/// Why events were not counted; each maps to one answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    #[error("{0}")]
    Invalid(String),
    #[error("unknown site {0:?}")]
    UnknownSite(String),
    #[error("tally is busy writing what it has; retry later")]
    Busy,
    #[error("the store is away and the durable log is full; retry later")]
    DurableFull,
    #[error("tally is shutting down")]
    ShuttingDown,
    #[error("this site's documents refuse their updates: its hits are refused until an operator repairs them")]
    SiteParked,
    #[error("site {0:?} does not count events sent from this page's host")]
    DisallowedHost(String),
    #[error("the browser asked not to be tracked (DNT or Sec-GPC) and the site honours it")]
    DoNotTrack,
    #[error("too many requests from this address; retry in {0} s")]
    RateLimited(u64),
}

impl EventError {
    fn answer(&self) -> HttpResponse {
        let (status, code) = match self {
            EventError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_event"),
            EventError::UnknownSite(_) => (StatusCode::BAD_REQUEST, "unknown_site"),
            EventError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            EventError::DurableFull => (StatusCode::SERVICE_UNAVAILABLE, "durable_full"),
            EventError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
            EventError::SiteParked => (StatusCode::SERVICE_UNAVAILABLE, "site_parked"),
            EventError::DisallowedHost(_) => (StatusCode::FORBIDDEN, "disallowed_host"),
            // The visitor's own choice, honoured: nothing is wrong.
            EventError::DoNotTrack => {
                return HttpResponse::Accepted()
                    .json(serde_json::json!({ "accepted": 0, "ignored": "do_not_track" }))
            }
            EventError::RateLimited(secs) => {
                let mut response = json_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    &self.to_string(),
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*secs));
                return response;
            }
        };
        json_error(status, code, &self.to_string())
    }

    /// The reason counted in `/metrics`.
    pub fn reason(&self) -> Rejection {
        match self {
            EventError::Invalid(_) => Rejection::Invalid,
            EventError::UnknownSite(_) => Rejection::UnknownSite,
            EventError::Busy => Rejection::PendingFull,
            EventError::DurableFull => Rejection::DurableFull,
            EventError::ShuttingDown => Rejection::ShuttingDown,
            EventError::SiteParked => Rejection::SiteParked,
            EventError::DisallowedHost(_) => Rejection::DisallowedHost,
            EventError::DoNotTrack => Rejection::DoNotTrack,
            EventError::RateLimited(_) => Rejection::RateLimited,
        }
    }
}

fn invalid(at: Option<usize>, message: impl std::fmt::Display) -> EventError {
    EventError::Invalid(match at {
        Some(i) => format!("event {i}: {message}"),
        None => message.to_string(),
    })
}

/// Parses a `POST /e` body: one event object or an array of them.
pub fn parse_json(body: &[u8]) -> Result<Vec<RawEvent<'_>>, EventError> {
    let bad_json = |e: serde_json::Error| {
        invalid(
            None,
            format!("the body is not a valid event or array of events: {e}"),
        )
    };
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        let items: Vec<JsonEvent<'_>> = serde_json::from_slice(body).map_err(bad_json)?;
        if items.is_empty() {
            return Err(invalid(None, "an empty array holds no event"));
        }
        if items.len() > MAX_BATCH {
            return Err(invalid(
                None,
                format!(
                    "{} events in one request; send at most {MAX_BATCH}",
                    items.len()
                ),
            ));
        }
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| event_from_json(item).map_err(|m| invalid(Some(i), m)))
            .collect()
    } else {
        let item: JsonEvent<'_> = serde_json::from_slice(body).map_err(bad_json)?;
        Ok(vec![event_from_json(item).map_err(|m| invalid(None, m))?])
    }
}

fn event_from_json(json: JsonEvent<'_>) -> Result<RawEvent<'_>, String> {
    let props = json.props.unwrap_or_default();
    if props.len() > MAX_PROPERTIES {
        return Err(format!(
            "{} properties; an event has at most {MAX_PROPERTIES}",
            props.len()
        ));
    }
    Ok(RawEvent {
        site: json.site.ok_or("\"site\" is missing")?,
        name: json.name.ok_or("\"name\" is missing")?,
        value: json.value.unwrap_or(1),
        props: props
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    PropValue::Text(t) => t,
                    PropValue::Integer(n) => Cow::Owned(n.to_string()),
                    PropValue::Number(n) => Cow::Owned(n.to_string()),
                    PropValue::Flag(b) => Cow::Owned(b.to_string()),
                };
                (k, v)
            })
            .collect(),
        ts: json.ts,
    })
}

/// Parses `GET /e`'s query string (the first occurrence of each parameter wins).
pub fn parse_query(query: &str) -> Result<RawEvent<'_>, EventError> {
    let mut event = RawEvent {
        site: Cow::Borrowed(""),
        name: Cow::Borrowed(""),
        value: 1,
        props: Vec::new(),
        ts: None,
    };
    let (mut site, mut name, mut value, mut ts) = (None, None, None, None);
    for pair in query.split('&').take(64) {
        let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode(key);
        let raw = decode(raw);
        match &*key {
            "site" => site = site.or(Some(raw)),
            "name" => name = name.or(Some(raw)),
            "value" => value = value.or(Some(raw)),
            "ts" => ts = ts.or(Some(raw)),
            k => {
                if let Some(prop) = k.strip_prefix("p.") {
                    if !event.props.iter().any(|(p, _)| p == prop) {
                        event.props.push((Cow::Owned(prop.to_owned()), raw));
                    }
                }
            }
        }
    }
    if event.props.len() > MAX_PROPERTIES {
        return Err(invalid(
            None,
            format!("an event has at most {MAX_PROPERTIES} properties"),
        ));
    }
    event.site = site.ok_or_else(|| invalid(None, "\"site\" is missing"))?;
    event.name = name.ok_or_else(|| invalid(None, "\"name\" is missing"))?;
    if let Some(v) = value {
        event.value = v
            .parse()
            .map_err(|_| invalid(None, format!("\"value\" must be an integer, not {v:?}")))?;
    }
    if let Some(t) = ts {
        event.ts = Some(
            t.parse()
                .map_err(|_| invalid(None, "\"ts\" must be an integer (ms)"))?,
        );
    }
    Ok(event)
}

impl Tracker {
    /// Checks every event and enqueues them all, or none. All events of one call must be for
    /// one site.
    pub fn track_events(&self, raw: &[RawEvent<'_>]) -> Result<usize, EventError> {
        self.track_events_from(raw, None, Sender::default())
    }

    /// [`Tracker::track_events`] for a request from `client` (for its budget of new keys; never
    /// kept) that came with `sender`'s page host and opt-out.
    pub fn track_events_from(
        &self,
        raw: &[RawEvent<'_>],
        client: Option<std::net::IpAddr>,
        sender: Sender<'_>,
    ) -> Result<usize, EventError> {
        let result = self.try_track_events(raw, client, sender);
        match &result {
            Ok(n) => {
                self.metrics.events_accepted.inc_by(*n as u64);
            }
            Err(e) => {
                self.metrics
                    .events_rejected(e.reason())
                    .inc_by(raw.len().max(1) as u64);
                tracing::debug!(error = %e, "events not counted");
            }
        }
        result
    }

    fn try_track_events(
        &self,
        raw: &[RawEvent<'_>],
        client: Option<std::net::IpAddr>,
        sender: Sender<'_>,
    ) -> Result<usize, EventError> {
        let Some(first) = raw.first() else {
            return Err(invalid(None, "no event"));
        };
        let id = SiteId::parse(&first.site).map_err(|e| invalid(None, e))?;
        if let Some(i) = raw.iter().position(|e| e.site != first.site) {
            return Err(invalid(
                Some(i),
                "all events of one request must be for one site",
            ));
        }
        let site = self
            .sites
            .get(&id)
            .ok_or_else(|| EventError::UnknownSite(first.site.to_string()))?;
        sender.check(&site).map_err(|reason| match reason {
            Rejection::DoNotTrack => EventError::DoNotTrack,
            _ => EventError::DisallowedHost(first.site.to_string()),
        })?;
        let now = (self.clock)();
        let now_local = LocalTime::at(now, site.tz);
        let mut incs = Increments::with_capacity(raw.len() * 8);
        for (i, e) in raw.iter().enumerate() {
            let at = |m: &str| {
                if raw.len() > 1 {
                    invalid(Some(i), m)
                } else {
                    invalid(None, m)
                }
            };
            if e.name.trim().is_empty() {
                return Err(at("\"name\" is empty"));
            }
            let local = match client_time(now, e.ts) {
                Some(at) => LocalTime::at(at, site.tz),
                None => now_local,
            };
            events::count(&e.event(local), &mut incs);
        }
        self.vouch(client, &site.id, &mut incs);
        self.coalescer
            .add(&site.id, &mut incs)
            .map_err(|refused| match refused {
                Refused::Full => EventError::Busy,
                Refused::DurableFull => EventError::DurableFull,
                Refused::Closed => EventError::ShuttingDown,
                Refused::Parked => EventError::SiteParked,
            })?;
        Ok(raw.len())
    }

    /// A visit-duration beacon: `vt` the visit's start (ms), `vd` its duration now and `pvd`
    /// the duration reported before (ms). `false` when it was not counted.
    pub fn track_duration(&self, query: &str, user_agent: &str) -> bool {
        self.track_duration_from(query, user_agent, Sender::default())
            .is_ok()
    }

    /// [`Tracker::track_duration`] for a request that came with `sender`'s page host and
    /// opt-out; every outcome is counted in the metrics.
    pub fn track_duration_from(
        &self,
        query: &str,
        user_agent: &str,
        sender: Sender<'_>,
    ) -> Result<(), Rejection> {
        let result = self.try_track_duration(query, user_agent, sender);
        match result {
            Ok(()) => {
                self.metrics.beacons_accepted.inc();
            }
            Err(reason) => {
                self.metrics.beacons_rejected(reason).inc();
            }
        }
        result
    }

    fn try_track_duration(
        &self,
        query: &str,
        user_agent: &str,
        sender: Sender<'_>,
    ) -> Result<(), Rejection> {
        let (mut site, mut vt, mut vd, mut pvd) = (None, None, None, None);
        for pair in query.split('&').take(64) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let number = || value.parse::<i64>().ok();
            match key {
                "site" => site = site.or(Some(decode(value))),
                "vt" => vt = vt.or(number()),
                "vd" => vd = vd.or(number()),
                "pvd" => pvd = pvd.or(number()),
                _ => {}
            }
        }
        let id = SiteId::parse(&site.ok_or(Rejection::MissingSite)?)
            .map_err(|_| Rejection::InvalidSite)?;
        let site = self.sites.get(&id).ok_or(Rejection::UnknownSite)?;
        sender.check(&site)?;
        if Agent::parse(user_agent).bot {
            return Err(Rejection::Bot);
        }
        let (vd, pvd) = (vd.ok_or(Rejection::Invalid)?, pvd.unwrap_or(0));
        if vd < 0 || pvd < 0 || pvd > vd {
            return Err(Rejection::Invalid);
        }
        let now = (self.clock)();
        let started = client_time(now, vt).unwrap_or(now);
        let mut incs = Increments::with_capacity(2);
        engagement::count_duration(LocalTime::at(started, site.tz), pvd, vd, &mut incs);
        if incs.is_empty() {
            return Ok(());
        }
        self.coalescer
            .add(&site.id, &mut incs)
            .map_err(|refused| match refused {
                Refused::Full => Rejection::PendingFull,
                Refused::DurableFull => Rejection::DurableFull,
                Refused::Closed => Rejection::ShuttingDown,
                Refused::Parked => Rejection::SiteParked,
            })
    }
}

fn closing(mut response: HttpResponse) -> HttpResponse {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn cors(mut response: HttpResponse) -> HttpResponse {
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

/// [`Tracker::admit`] for `/e`, counting a refusal as the events' own.
fn admit_events(
    tracker: &Tracker,
    req: &HttpRequest,
) -> Result<super::client::ClientAddress, super::limit::Limited> {
    tracker.admit(req).inspect_err(|_| {
        tracker
            .metrics
            .events_rejected(Rejection::RateLimited)
            .inc();
    })
}

/// `POST /e`.
pub async fn post(
    req: HttpRequest,
    body: web::Payload,
    tracker: web::Data<Tracker>,
    timeout: web::Data<BodyTimeout>,
) -> HttpResponse {
    let client = match admit_events(&tracker, &req) {
        Ok(client) => client,
        Err(limited) => {
            return cors(EventError::RateLimited(limited.retry_after_secs()).answer());
        }
    };
    // Refusals before the whole body was read close the connection, so the rest of the body
    // is never waited for.
    let too_large = || {
        closing(cors(json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            &format!("the body is over {MAX_BODY} bytes"),
        )))
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        tracker.metrics.events_rejected(Rejection::TooLarge).inc();
        return too_large();
    }
    // A body trickled in slowly (slow-loris) ties up a connection: it gets a deadline. The
    // limit is the outer error of `to_bytes_limited`, a broken body (a bad chunk) the inner.
    let bytes = match tokio::time::timeout(timeout.0, body.to_bytes_limited(MAX_BODY)).await {
        Ok(Ok(Ok(bytes))) => bytes,
        Ok(Err(_limit)) => {
            tracker.metrics.events_rejected(Rejection::TooLarge).inc();
            return too_large();
        }
        Ok(Ok(Err(e))) => {
            tracker.metrics.events_rejected(Rejection::Invalid).inc();
            tracing::debug!(error = %e, "POST /e: the body could not be read");
            return closing(cors(json_error(
                StatusCode::BAD_REQUEST,
                "bad_body",
                "the body could not be read",
            )));
        }
        Err(_elapsed) => {
            tracker.metrics.events_rejected(Rejection::Invalid).inc();
            return closing(cors(json_error(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                &format!(
                    "the body did not arrive within {} ms",
                    timeout.0.as_millis()
                ),
            )));
        }
    };
    let result = match parse_json(&bytes) {
        Ok(events) => {
            tracker.track_events_from(&events, client.ip, Sender::from_headers(req.headers()))
        }
        Err(e) => {
            tracker.metrics.events_rejected(Rejection::Invalid).inc();
            Err(e)
        }
    };
    cors(match result {
        Ok(n) if tracker.durable().await => {
            HttpResponse::Accepted().json(serde_json::json!({ "accepted": n }))
        }
        Ok(_) => pixel::not_durable(),
        Err(e) => e.answer(),
    })
}

/// `GET /e`: one event from an `<img>`; the pixel (429 over the rate limit, else 200).
pub async fn get(req: HttpRequest, tracker: web::Data<Tracker>) -> HttpResponse {
    let client = match admit_events(&tracker, &req) {
        Ok(client) => client,
        Err(limited) => return pixel::gif_limited(limited.retry_after_secs()),
    };
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()))
        .unwrap_or_default();
    if Agent::parse(&user_agent).bot {
        tracker.metrics.events_rejected(Rejection::Bot).inc();
        return pixel::gif();
    }
    match parse_query(req.query_string()) {
        Ok(event) => {
            let sender = Sender::from_headers(req.headers());
            match tracker.track_events_from(&[event], client.ip, sender) {
                Ok(_) if !tracker.durable().await => return pixel::busy(),
                Err(
                    EventError::Busy
                    | EventError::DurableFull
                    | EventError::ShuttingDown
                    | EventError::SiteParked,
                ) => return pixel::busy(),
                _ => {}
            }
        }
        Err(e) => {
            tracker.metrics.events_rejected(Rejection::Invalid).inc();
            tracing::debug!(error = %e, "event not counted");
        }
    }
    pixel::gif()
}

/// `OPTIONS /e`: lets pages on any origin `fetch` JSON to `/e`, and no more: `POST` only
/// (`GET /e` is an image, which needs no preflight), the `Content-Type` header only, no
/// credentials (no `Access-Control-Allow-Credentials`, so a browser sends no cookies), and a
/// day's cache of the answer (browsers cap it lower).
pub async fn preflight() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "POST"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "Content-Type"))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"))
        .finish()
}

/// `GET|POST /v`: a visit-duration beacon; 204 (429 over the rate limit).
pub async fn visit(req: HttpRequest, tracker: web::Data<Tracker>) -> HttpResponse {
    if let Err(limited) = tracker.admit(&req) {
        tracker
            .metrics
            .beacons_rejected(Rejection::RateLimited)
            .inc();
        return cors(
            HttpResponse::TooManyRequests()
                .insert_header((header::RETRY_AFTER, limited.retry_after_secs()))
                .finish(),
        );
    }
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()))
        .unwrap_or_default();
    let counted = tracker.track_duration_from(
        req.query_string(),
        &user_agent,
        Sender::from_headers(req.headers()),
    );
    if counted.is_ok() && !tracker.durable().await {
        return cors(pixel::not_durable());
    }
    cors(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_bodies_are_checked_whole() {
        let one = parse_json(
            br#"{"site":"acme","name":"signup","props":{"plan":"pro","seats":3,"trial":true}}"#,
        )
        .unwrap();
        assert_eq!(one[0].value, 1);
        assert_eq!(one[0].props.len(), 3);
        assert!(one[0].props.contains(&(Cow::from("seats"), Cow::from("3"))));
        let many = format!(
            "[{}]",
            vec![r#"{"site":"a","name":"x","value":2}"#; 100].join(",")
        );
        assert_eq!(parse_json(many.as_bytes()).unwrap().len(), 100);
        let too_many = format!("[{}]", vec![r#"{"site":"a","name":"x"}"#; 101].join(","));
        for bad in [
            too_many.as_str(),
            r#"{"site":"a","name":"x","value":1.5}"#,
            r#"{"site":"a","name":"x","value":"3"}"#,
            r#"{"site":"a"}"#,
            r#"{"site":"a","name":"x","props":{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6}}"#,
            r#"{"site":"a","name":"x","props":{"a":[1]}}"#,
            r#"[{"site":"a","name":"x"}, 7]"#,
            r#"[]"#,
            r#"{"site":"a","name":"x""#,
            r#"{"__proto__":{"site":"a"},"name":"x"}"#,
        ] {
            assert!(parse_json(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn query_events() {
        let e = parse_query("site=acme&name=sign%20up&value=3&p.plan=pro&p.plan=x&ts=5").unwrap();
        assert_eq!(e.site, "acme");
        assert_eq!(e.name, "sign up");
        assert_eq!(e.value, 3);
        assert_eq!(e.props, vec![(Cow::from("plan"), Cow::from("pro"))]);
        assert_eq!(e.ts, Some(5));
        assert!(parse_query("site=acme&name=x&value=1.5").is_err());
        assert!(parse_query("site=acme").is_err());
        assert!(parse_query("site=a&name=x&p.a=1&p.b=1&p.c=1&p.d=1&p.e=1&p.f=1").is_err());
    }
}
