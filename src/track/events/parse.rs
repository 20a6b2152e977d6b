//! Reading events as sent: a `POST /e` JSON body (one event or an array) and a `GET /e` query
//! string, into [`RawEvent`]s that borrow their text from the request.
//!
//! This module checks the shape of what was sent; it must not look up sites or count anything.

use super::error::{invalid, EventError};
use super::MAX_BATCH;
use crate::field::Key;
use crate::hit::text::decode;
use crate::period::LocalTime;
use crate::reports::events::{Event, MAX_PROPERTIES};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// An event as sent, before it is checked against its site; text borrowed from the request
/// where it needs no unescaping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent<'a> {
    pub site: Cow<'a, str>,
    pub name: Cow<'a, str>,
    pub value: i64,
    pub props: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub ts: Option<i64>,
    /// The snippet's visitor id (`vi`), for the people sketches; only hashed, never kept.
    pub visitor: Option<Cow<'a, str>>,
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
    #[serde(borrow)]
    vi: Option<Cow<'a, str>>,
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
        visitor: json.vi,
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
        visitor: None,
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
            "vi" => event.visitor = event.visitor.take().or(Some(raw)),
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
