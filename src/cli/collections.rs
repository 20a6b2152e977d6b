//! `tally collections list|drop`: the yearly report collections, their sizes, and ageing whole
//! years out.
//!
//! Only report collections count: `<report>.<YYYY>` for a report of [`ReportKind::ALL`] and a
//! four-digit year. `sites`, `imports` and anything else are never dropped, only mentioned.
//! The current year's collections are never dropped. A drop is a dry run unless `--yes`.

use super::CliError;
use crate::reports::ReportKind;
use crate::settings::StoreSettings;
use crate::store::{CollectionStats, Store, StoreError};
use chrono::{Datelike, Duration, Utc};

#[derive(Debug, clap::Subcommand)]
pub enum CollectionsCommand {
    /// List every report collection (`<report>.<YYYY>`) with its documents and size.
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Drop every report collection of a year before --before. A dry run unless --yes.
    Drop {
        /// Drop the collections of years strictly before this one (at most the current year).
        #[arg(long, value_name = "YYYY")]
        before: i32,
        /// Really drop them; without it, only say what would be dropped.
        #[arg(long)]
        yes: bool,
    },
}

/// A report's yearly collection and its size.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ReportCollection {
    pub collection: String,
    #[serde(serialize_with = "report_name")]
    pub report: ReportKind,
    pub year: i32,
    #[serde(flatten)]
    pub stats: CollectionStats,
}

fn report_name<S: serde::Serializer>(kind: &ReportKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.name())
}

/// `traffic.2026` → `(Traffic, 2026)`; `None` for anything that is not a report collection.
pub fn parse_report_collection(name: &str) -> Option<(ReportKind, i32)> {
    let (prefix, year) = name.rsplit_once('.')?;
    if year.len() != 4 || !year.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let kind = ReportKind::ALL.into_iter().find(|k| k.name() == prefix)?;
    Some((kind, year.parse().ok()?))
}

/// The year it is now everywhere: the year at UTC-12, the last zone to leave a year. Until
/// then some site may still be writing to the old year's collections.
pub fn current_year() -> i32 {
    (Utc::now() - Duration::hours(12)).year()
}

/// The report collections of the store with their sizes, sorted by year then report name, and the
/// names of the other collections.
pub async fn report_collections(
    store: &dyn Store,
) -> Result<(Vec<ReportCollection>, Vec<String>), StoreError> {
    let mut reports = Vec::new();
    let mut others = Vec::new();
    for name in store.collections().await? {
        match parse_report_collection(&name) {
            Some((report, year)) => {
                let stats = store.collection_stats(&name).await?;
                reports.push(ReportCollection {
                    collection: name,
                    report,
                    year,
                    stats,
                });
            }
            None => others.push(name),
        }
    }
    reports.sort_by(|a, b| (a.year, a.report.name()).cmp(&(b.year, b.report.name())));
    Ok((reports, others))
}

/// The collections `drop --before <before>` selects: every one of a year strictly before
/// `before`. A `before` past the current year is refused: it would reach the collections still
/// being written.
pub fn select_for_drop(
    collections: &[ReportCollection],
    before: i32,
    current: i32,
) -> Result<Vec<ReportCollection>, String> {
    if before > current {
        return Err(format!(
            "--before {before} would drop the current year's collections ({current}); \
             --before {current} is the most that can be dropped"
        ));
    }
    Ok(collections
        .iter()
        .filter(|c| c.year < before && c.year < current)
        .cloned()
        .collect())
}

/// `512 B`, `1.5 KB`, `12.0 MB`, `1.20 GB` (powers of 1,024).
pub fn human_bytes(bytes: u64) -> String {
    const K: f64 = 1024.0;
    let b = bytes as f64;
    if b < K {
        format!("{bytes} B")
    } else if b < K * K {
        format!("{:.1} KB", b / K)
    } else if b < K * K * K {
        format!("{:.1} MB", b / (K * K))
    } else {
        format!("{:.2} GB", b / (K * K * K))
    }
}

fn totals(collections: &[ReportCollection]) -> CollectionStats {
    collections
        .iter()
        .fold(CollectionStats::default(), |t, c| CollectionStats {
            documents: t.documents + c.stats.documents,
            bytes: t.bytes + c.stats.bytes,
        })
}

fn print_table(collections: &[ReportCollection], total_label: &str) {
    let width = collections
        .iter()
        .map(|c| c.collection.len())
        .chain([total_label.len(), "collection".len()])
        .max()
        .unwrap_or(10);
    println!(
        "{:<width$}  {:>4}  {:>10}  {:>10}",
        "collection", "year", "documents", "size"
    );
    for c in collections {
        println!(
            "{:<width$}  {:>4}  {:>10}  {:>10}",
            c.collection,
            c.year,
            c.stats.documents,
            human_bytes(c.stats.bytes)
        );
    }
    let total = totals(collections);
    println!(
        "{:<width$}  {:>4}  {:>10}  {:>10}",
        total_label,
        "",
        total.documents,
        human_bytes(total.bytes)
    );
}

pub async fn run(settings: &StoreSettings, cmd: CollectionsCommand) -> Result<(), CliError> {
    let store = settings.open().await?;
    let (collections, others) = report_collections(store.as_ref()).await?;
    match cmd {
        CollectionsCommand::List { json: true } => {
            let text = serde_json::to_string_pretty(&collections)
                .map_err(|e| CliError::Failed(format!("cannot print the list: {e}")))?;
            println!("{text}");
        }
        CollectionsCommand::List { json: false } => {
            if collections.is_empty() {
                println!("no report collections");
            } else {
                print_table(&collections, &format!("total ({})", collections.len()));
            }
            if !others.is_empty() {
                println!("other collections (not reports): {}", others.join(", "));
            }
        }
        CollectionsCommand::Drop { before, yes } => {
            let selected =
                select_for_drop(&collections, before, current_year()).map_err(CliError::Usage)?;
            if selected.is_empty() {
                println!("no report collection of a year before {before}: nothing to drop");
                return Ok(());
            }
            if !yes {
                println!("would drop:");
                print_table(&selected, &format!("total ({})", selected.len()));
                println!("nothing dropped; add --yes to drop");
                return Ok(());
            }
            for c in &selected {
                store.drop_collection(&c.collection).await?;
                println!(
                    "dropped {} ({} documents, {})",
                    c.collection,
                    c.stats.documents,
                    human_bytes(c.stats.bytes)
                );
            }
            let total = totals(&selected);
            println!(
                "dropped {} collections: {} documents, {}",
                selected.len(),
                total.documents,
                human_bytes(total.bytes)
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coll(name: &str) -> ReportCollection {
        let (report, year) = parse_report_collection(name).unwrap();
        ReportCollection {
            collection: name.to_owned(),
            report,
            year,
            stats: CollectionStats::default(),
        }
    }

    fn names(v: &[ReportCollection]) -> Vec<&str> {
        v.iter().map(|c| c.collection.as_str()).collect()
    }

    #[test]
    fn only_report_families_with_four_digit_years_are_report_collections() {
        assert_eq!(
            parse_report_collection("traffic.2026"),
            Some((ReportKind::Traffic, 2026))
        );
        assert_eq!(
            parse_report_collection("events_5m.2011"),
            Some((ReportKind::Events5m, 2011))
        );
        for other in [
            "sites",
            "imports",
            "imports.2024",
            "traffic",
            "traffic.26",
            "traffic.20260",
            "traffic.2026x",
            "traffic.+202",
            "traffic.2026.old",
            "Traffic.2026",
        ] {
            assert_eq!(parse_report_collection(other), None, "{other}");
        }
    }

    #[test]
    fn drop_selects_years_strictly_before() {
        let all: Vec<_> = [
            "content.2023",
            "traffic.2023",
            "traffic.2024",
            "traffic.2025",
            "traffic.2026",
        ]
        .into_iter()
        .map(coll)
        .collect();
        assert_eq!(
            names(&select_for_drop(&all, 2025, 2026).unwrap()),
            ["content.2023", "traffic.2023", "traffic.2024"]
        );
        assert!(select_for_drop(&all, 2023, 2026).unwrap().is_empty());
        // The current year is the most: its own collections stay.
        assert_eq!(
            names(&select_for_drop(&all, 2026, 2026).unwrap()),
            [
                "content.2023",
                "traffic.2023",
                "traffic.2024",
                "traffic.2025"
            ]
        );
    }

    #[test]
    fn drop_refuses_a_year_past_the_current_one() {
        let all = vec![coll("traffic.2026")];
        let e = select_for_drop(&all, 2027, 2026).unwrap_err();
        assert!(e.contains("2027") && e.contains("--before 2026"), "{e}");
    }

    #[test]
    fn sizes_are_human() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KB");
        assert_eq!(human_bytes(5 * 1024 * 1024), "5.0 MB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.00 GB");
    }
}
