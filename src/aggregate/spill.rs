//! `--durable`: spill files, where a flush puts what it drained while the store is away.
//!
//! A flush that finds the store away does not leave its increments in memory: it writes them,
//! already merged, to `spill/<n>.spill` in the durable directory (the journal's record format,
//! [`super::journal::encode`], one record per site and at most [`DOCS_PER_RECORD`] documents;
//! `fdatasync`, then the directory), and only then lets the checkpoint list the file and
//! consume the log segments the drain covered (see [`super::checkpoint`]). When the store
//! answers again, flushes load the listed files back into the coalescer a few at a time, and a
//! file is deleted once a checkpoint no longer lists it. A file no checkpoint lists is
//! garbage: a crash came between its write and the checkpoint, and its hits are still in the
//! segments. This module only reads and writes files; it must not talk to the store.

use super::journal::{self, JournalError};
use super::{Drained, Value};
use crate::field::FieldKey;
use crate::reports::{DocKey, Increments};
use crate::site::SiteId;
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The folder of the spill files, inside the durable directory.
pub const SPILL: &str = "spill";
/// Documents per record: the record format numbers a record's documents with one byte.
pub const DOCS_PER_RECORD: usize = 64;
/// Bytes of fields per record, well under the journal's limit on a record (1 MiB).
const BYTES_PER_RECORD: usize = 256 * 1024;

/// A spill file as the checkpoint lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpillFile {
    pub n: u64,
    pub bytes: u64,
    /// The (document, field) entries it holds.
    pub entries: u64,
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.display().to_string(),
        source,
    }
}

pub fn dir(durable: &Path) -> PathBuf {
    durable.join(SPILL)
}

pub fn path(durable: &Path, n: u64) -> PathBuf {
    dir(durable).join(format!("{n:016}.spill"))
}

/// Writes `drained` to spill file `n` and makes it durable (the file, then its directory).
pub fn write(durable: &Path, n: u64, drained: &Drained) -> Result<SpillFile, JournalError> {
    let folder = dir(durable);
    fs::create_dir_all(&folder).map_err(io_error(&folder))?;
    let bytes = encode(drained);
    let path = path(durable, n);
    let written = (|| {
        let mut file = File::create(&path)?;
        file.write_all(&bytes)?;
        file.sync_data()?;
        File::open(&folder)?.sync_all()
    })();
    if let Err(e) = written {
        // Not listed anywhere: it must not stay behind half written.
        let _ = fs::remove_file(&path);
        return Err(io_error(&path)(e));
    }
    Ok(SpillFile {
        n,
        bytes: bytes.len() as u64,
        entries: drained.iter().map(|(_, fields)| fields.len() as u64).sum(),
    })
}

/// Merges records read from spill files, oldest first, into one drain: counters add up, the
/// newest text wins.
pub fn merge(files: Vec<Vec<(SiteId, Increments)>>) -> Drained {
    let mut merged: BTreeMap<DocKey, HashMap<FieldKey, Value>> = BTreeMap::new();
    for records in files {
        for (site, incs) in records {
            for (doc, field, value) in incs.entries {
                let fields = merged
                    .entry(DocKey {
                        site: site.clone(),
                        doc,
                    })
                    .or_default();
                match (fields.get_mut(&field), value) {
                    (Some(Value::Inc(n)), Value::Inc(by)) => *n += by,
                    (Some(Value::Max(n)), Value::Max(v)) => *n = (*n).max(v),
                    (Some(current), value) => *current = value,
                    (None, value) => {
                        fields.insert(field, value);
                    }
                }
            }
        }
    }
    merged
        .into_iter()
        .map(|(key, fields)| {
            let mut fields: Vec<_> = fields.into_iter().collect();
            fields.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            (key, fields)
        })
        .collect()
}

/// `drained` as journal records: per site, runs of at most [`DOCS_PER_RECORD`] documents and
/// about `BYTES_PER_RECORD` bytes (a document's fields may be split over records; read back
/// they merge into the same fields).
pub fn encode(drained: &Drained) -> Vec<u8> {
    let mut out = Vec::new();
    let mut record: Option<(&SiteId, Increments)> = None;
    let (mut docs, mut bytes) = (0, 0);
    for (DocKey { site, doc }, fields) in drained {
        let other_site = record.as_ref().is_some_and(|(s, _)| *s != site);
        if other_site || docs == DOCS_PER_RECORD {
            if let Some((s, incs)) = record.take() {
                journal::encode(s, &incs, &mut out);
            }
            (docs, bytes) = (0, 0);
        }
        docs += 1;
        for (field, value) in fields {
            if bytes >= BYTES_PER_RECORD {
                if let Some((s, incs)) = record.take() {
                    journal::encode(s, &incs, &mut out);
                }
                (docs, bytes) = (1, 0);
            }
            bytes += field.as_str().len()
                + match value {
                    Value::Inc(_) | Value::Max(_) => 8,
                    Value::Set(text) => text.len(),
                };
            let (_, incs) = record.get_or_insert_with(|| (site, Increments::default()));
            incs.entries.push((*doc, field.clone(), value.clone()));
        }
    }
    if let Some((s, incs)) = record {
        journal::encode(s, &incs, &mut out);
    }
    out
}

/// What a spill file holds, and how many bytes at its end did not form a whole record (none,
/// unless the disk lost them: a file is listed only once it is synced).
pub fn read(durable: &Path, n: u64) -> Result<(Vec<(SiteId, Increments)>, u64), JournalError> {
    let path = path(durable, n);
    let bytes = fs::read(&path).map_err(io_error(&path))?;
    let mut out = Vec::new();
    let torn = journal::read_records(&bytes, &mut out);
    Ok((out, torn))
}

/// Deletes the spill files not in `listed` (sorted or not). Returns how many it deleted.
pub fn remove_unlisted(durable: &Path, listed: &[u64]) -> Result<usize, JournalError> {
    let folder = dir(durable);
    let entries = match fs::read_dir(&folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_error(&folder)(e)),
    };
    let mut removed = 0;
    for entry in entries {
        let path = entry.map_err(io_error(&folder))?.path();
        let n = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".spill"))
            .and_then(|n| n.parse::<u64>().ok());
        if n.is_some_and(|n| listed.contains(&n)) {
            continue;
        }
        fs::remove_file(&path).map_err(io_error(&path))?;
        removed += 1;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::period::Period;
    use crate::reports::{DocRef, ReportKind};
    use std::collections::BTreeMap;

    fn key(site: &str, day: u8) -> DocKey {
        DocKey {
            site: SiteId::parse(site).unwrap(),
            doc: DocRef {
                kind: ReportKind::Content,
                period: Period::Day(2026, 11, day),
            },
        }
    }

    /// Merges records back per (document, field), as loading them into the coalescer does.
    fn merged(records: Vec<(SiteId, Increments)>) -> BTreeMap<(DocKey, String), Value> {
        let mut out = BTreeMap::new();
        for (site, incs) in records {
            for (doc, field, value) in incs.entries {
                let k = (
                    DocKey {
                        site: site.clone(),
                        doc,
                    },
                    field.as_str().to_owned(),
                );
                match (out.get_mut(&k), value) {
                    (Some(Value::Inc(n)), Value::Inc(by)) => *n += by,
                    (Some(_), _) => panic!("a text twice: {k:?}"),
                    (None, value) => {
                        out.insert(k, value);
                    }
                }
            }
        }
        out
    }

    /// Three sites, 300 documents for one of them (more than one record may number), and a
    /// document whose fields are larger than a record may be: everything reads back as it was
    /// written, counters and texts, and a file not listed is deleted while a listed one stays.
    #[test]
    fn a_spill_file_reads_back_what_was_drained_and_unlisted_files_are_deleted() {
        let tmp = tempfile::tempdir().unwrap();
        let mut drained: Drained = Vec::new();
        for day in 1..=28 {
            drained.push((
                key("acme", day),
                vec![
                    (
                        FieldKey::parse("p./a.t").unwrap(),
                        Value::Set("A — é".into()),
                    ),
                    (
                        FieldKey::parse("p./a.v").unwrap(),
                        Value::Inc(i64::from(day)),
                    ),
                ],
            ));
        }
        let big: Vec<_> = (0..12_000)
            .map(|i| {
                (
                    FieldKey::parse(&format!("p./{i:0>40}.v")).unwrap(),
                    Value::Inc(i),
                )
            })
            .collect();
        drained.push((key("big", 1), big));
        for i in 0..300u32 {
            let doc = DocKey {
                site: SiteId::parse("many").unwrap(),
                doc: DocRef {
                    kind: ReportKind::EventsHour,
                    period: Period::Hour(2026, 11, 1 + (i / 24) as u8, (i % 24) as u8),
                },
            };
            drained.push((
                doc,
                vec![(FieldKey::parse("e.x.c").unwrap(), Value::Inc(1))],
            ));
        }
        drained.sort_by(|a, b| a.0.cmp(&b.0));
        let file = write(tmp.path(), 7, &drained).unwrap();
        assert_eq!(file.bytes, fs::metadata(path(tmp.path(), 7)).unwrap().len());
        assert_eq!(file.entries, 28 * 2 + 12_000 + 300);
        let (records, torn) = read(tmp.path(), 7).unwrap();
        assert_eq!(torn, 0);
        assert!(records.len() > 5, "split into records: {}", records.len());
        let mut expected = BTreeMap::new();
        for (key, fields) in &drained {
            for (field, value) in fields {
                expected.insert((key.clone(), field.as_str().to_owned()), value.clone());
            }
        }
        assert_eq!(merged(records), expected);

        write(tmp.path(), 8, &drained[..3].to_vec()).unwrap();
        fs::write(dir(tmp.path()).join("0000000000000009.spill"), b"half").unwrap();
        assert_eq!(remove_unlisted(tmp.path(), &[8]).unwrap(), 2);
        assert!(path(tmp.path(), 8).exists());
        assert!(!path(tmp.path(), 7).exists());
        assert_eq!(read(tmp.path(), 8).unwrap().0.len(), 1);
    }
}
