//! `tally capacity [--sites N]`: how much a year of reports takes, measured on this store and
//! projected for N sites.
//!
//! The measure is one year's report collections: the last full year with documents (or, when
//! there is none yet, the current year so far). Per report family: documents per site-year
//! (its documents that year divided by the sites with documents that year: the sites of `sites`
//! with a `traffic` year document, or all of `sites` when none has) and the average document
//! size, both from [`Store::collection_stats`], so nothing is read but a few ids. A store
//! without report documents gets the model of `docs/data-model.md` instead, marked as such.

use super::collections::{current_year, human_bytes, report_collections, ReportCollection};
use super::CliError;
use crate::reports::ReportKind;
use crate::settings::StoreSettings;
use crate::store::{Store, StoreError};

#[derive(Debug, clap::Args)]
pub struct CapacityArgs {
    /// The number of sites to project for.
    #[arg(long, default_value_t = 100)]
    pub sites: u64,
}

/// Documents per site and year by the shapes of `docs/data-model.md` (events at their default
/// retention: 48 five-minute hours, 60 hourly days).
pub fn model_docs_per_site_year(kind: ReportKind) -> u64 {
    match kind {
        ReportKind::Traffic => 12 + 1,
        ReportKind::Content | ReportKind::Referrers => 12 + 365,
        ReportKind::People => 365 + 12 + 1,
        ReportKind::Events5m => 48,
        ReportKind::EventsHour => 60,
        ReportKind::Cohorts => 52 + 12,
        // An hour of minutes and one sweep interval (600 s) at any time: the sweep removes the rest.
        ReportKind::Live => 70,
        ReportKind::Technology
        | ReportKind::Terms
        | ReportKind::Campaigns
        | ReportKind::Resolutions
        | ReportKind::Locations
        | ReportKind::EventsDay
        | ReportKind::Engagement => 12,
    }
}

/// One family's measure.
#[derive(Clone, Debug, PartialEq)]
pub struct Measure {
    pub report: ReportKind,
    pub docs_per_site_year: f64,
    pub bytes_per_doc: f64,
}

/// The year to measure: the last year before `current` with documents, else the latest with any.
pub fn measured_year(collections: &[ReportCollection], current: i32) -> Option<(i32, bool)> {
    let with_docs = || collections.iter().filter(|c| c.stats.documents > 0);
    if let Some(full) = with_docs().map(|c| c.year).filter(|y| *y < current).max() {
        return Some((full, true));
    }
    with_docs().map(|c| c.year).max().map(|y| (y, false))
}

/// Each family's documents per site-year and bytes per document in `year`, for `sites` sites.
pub fn measure(collections: &[ReportCollection], year: i32, sites: u64) -> Vec<Measure> {
    let sites = sites.max(1) as f64;
    collections
        .iter()
        .filter(|c| c.year == year && c.stats.documents > 0)
        .map(|c| Measure {
            report: c.report,
            docs_per_site_year: c.stats.documents as f64 / sites,
            bytes_per_doc: c.stats.bytes as f64 / c.stats.documents as f64,
        })
        .collect()
}

/// The sites of `sites` with a `traffic` year document in `year`, and how many `sites` holds.
async fn sites_with_data(store: &dyn Store, year: i32) -> Result<(u64, u64), StoreError> {
    let sites = store.sites().await?;
    let ids: Vec<String> = sites
        .iter()
        .map(|s| format!("{}:{year:04}", s.id))
        .collect();
    let found = if ids.is_empty() {
        0
    } else {
        store
            .get_many_fields(&ReportKind::Traffic.collection(year), &ids, &["_id"])
            .await?
            .len()
    };
    Ok((found as u64, sites.len() as u64))
}

pub async fn run(settings: &StoreSettings, args: CapacityArgs) -> Result<(), CliError> {
    let store = settings.open().await?;
    let (collections, _) = report_collections(store.as_ref()).await?;
    let n = args.sites;
    let Some((year, full)) = measured_year(&collections, current_year()) else {
        print_model(n);
        return Ok(());
    };
    let (active, listed) = sites_with_data(store.as_ref(), year).await?;
    let divisor = if active > 0 { active } else { listed.max(1) };
    let measures = measure(&collections, year, divisor);

    println!(
        "{:<12}  {:>14}  {:>10}  {:>18}  {:>14}",
        "report",
        "docs/site-year",
        "bytes/doc",
        format!("docs/year ({n})"),
        format!("size/year ({n})")
    );
    let (mut per_site, mut docs, mut bytes) = (0.0, 0.0, 0.0);
    for m in &measures {
        let projected = m.docs_per_site_year * n as f64;
        let size = projected * m.bytes_per_doc;
        println!(
            "{:<12}  {:>14.1}  {:>10}  {:>18.0}  {:>14}",
            m.report.name(),
            m.docs_per_site_year,
            human_bytes(m.bytes_per_doc.round() as u64),
            projected,
            human_bytes(size.round() as u64)
        );
        per_site += m.docs_per_site_year;
        docs += projected;
        bytes += size;
    }
    println!(
        "{:<12}  {:>14.1}  {:>10}  {:>18.0}  {:>14}",
        "total",
        per_site,
        "",
        docs,
        human_bytes(bytes.round() as u64)
    );
    let which = if full {
        format!("{year}, the last full year with documents")
    } else {
        format!("{year} so far (no full year has documents yet: an underestimate)")
    };
    let whose = if active > 0 {
        format!("{active} sites with a traffic year document (of {listed} in sites)")
    } else {
        format!("all {listed} sites in sites (none has a traffic year document)")
    };
    println!(
        "measured on the report collections of {which}, divided by {whose}; \
         projected linearly for {n} sites"
    );
    let missing: Vec<&str> = ReportKind::ALL
        .into_iter()
        .filter(|k| !measures.iter().any(|m| m.report == *k))
        .map(ReportKind::name)
        .collect();
    if !missing.is_empty() {
        println!("no documents in {year} for: {}", missing.join(", "));
    }
    Ok(())
}

fn print_model(n: u64) {
    println!(
        "the store holds no report documents: this is the model of docs/data-model.md, \
         not a measurement (sizes depend on traffic and are not modelled)"
    );
    println!(
        "{:<12}  {:>22}  {:>18}",
        "report",
        "docs/site-year (model)",
        format!("docs/year ({n})")
    );
    let mut total = 0;
    for kind in ReportKind::ALL {
        let per_site = model_docs_per_site_year(kind);
        total += per_site;
        println!(
            "{:<12}  {:>22}  {:>18}",
            kind.name(),
            per_site,
            per_site * n
        );
    }
    println!("{:<12}  {:>22}  {:>18}", "total", total, total * n);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::CollectionStats;

    fn coll(report: ReportKind, year: i32, documents: u64, bytes: u64) -> ReportCollection {
        ReportCollection {
            collection: report.collection(year),
            report,
            year,
            stats: CollectionStats { documents, bytes },
        }
    }

    #[test]
    fn the_last_full_year_with_documents_is_measured() {
        let c = vec![
            coll(ReportKind::Traffic, 2024, 26, 2600),
            coll(ReportKind::Traffic, 2025, 0, 0),
            coll(ReportKind::Traffic, 2026, 5, 500),
        ];
        assert_eq!(measured_year(&c, 2026), Some((2024, true)));
        assert_eq!(measured_year(&c[1..], 2026), Some((2026, false)));
        assert_eq!(measured_year(&c[1..2], 2026), None);
    }

    #[test]
    fn a_measure_is_per_site_and_per_document() {
        let c = vec![
            coll(ReportKind::Traffic, 2024, 26, 2600),
            coll(ReportKind::Content, 2024, 10, 5000),
            coll(ReportKind::Content, 2025, 99, 1),
        ];
        assert_eq!(
            measure(&c, 2024, 2),
            vec![
                Measure {
                    report: ReportKind::Traffic,
                    docs_per_site_year: 13.0,
                    bytes_per_doc: 100.0
                },
                Measure {
                    report: ReportKind::Content,
                    docs_per_site_year: 5.0,
                    bytes_per_doc: 500.0
                },
            ]
        );
    }

    #[test]
    fn the_model_counts_a_sites_year() {
        let total: u64 = ReportKind::ALL
            .into_iter()
            .map(model_docs_per_site_year)
            .sum();
        // The live tier: an hour and a sweep interval of minutes at any time.
        // People: 365 days, 12 months and the year.
        assert_eq!(total, 13 + 377 + 377 + 12 * 7 + 48 + 60 + 64 + 70 + 378);
    }
}
