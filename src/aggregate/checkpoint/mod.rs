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
//!
//! Layout: this file owns the directory, its lock and the file's atomic replacement; how
//! statements and increments are written into the BSON and read back is `format.rs`'s.

mod format;

use super::identity::{new_writer_id, Writer};
use super::journal::JournalError;
use super::spill::{self, SpillFile};
use super::Drained;
use crate::reports::DocKey;
use crate::store::{Batch, DocUpdate};
use format::{fields_array, key_doc, read, statement};
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

#[cfg(test)]
mod tests;
