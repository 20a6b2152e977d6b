//! `--durable`: the flusher's checkpoint, the half of the durable log that says what is not yet
//! known to be in the store.
//!
//! One small BSON file, `checkpoint.bson`, replaced atomically (written aside, `fsync`ed,
//! renamed over the old one, directory `fsync`ed) once per flush, before the flush sends its
//! batch. It holds:
//!
//! - the writer's identity and **epoch** (raised and saved at every start, so flush numbers
//!   `epoch << 32 | n` never repeat);
//! - **consumed**: the journal segments below it are in this checkpoint and are deleted;
//! - **statements**: every statement sent or about to be sent whose outcome is not known, each
//!   with its mark. Replaying them is safe: a statement that reached the store is recognised
//!   by its mark and skipped (see [`crate::store::Mark`]), so a crash right after a flush
//!   counts nothing twice;
//! - **carried**: increments put back into the coalescer without being sent (their documents
//!   were busy or unreadable); they are counted again from here;
//! - **spilled**: the spill files (see [`super::spill`]) holding what flushes drained while the
//!   store was away. A spill file is written and synced before a checkpoint lists it, and
//!   deleted only after a checkpoint that no longer lists it is saved; files not listed are
//!   deleted at start.
//!
//! Every accepted increment is therefore in exactly one place at every moment: a journal
//! segment not yet consumed, this file, or a spill file it lists. A lock file keeps a second
//! process off the same directory. This module must not talk to the store.

use super::identity::Writer;
use super::journal::JournalError;
use super::spill::{self, SpillFile};
use super::statement::update_of;
use super::{Drained, Value};
use crate::field::FieldKey;
use crate::period::Period;
use crate::reports::{DocKey, DocRef, ReportKind};
use crate::site::SiteId;
use crate::store::{Batch, DocUpdate, Guard, Mark};
use mongodb::bson::{doc, Bson, Document};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const FILE: &str = "checkpoint.bson";
/// The fewest spill files [`Checkpoint::compact`] merges into one.
pub const COMPACT_RUN: usize = 8;
const LOCK: &str = "lock";

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("durable log {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("durable log {path}: another tally process uses this directory (give each process its own --durable-dir)")]
    Locked { path: String },
    #[error("durable log {path}: the checkpoint is unreadable: {message}")]
    Corrupt { path: String, message: String },
    #[error(transparent)]
    Journal(#[from] JournalError),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.display().to_string(),
        source,
    }
}

pub struct Checkpoint {
    dir: PathBuf,
    writer_id: String,
    epoch: u32,
    consumed: u64,
    /// The last saved checkpoint owed nothing (so an idle flusher does not rewrite it).
    empty: bool,
    /// The spill files listed, oldest first.
    spills: Vec<SpillFile>,
    /// The spill list changed since the last save (which must then be written).
    spills_changed: bool,
    /// The number of the next spill file.
    next_spill: u64,
    journal: Arc<super::journal::Journal>,
    /// Held while the process lives: the directory is ours.
    _lock: File,
}

/// What a start finds in the checkpoint.
pub struct Recovered {
    pub writer: Writer,
    pub statements: Vec<(DocKey, DocUpdate)>,
    pub carried: Drained,
    pub consumed: u64,
    /// The spill files the checkpoint lists (loaded back by flushes, not at start).
    pub spills: Vec<SpillFile>,
    /// Spill files found that no checkpoint listed, deleted.
    pub unlisted_spills: usize,
}

impl Checkpoint {
    /// Locks `dir`, reads its checkpoint (if any), raises the epoch and saves it at once.
    /// The journal is opened by the caller with the returned `consumed`; see [`super::journal`].
    pub fn open(dir: &Path) -> Result<(Recovered, PendingCheckpoint), CheckpointError> {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        let lock_path = dir.join(LOCK);
        let lock = File::create(&lock_path).map_err(io_error(&lock_path))?;
        if lock.try_lock().is_err() {
            return Err(CheckpointError::Locked {
                path: dir.display().to_string(),
            });
        }
        let path = dir.join(FILE);
        let corrupt = |message: String| CheckpointError::Corrupt {
            path: path.display().to_string(),
            message,
        };
        let (writer_id, epoch, consumed, statements, carried, spills) = match fs::read(&path) {
            Ok(bytes) => {
                let doc =
                    Document::from_reader(bytes.as_slice()).map_err(|e| corrupt(e.to_string()))?;
                read(&doc).map_err(corrupt)?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                (new_writer_id(), 0, 0, Vec::new(), Vec::new(), Vec::new())
            }
            Err(e) => return Err(io_error(&path)(e)),
        };
        // A spill file no checkpoint lists was cut off by a crash before its checkpoint: its
        // increments are still in the segments.
        let listed: Vec<u64> = spills.iter().map(|f| f.n).collect();
        let unlisted_spills = spill::remove_unlisted(dir, &listed)?;
        let epoch = epoch
            .checked_add(1)
            .ok_or_else(|| corrupt("the epoch is exhausted".into()))?;
        let recovered = Recovered {
            writer: Writer::new(writer_id.clone(), epoch),
            statements,
            carried,
            consumed,
            spills,
            unlisted_spills,
        };
        Ok((
            recovered,
            PendingCheckpoint {
                dir: dir.to_owned(),
                writer_id,
                epoch,
                consumed,
                lock,
            },
        ))
    }

    /// Saves the flusher's state: `cut` (the journal's first open segment after the drain this
    /// flush took, if any), the statements owed from earlier flushes, this flush's batches,
    /// and what it carried over. Then deletes the consumed segments.
    pub fn save(
        &mut self,
        cut: Option<u64>,
        queue: &[(DocKey, DocUpdate)],
        batches: &[(&Batch, &Vec<Vec<DocKey>>)],
        carried: &Drained,
    ) -> Result<(), CheckpointError> {
        let consumed = cut.unwrap_or(self.consumed).max(self.consumed);
        let empty = queue.is_empty()
            && carried.is_empty()
            && self.spills.is_empty()
            && batches.iter().all(|(b, _)| b.statements() == 0);
        if empty && self.empty && consumed == self.consumed && !self.spills_changed {
            return Ok(());
        }
        let mut statements = Vec::new();
        for (key, update) in queue {
            statements.push(Bson::Document(statement(key, update)));
        }
        for (batch, keys) in batches {
            for (coll, keys) in batch.collections.iter().zip(keys.iter()) {
                for (update, key) in coll.docs.iter().zip(keys) {
                    statements.push(Bson::Document(statement(key, update)));
                }
            }
        }
        let carried: Vec<Bson> = carried
            .iter()
            .map(|(key, fields)| {
                let mut d = key_doc(key);
                d.insert("fields", fields_array(fields));
                Bson::Document(d)
            })
            .collect();
        let spilled: Vec<Bson> = self
            .spills
            .iter()
            .map(|f| {
                Bson::Document(doc! {
                    "n": f.n as i64,
                    "bytes": f.bytes as i64,
                    "entries": f.entries as i64,
                })
            })
            .collect();
        let doc = doc! {
            "v": 1,
            "writer": &self.writer_id,
            "epoch": i64::from(self.epoch),
            "consumed": consumed as i64,
            "statements": statements,
            "carried": carried,
            "spilled": spilled,
        };
        let size = write_atomically(&self.dir, &doc)?;
        self.consumed = consumed;
        self.empty = empty;
        self.journal.retire(consumed);
        if std::mem::take(&mut self.spills_changed) {
            // Files loaded back are no longer listed: their increments are in this checkpoint
            // (or beyond it, in the store).
            let listed: Vec<u64> = self.spills.iter().map(|f| f.n).collect();
            if let Err(e) = spill::remove_unlisted(&self.dir, &listed) {
                tracing::warn!(error = %e, "durable log: cannot delete a spill file loaded back");
            }
        }
        self.journal
            .set_other_bytes(size + self.spills.iter().map(|f| f.bytes).sum::<u64>());
        Ok(())
    }

    /// Writes `drained` to a new spill file (synced) and lists it for the next save; see
    /// [`super::spill`]. Until that save, the file is not listed and its increments are still
    /// in the log segments.
    pub fn spill(&mut self, drained: &Drained) -> Result<(), CheckpointError> {
        let file = spill::write(&self.dir, self.next_spill, drained)?;
        self.next_spill += 1;
        self.spills.push(file);
        self.spills_changed = true;
        Ok(())
    }

    /// Merges a run of spill files into one, so a long outage takes the bytes of what it
    /// touched rather than of every flush: the first run of at least [`COMPACT_RUN`]
    /// consecutive files that starts with a file holding fewer than half of `max_entries` and
    /// holds at most `max_entries` in all. The merged file is written and synced, and takes the
    /// run's place in the list; the next save lists it instead of them and deletes them. A
    /// crash before that save leaves the merged file unlisted (deleted at start) and the run
    /// listed. Returns how many files were merged.
    pub fn compact(&mut self, max_entries: u64) -> Result<usize, CheckpointError> {
        let run = |start: usize| {
            let (mut end, mut entries) = (start, 0);
            while end < self.spills.len() && entries + self.spills[end].entries <= max_entries {
                entries += self.spills[end].entries;
                end += 1;
            }
            end
        };
        let found = (0..self.spills.len().saturating_sub(COMPACT_RUN - 1))
            .filter(|&start| self.spills[start].entries < max_entries / 2)
            .map(|start| (start, run(start)))
            .find(|(start, end)| end - start >= COMPACT_RUN);
        let Some((start, end)) = found else {
            return Ok(0);
        };
        let mut files = Vec::with_capacity(end - start);
        for f in &self.spills[start..end] {
            let (records, torn) = spill::read(&self.dir, f.n)?;
            if torn > 0 {
                // Left as it is: loading it back reports what is lost.
                return Ok(0);
            }
            files.push(records);
        }
        let merged = spill::merge(files);
        let file = spill::write(&self.dir, self.next_spill, &merged)?;
        self.next_spill += 1;
        self.spills.splice(start..end, [file]);
        self.spills_changed = true;
        Ok(end - start)
    }

    /// The spill files listed, oldest first.
    pub fn spill_files(&self) -> &[SpillFile] {
        &self.spills
    }

    /// Takes the `count` oldest spill files off the list: the caller has loaded them into the
    /// coalescer. The next save no longer lists them, and deletes them; a crash before that
    /// save finds them listed still.
    pub fn forget_spills(&mut self, count: usize) {
        if count > 0 {
            self.spills.drain(..count.min(self.spills.len()));
            self.spills_changed = true;
        }
    }

    /// The durable directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// A checkpoint opened and locked, waiting for its journal.
pub struct PendingCheckpoint {
    dir: PathBuf,
    writer_id: String,
    epoch: u32,
    consumed: u64,
    lock: File,
}

impl PendingCheckpoint {
    /// Saves the raised epoch with the recovered state unchanged, and binds the journal.
    pub fn start(
        self,
        journal: Arc<super::journal::Journal>,
        recovered: &Recovered,
    ) -> Result<Checkpoint, CheckpointError> {
        let mut checkpoint = Checkpoint {
            dir: self.dir,
            writer_id: self.writer_id,
            epoch: self.epoch,
            consumed: self.consumed,
            empty: false,
            spills: recovered.spills.clone(),
            spills_changed: false,
            next_spill: recovered.spills.iter().map(|f| f.n + 1).max().unwrap_or(0),
            journal,
            _lock: self.lock,
        };
        checkpoint.save(None, &recovered.statements, &[], &recovered.carried)?;
        Ok(checkpoint)
    }
}

fn new_writer_id() -> String {
    let mut bytes = [0u8; 6];
    let _ = getrandom::fill(&mut bytes);
    hex::encode(bytes)
}

/// Replaces the checkpoint; returns its size.
fn write_atomically(dir: &Path, doc: &Document) -> Result<u64, CheckpointError> {
    let path = dir.join(FILE);
    let aside = dir.join(format!("{FILE}.new"));
    let mut bytes = Vec::new();
    doc.to_writer(&mut bytes)
        .map_err(|e| CheckpointError::Corrupt {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
    let mut file = File::create(&aside).map_err(io_error(&aside))?;
    file.write_all(&bytes).map_err(io_error(&aside))?;
    file.sync_data().map_err(io_error(&aside))?;
    drop(file);
    fs::rename(&aside, &path).map_err(io_error(&path))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))?;
    Ok(bytes.len() as u64)
}

fn key_doc(key: &DocKey) -> Document {
    doc! {
        "site": key.site.as_str(),
        "kind": key.doc.kind.name(),
        "period": key.doc.period.to_string(),
    }
}

fn fields_array(fields: &[(FieldKey, Value)]) -> Vec<Bson> {
    fields
        .iter()
        .map(|(f, v)| {
            let value = match v {
                Value::Inc(n) => Bson::Int64(*n),
                Value::Set(t) => Bson::String(t.to_string()),
            };
            Bson::Array(vec![Bson::String(f.as_str().to_owned()), value])
        })
        .collect()
}

fn statement(key: &DocKey, update: &DocUpdate) -> Document {
    let mut d = key_doc(key);
    let mut fields: Vec<(FieldKey, Value)> = update
        .inc
        .iter()
        .map(|(f, n)| (f.clone(), Value::Inc(*n)))
        .collect();
    fields.extend(
        update
            .set
            .iter()
            .map(|(f, t)| (f.clone(), Value::Set(t.as_str().into()))),
    );
    d.insert("fields", fields_array(&fields));
    if update.id != key.id() {
        // A parked entry (see `super::parked`): its own id, in the `parked` collection.
        d.insert("id", &update.id);
    }
    if let Some(guard) = &update.guard {
        d.insert(
            "guard",
            doc! {"field": guard.field.as_str(), "max": guard.max},
        );
    }
    if let Some(mark) = &update.mark {
        d.insert("mark", doc! {"writer": &mark.writer, "seq": mark.seq});
    }
    d
}

type Read = (
    String,
    u32,
    u64,
    Vec<(DocKey, DocUpdate)>,
    Drained,
    Vec<SpillFile>,
);

fn read(doc: &Document) -> Result<Read, String> {
    let writer = doc.get_str("writer").map_err(|e| e.to_string())?;
    if writer.len() != 12 || !writer.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("bad writer id {writer:?}"));
    }
    let number = |field: &str| -> Result<i64, String> {
        match doc.get(field) {
            Some(Bson::Int64(n)) => Ok(*n),
            Some(Bson::Int32(n)) => Ok(i64::from(*n)),
            _ => Err(format!("no {field}")),
        }
    };
    let epoch = u32::try_from(number("epoch")?).map_err(|e| e.to_string())?;
    let consumed = u64::try_from(number("consumed")?).map_err(|e| e.to_string())?;
    let mut statements = Vec::new();
    for s in doc.get_array("statements").map_err(|e| e.to_string())? {
        let s = s.as_document().ok_or("a statement is not a document")?;
        let (key, fields) = read_key_fields(s)?;
        let mut update = update_of(&key, fields);
        if let Ok(id) = s.get_str("id") {
            update.id = id.to_owned();
        }
        if let Ok(g) = s.get_document("guard") {
            update.guard = Some(Guard {
                field: g
                    .get_str("field")
                    .ok()
                    .and_then(FieldKey::parse)
                    .ok_or("bad guard")?,
                max: g.get_i64("max").map_err(|e| e.to_string())?,
            });
        }
        if let Ok(m) = s.get_document("mark") {
            update.mark = Some(Mark {
                writer: m.get_str("writer").map_err(|e| e.to_string())?.to_owned(),
                seq: m.get_i64("seq").map_err(|e| e.to_string())?,
            });
        }
        statements.push((key, update));
    }
    let mut carried = Vec::new();
    for c in doc.get_array("carried").map_err(|e| e.to_string())? {
        let c = c.as_document().ok_or("a carried entry is not a document")?;
        carried.push(read_key_fields(c)?);
    }
    let mut spills = Vec::new();
    // A checkpoint written before spill files existed lists none.
    if let Ok(list) = doc.get_array("spilled") {
        for s in list {
            let s = s.as_document().ok_or("a spill entry is not a document")?;
            let number = |field: &str| -> Result<u64, String> {
                let n = s.get_i64(field).map_err(|e| e.to_string())?;
                u64::try_from(n).map_err(|e| e.to_string())
            };
            spills.push(SpillFile {
                n: number("n")?,
                bytes: number("bytes")?,
                entries: number("entries")?,
            });
        }
    }
    Ok((
        writer.to_owned(),
        epoch,
        consumed,
        statements,
        carried,
        spills,
    ))
}

fn read_key_fields(d: &Document) -> Result<(DocKey, Vec<(FieldKey, Value)>), String> {
    let site =
        SiteId::parse(d.get_str("site").map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let kind_name = d.get_str("kind").map_err(|e| e.to_string())?;
    let kind = *ReportKind::ALL
        .iter()
        .find(|k| k.name() == kind_name)
        .ok_or_else(|| format!("unknown report {kind_name:?}"))?;
    let period = d
        .get_str("period")
        .ok()
        .and_then(Period::parse)
        .ok_or("bad period")?;
    let mut fields = Vec::new();
    for f in d.get_array("fields").map_err(|e| e.to_string())? {
        let pair = f.as_array().filter(|p| p.len() == 2).ok_or("bad field")?;
        let field = pair[0]
            .as_str()
            .and_then(FieldKey::parse)
            .ok_or("bad field name")?;
        let value = match &pair[1] {
            Bson::Int64(n) => Value::Inc(*n),
            Bson::Int32(n) => Value::Inc(i64::from(*n)),
            Bson::String(t) => Value::Set(t.as_str().into()),
            _ => return Err("bad field value".into()),
        };
        fields.push((field, value));
    }
    Ok((
        DocKey {
            site,
            doc: DocRef { kind, period },
        },
        fields,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_checkpoint_reads_back_with_a_raised_epoch_and_locks_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let key = DocKey {
            site: SiteId::parse("acme").unwrap(),
            doc: DocRef {
                kind: ReportKind::Content,
                period: Period::Month(2026, 11),
            },
        };
        let update = DocUpdate {
            id: key.id(),
            inc: vec![(FieldKey::parse("p./a.v").unwrap(), 7)],
            set: vec![(FieldKey::parse("p./a.t").unwrap(), "A".into())],
            guard: Some(Guard {
                field: FieldKey::parse("n").unwrap(),
                max: 999,
            }),
            mark: Some(Mark {
                writer: "0123456789ab".into(),
                seq: (1 << 32) | 5,
            }),
            unset: Vec::new(),
        };
        let first_writer;
        {
            let (recovered, pending) = Checkpoint::open(dir.path()).unwrap();
            assert!(matches!(
                Checkpoint::open(dir.path()),
                Err(CheckpointError::Locked { .. })
            ));
            first_writer = recovered.writer.id.clone();
            assert_eq!(recovered.writer.epoch, 1);
            let (journal, _) =
                super::super::journal::Journal::open(dir.path(), 0, Duration::ZERO).unwrap();
            let mut checkpoint = pending.start(journal.clone(), &recovered).unwrap();
            let carried = vec![(
                key.clone(),
                vec![(FieldKey::parse("v").unwrap(), Value::Inc(2))],
            )];
            checkpoint
                .save(Some(3), &[(key.clone(), update.clone())], &[], &carried)
                .unwrap();
            journal.close();
        }
        let (recovered, _pending) = Checkpoint::open(dir.path()).unwrap();
        assert_eq!(recovered.writer.id, first_writer);
        assert_eq!(recovered.writer.epoch, 2);
        assert_eq!(recovered.consumed, 3);
        assert_eq!(recovered.statements, vec![(key.clone(), update)]);
        assert_eq!(
            recovered.carried[0].1,
            vec![(FieldKey::parse("v").unwrap(), Value::Inc(2))]
        );
    }

    /// The spill rule: a file is listed once a save lists it; one written but cut off by a
    /// crash before the save is deleted at start (its hits are still in the segments); one
    /// taken back is deleted by the next save, which no longer lists it. The directory's bytes
    /// follow: segments, spill files and the checkpoint.
    #[test]
    fn spill_files_not_in_the_checkpoint_are_deleted() {
        use super::super::journal::Journal;
        let dir = tempfile::tempdir().unwrap();
        let key = DocKey {
            site: SiteId::parse("acme").unwrap(),
            doc: DocRef {
                kind: ReportKind::Traffic,
                period: Period::Month(2026, 11),
            },
        };
        let drained: Drained = vec![(
            key.clone(),
            vec![(FieldKey::parse("v").unwrap(), Value::Inc(41))],
        )];
        {
            let (recovered, pending) = Checkpoint::open(dir.path()).unwrap();
            let (journal, _) = Journal::open(dir.path(), 0, Duration::ZERO).unwrap();
            journal.set_max_bytes(10_000);
            let mut checkpoint = pending.start(journal.clone(), &recovered).unwrap();
            let mut incs = crate::reports::Increments::default();
            incs.add(
                key.doc.kind,
                key.doc.period,
                FieldKey::parse("v").unwrap(),
                1,
            );
            let site = key.site.clone();
            journal.append(&site, &incs);
            let logged = journal.bytes();
            assert!(logged > 0);
            let cut = journal.rotate();
            checkpoint.spill(&drained).unwrap();
            checkpoint.save(Some(cut), &[], &[], &Vec::new()).unwrap();
            // the segment is consumed; the spill file and the checkpoint remain
            let on_disk = |p: &Path| fs::metadata(p).unwrap().len();
            assert_eq!(
                journal.bytes(),
                on_disk(&spill::path(dir.path(), 0)) + on_disk(&dir.path().join(FILE))
            );
            assert!(!journal.full());
            journal.set_max_bytes(journal.bytes());
            assert!(journal.full());
            // written, not yet listed: a crash now
            checkpoint.spill(&drained).unwrap();
            assert!(spill::path(dir.path(), 1).exists());
            journal.close();
        }
        let (recovered, pending) = Checkpoint::open(dir.path()).unwrap();
        assert_eq!(recovered.unlisted_spills, 1);
        assert_eq!(recovered.spills.len(), 1);
        assert_eq!(recovered.spills[0].n, 0);
        assert!(spill::path(dir.path(), 0).exists());
        assert!(!spill::path(dir.path(), 1).exists());
        let (journal, _) = Journal::open(dir.path(), recovered.consumed, Duration::ZERO).unwrap();
        let mut checkpoint = pending.start(journal.clone(), &recovered).unwrap();
        assert_eq!(checkpoint.spill_files().len(), 1);
        let (records, _) = spill::read(dir.path(), checkpoint.spill_files()[0].n).unwrap();
        assert_eq!(records[0].1.entries[0].2, Value::Inc(41));
        checkpoint.forget_spills(1);
        // the next file gets a new number, not the one deleted
        checkpoint.spill(&drained).unwrap();
        assert!(spill::path(dir.path(), 1).exists());
        checkpoint.save(None, &[], &[], &Vec::new()).unwrap();
        assert!(!spill::path(dir.path(), 0).exists(), "taken back: deleted");
        assert!(spill::path(dir.path(), 1).exists(), "listed: kept");
        journal.close();
        drop(checkpoint);
        let (recovered, _pending) = Checkpoint::open(dir.path()).unwrap();
        assert_eq!(
            recovered.spills.iter().map(|s| s.n).collect::<Vec<_>>(),
            vec![1]
        );
    }

    /// Merging spill files: a run of [`COMPACT_RUN`] small files becomes one whose counters are
    /// their sums and whose text is the newest; a file already holding half the bound is left
    /// alone; a crash before the save that lists the merged file keeps the run (the merged
    /// file is deleted at start); after the save the run is deleted.
    #[test]
    fn spill_files_merge_into_one_and_a_crash_keeps_the_run() {
        use super::super::journal::Journal;
        let dir = tempfile::tempdir().unwrap();
        let key = |day: u8| DocKey {
            site: SiteId::parse("acme").unwrap(),
            doc: DocRef {
                kind: ReportKind::Content,
                period: Period::Day(2026, 11, day),
            },
        };
        let drain = |i: i64| -> Drained {
            vec![(
                key(1),
                vec![
                    (
                        FieldKey::parse("p./a.t").unwrap(),
                        Value::Set(format!("A{i}").into()),
                    ),
                    (FieldKey::parse("p./a.v").unwrap(), Value::Inc(i)),
                ],
            )]
        };
        let big: Drained = vec![(
            key(2),
            (0..60)
                .map(|i| {
                    (
                        FieldKey::parse(&format!("p./{i}.v")).unwrap(),
                        Value::Inc(1),
                    )
                })
                .collect(),
        )];
        {
            let (recovered, pending) = Checkpoint::open(dir.path()).unwrap();
            let (journal, _) = Journal::open(dir.path(), 0, Duration::ZERO).unwrap();
            let mut checkpoint = pending.start(journal.clone(), &recovered).unwrap();
            checkpoint.spill(&big).unwrap();
            for i in 1..COMPACT_RUN as i64 {
                checkpoint.spill(&drain(i)).unwrap();
            }
            assert_eq!(checkpoint.compact(100).unwrap(), 0, "too few small files");
            checkpoint.spill(&drain(COMPACT_RUN as i64)).unwrap();
            checkpoint.save(None, &[], &[], &Vec::new()).unwrap();
            assert_eq!(checkpoint.compact(100).unwrap(), COMPACT_RUN);
            let list = checkpoint.spill_files().to_vec();
            assert_eq!(list.len(), 2, "{list:?}");
            assert_eq!(
                (list[0].n, list[0].entries),
                (0, 60),
                "the big file stays first"
            );
            assert_eq!(list[1].entries, 2);
            // a crash now: the merged file is not listed yet
            journal.close();
        }
        let (recovered, pending) = Checkpoint::open(dir.path()).unwrap();
        assert_eq!(recovered.unlisted_spills, 1);
        assert_eq!(recovered.spills.len(), 1 + COMPACT_RUN);
        let (journal, _) = Journal::open(dir.path(), 0, Duration::ZERO).unwrap();
        let mut checkpoint = pending.start(journal.clone(), &recovered).unwrap();
        assert_eq!(checkpoint.compact(100).unwrap(), COMPACT_RUN);
        checkpoint.save(None, &[], &[], &Vec::new()).unwrap();
        let merged = checkpoint.spill_files()[1];
        let (records, _) = spill::read(dir.path(), merged.n).unwrap();
        let mut fields = records[0].1.entries.clone();
        fields.sort_by(|a, b| a.1.cmp(&b.1));
        let sum: i64 = (1..=COMPACT_RUN as i64).sum();
        assert_eq!(
            fields.iter().map(|(_, _, v)| v.clone()).collect::<Vec<_>>(),
            vec![
                Value::Set(format!("A{COMPACT_RUN}").into()),
                Value::Inc(sum)
            ]
        );
        let mut on_disk: Vec<u64> = fs::read_dir(spill::dir(dir.path()))
            .unwrap()
            .map(|e| {
                let name = e.unwrap().file_name().into_string().unwrap();
                name.trim_end_matches(".spill").parse().unwrap()
            })
            .collect();
        on_disk.sort();
        assert_eq!(on_disk, vec![0, merged.n], "the run was deleted");
        journal.close();
    }

    /// A run too short before a large file does not keep the files after it from merging.
    #[test]
    fn a_short_run_does_not_block_a_later_one() {
        use super::super::journal::Journal;
        let dir = tempfile::tempdir().unwrap();
        let (recovered, pending) = Checkpoint::open(dir.path()).unwrap();
        let (journal, _) = Journal::open(dir.path(), 0, Duration::ZERO).unwrap();
        let mut checkpoint = pending.start(journal.clone(), &recovered).unwrap();
        let drain = |fields: usize| -> Drained {
            vec![(
                DocKey {
                    site: SiteId::parse("acme").unwrap(),
                    doc: DocRef {
                        kind: ReportKind::Content,
                        period: Period::Day(2026, 11, 1),
                    },
                },
                (0..fields)
                    .map(|i| {
                        (
                            FieldKey::parse(&format!("p./{i}.v")).unwrap(),
                            Value::Inc(1),
                        )
                    })
                    .collect(),
            )]
        };
        let sizes = [1, 1, 1, 98, 1, 1, 1, 1, 1, 1, 1, 1];
        for fields in sizes {
            checkpoint.spill(&drain(fields)).unwrap();
        }
        assert_eq!(checkpoint.compact(100).unwrap(), COMPACT_RUN);
        let entries: Vec<u64> = checkpoint.spill_files().iter().map(|f| f.entries).collect();
        assert_eq!(entries, vec![1, 1, 1, 98, 1]);
        journal.close();
    }
}
