//! Live: views of the last minutes and the pages being viewed right now (Gaug.es's
//! AirTraffic), driven by the flush stream.
//!
//! After each flush, the flusher hands over what it *wrote*: per site, the views added to the
//! traffic month document and the views per page added to the content day document (and their
//! titles). [`Live`] keeps, per site, views per minute for [`MINUTES`] minutes and views per page
//! per minute for [`PAGE_MINUTES`] — counts, never hits — and tells subscribers which sites
//! changed. A flush that failed shows nothing until it is written, so the panel never shows
//! what the documents do not hold. Bounded: at most [`MAX_PAGES`] pages per site and minute.

use crate::site::SiteId;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use tokio::sync::broadcast;

/// Minutes of views kept per site.
pub const MINUTES: usize = 30;
/// Minutes a page counts as "being viewed now".
pub const PAGE_MINUTES: usize = 5;
/// Pages remembered per site and minute.
pub const MAX_PAGES: usize = 200;

/// What one flush wrote for one site.
#[derive(Debug, Default)]
pub struct Written {
    pub views: i64,
    /// `(page, views, latest title)`.
    pub pages: Vec<(String, i64, Option<String>)>,
}

/// Views and latest title per page, in one minute.
type PagesOfMinute = HashMap<String, (i64, Option<String>)>;

#[derive(Default)]
struct SiteLive {
    /// How many flushes wrote for the site: what read caches compare.
    generation: u64,
    /// `(minute since the epoch, views)`, oldest first.
    minutes: VecDeque<(i64, i64)>,
    /// `(minute, page → (views, title))`, oldest first.
    pages: VecDeque<(i64, PagesOfMinute)>,
}

pub struct Live {
    sites: Mutex<HashMap<SiteId, SiteLive>>,
    changed: broadcast::Sender<SiteId>,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            sites: Mutex::default(),
            changed: broadcast::channel(1024).0,
        }
    }
}

/// One site's live panel.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Snapshot {
    pub at: String,
    /// The last [`MINUTES`] minutes, oldest first, including empty ones.
    pub views_last_minutes: Vec<MinuteViews>,
    /// Pages with views in the last [`PAGE_MINUTES`] minutes, most viewed first.
    pub pages_now: Vec<PageNow>,
    pub window_minutes: usize,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct MinuteViews {
    pub minute: String,
    pub views: i64,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct PageNow {
    pub page: String,
    pub title: Option<String>,
    pub views: i64,
}

fn minute_of(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(60)
}

impl Live {
    /// Records what a flush wrote at `at`, and tells subscribers.
    pub fn record(&self, at: DateTime<Utc>, written: HashMap<SiteId, Written>) {
        let minute = minute_of(at);
        {
            let mut sites = self.sites.lock().unwrap_or_else(|e| e.into_inner());
            for (site, w) in &written {
                let live = sites.entry(site.clone()).or_default();
                live.generation += 1;
                match live.minutes.back_mut() {
                    Some((m, v)) if *m == minute => *v += w.views,
                    _ => live.minutes.push_back((minute, w.views)),
                }
                while live
                    .minutes
                    .front()
                    .is_some_and(|(m, _)| *m <= minute - MINUTES as i64)
                {
                    live.minutes.pop_front();
                }
                if live.pages.back().is_none_or(|(m, _)| *m != minute) {
                    live.pages.push_back((minute, HashMap::new()));
                }
                let (_, pages) = live.pages.back_mut().expect("just pushed");
                for (page, views, title) in &w.pages {
                    if pages.len() >= MAX_PAGES && !pages.contains_key(page) {
                        continue;
                    }
                    let entry = pages.entry(page.clone()).or_default();
                    entry.0 += views;
                    if title.is_some() {
                        entry.1.clone_from(title);
                    }
                }
                while live
                    .pages
                    .front()
                    .is_some_and(|(m, _)| *m <= minute - PAGE_MINUTES as i64)
                {
                    live.pages.pop_front();
                }
            }
        }
        for site in written.into_keys() {
            let _ = self.changed.send(site);
        }
    }

    /// Changes whenever a flush writes for `site` (0 before the first).
    pub fn generation(&self, site: &SiteId) -> u64 {
        let sites = self.sites.lock().unwrap_or_else(|e| e.into_inner());
        sites.get(site).map_or(0, |l| l.generation)
    }

    /// Which sites changed, as they change.
    pub fn subscribe(&self) -> broadcast::Receiver<SiteId> {
        self.changed.subscribe()
    }

    /// The live panel of `site` at `now`.
    pub fn snapshot(&self, site: &SiteId, now: DateTime<Utc>) -> Snapshot {
        let minute = minute_of(now);
        let sites = self.sites.lock().unwrap_or_else(|e| e.into_inner());
        let live = sites.get(site);
        let views_last_minutes = (minute - MINUTES as i64 + 1..=minute)
            .map(|m| MinuteViews {
                minute: DateTime::from_timestamp(m * 60, 0)
                    .unwrap_or_default()
                    .format("%Y-%m-%dT%H:%MZ")
                    .to_string(),
                views: live
                    .and_then(|l| l.minutes.iter().find(|(x, _)| *x == m))
                    .map_or(0, |(_, v)| *v),
            })
            .collect();
        let mut pages: HashMap<&str, (i64, Option<&str>)> = HashMap::new();
        for (m, by_page) in live.map(|l| &l.pages).into_iter().flatten() {
            if *m <= minute - PAGE_MINUTES as i64 {
                continue;
            }
            for (page, (views, title)) in by_page {
                let e = pages.entry(page).or_default();
                e.0 += views;
                if title.is_some() {
                    e.1 = title.as_deref();
                }
            }
        }
        let mut pages_now: Vec<PageNow> = pages
            .into_iter()
            .filter(|(_, (v, _))| *v > 0)
            .map(|(page, (views, title))| PageNow {
                page: page.to_owned(),
                title: title.map(str::to_owned),
                views,
            })
            .collect();
        pages_now.sort_by(|a, b| b.views.cmp(&a.views).then_with(|| a.page.cmp(&b.page)));
        pages_now.truncate(50);
        Snapshot {
            at: now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            views_last_minutes,
            pages_now,
            window_minutes: PAGE_MINUTES,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn keeps_recent_minutes_and_pages_only() {
        let live = Live::default();
        let acme = SiteId::parse("acme").unwrap();
        let t0 = Utc.with_ymd_and_hms(2026, 11, 23, 14, 0, 10).unwrap();
        let written = |views, page: &str| {
            HashMap::from([(
                acme.clone(),
                Written {
                    views,
                    pages: vec![(page.to_owned(), views, Some("T".to_owned()))],
                },
            )])
        };
        let mut rx = live.subscribe();
        live.record(t0, written(2, "/a"));
        assert_eq!(rx.try_recv().unwrap(), acme);
        live.record(t0 + chrono::TimeDelta::seconds(30), written(1, "/b"));
        live.record(t0 + chrono::TimeDelta::minutes(3), written(4, "/b"));
        let s = live.snapshot(&acme, t0 + chrono::TimeDelta::minutes(3));
        assert_eq!(s.views_last_minutes.len(), MINUTES);
        assert_eq!(s.views_last_minutes.iter().map(|m| m.views).sum::<i64>(), 7);
        assert_eq!(s.views_last_minutes.last().unwrap().views, 4);
        assert_eq!(s.pages_now[0].page, "/b");
        assert_eq!(s.pages_now[0].views, 5);
        // Six minutes on, /a has left the window; the views stay in the last 30 minutes.
        let later = live.snapshot(&acme, t0 + chrono::TimeDelta::minutes(6));
        assert!(later.pages_now.iter().all(|p| p.page != "/a"));
        let much_later = live.snapshot(&acme, t0 + chrono::TimeDelta::minutes(40));
        assert_eq!(
            much_later
                .views_last_minutes
                .iter()
                .map(|m| m.views)
                .sum::<i64>(),
            0
        );
        assert!(much_later.pages_now.is_empty());
    }
}
