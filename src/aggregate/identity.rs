//! A writer identity that is stable per node and data directory: the id behind the marks
//! `_w.<writer>` (see [`crate::store::Mark`]) of a process without `--durable`.
//!
//! `<data-dir>/writers/` holds numbered **slots**: `slot-<k>.lock`, locked (`flock`) by the
//! process that holds the slot for as long as it lives, and `slot-<k>.bson`, the slot's writer id
//! and **epoch**. A process takes the first slot it can lock, so `tally serve` and a
//! `tally import` running next to it never share a live identity, and a node that restarts gets
//! its old identity back: its documents keep one mark however often it restarts.
//!
//! The epoch is raised and saved (written aside, `fsync`ed, renamed, directory `fsync`ed) every
//! time a slot is taken, before the first flush, so flush numbers `epoch << 32 | n` never
//! repeat: a reused `(writer, seq)` would be refused as a duplicate, a silent loss.
//!
//! With `--durable` the identity comes from the durable checkpoint instead
//! ([`super::checkpoint`]), which raises its own epoch the same way. Either way the flusher
//! writes as a [`Writer`], defined here: the id and epoch, and the mark of each flush. This
//! module must not talk to the store.

use crate::store::Mark;
use mongodb::bson::{doc, Bson, Document};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The directory under `--data-dir`.
pub const DIR: &str = "writers";
/// Slots tried before giving up: more live tally processes than this on one data directory is
/// a mistake, not a deployment.
pub const MAX_SLOTS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("writer identity {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("writer identity {path}: the file is unreadable ({message}); move it away to start with a new identity")]
    Corrupt { path: String, message: String },
    #[error("writer identity {path}: all {MAX_SLOTS} slots are held by live tally processes")]
    NoFreeSlot { path: String },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> IdentityError + '_ {
    move |source| IdentityError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Which flushes a document has seen: the writer's identity and its next flush number.
#[derive(Debug, Clone)]
pub struct Writer {
    /// 12 lowercase hex digits.
    pub id: String,
    /// Flush numbers are `epoch << 32 | n`: a durable writer's epoch grows at every start, so
    /// its numbers never go back; a writer without a log is new at every start (epoch 0).
    pub epoch: u32,
    n: u32,
}

impl Writer {
    pub fn new(id: String, epoch: u32) -> Writer {
        Writer { id, epoch, n: 0 }
    }

    /// A writer with a random identity, for a process without a durable log.
    pub fn random() -> Writer {
        let mut bytes = [0u8; 6];
        // A constant identity would only weaken retries across restarts; never fail for it.
        let _ = getrandom::fill(&mut bytes);
        Writer::new(hex::encode(bytes), 0)
    }

    /// The mark of the next flush.
    pub(super) fn next(&mut self) -> Mark {
        self.n += 1;
        Mark {
            writer: self.id.clone(),
            seq: (i64::from(self.epoch) << 32) | i64::from(self.n),
        }
    }
}

/// A slot held by this process: its writer id and the epoch raised for this start.
#[derive(Debug)]
pub struct Identity {
    dir: PathBuf,
    slot: usize,
    id: String,
    epoch: u32,
    /// Held while the process lives: the slot is ours.
    _lock: File,
}

impl Identity {
    /// Takes the first free slot under `data_dir`, raises its epoch and saves it.
    pub fn claim(data_dir: &Path) -> Result<Identity, IdentityError> {
        let dir = data_dir.join(DIR);
        fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        for slot in 0..MAX_SLOTS {
            let lock_path = dir.join(format!("slot-{slot}.lock"));
            let lock = File::create(&lock_path).map_err(io_error(&lock_path))?;
            if lock.try_lock().is_err() {
                continue;
            }
            let path = slot_file(&dir, slot);
            let (id, epoch) = match fs::read(&path) {
                Ok(bytes) => read(&bytes).map_err(|message| IdentityError::Corrupt {
                    path: path.display().to_string(),
                    message,
                })?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => (new_writer_id(), 0),
                Err(e) => return Err(io_error(&path)(e)),
            };
            let epoch = epoch.checked_add(1).ok_or_else(|| IdentityError::Corrupt {
                path: path.display().to_string(),
                message: "the epoch is exhausted".into(),
            })?;
            let identity = Identity {
                dir,
                slot,
                id,
                epoch,
                _lock: lock,
            };
            identity.save()?;
            return Ok(identity);
        }
        Err(IdentityError::NoFreeSlot {
            path: dir.display().to_string(),
        })
    }

    /// Gives this slot a new writer id (epoch 1) and saves it: for an identity the store's
    /// registry says was retired, or is live on another node (a copied data directory).
    pub fn renew(&mut self) -> Result<(), IdentityError> {
        self.id = new_writer_id();
        self.epoch = 1;
        self.save()
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    pub fn slot(&self) -> usize {
        self.slot
    }

    /// The flusher's writer for this start.
    pub fn writer(&self) -> Writer {
        Writer::new(self.id.clone(), self.epoch)
    }

    fn save(&self) -> Result<(), IdentityError> {
        let doc = doc! {"v": 1, "writer": &self.id, "epoch": i64::from(self.epoch)};
        write_atomically(&slot_file(&self.dir, self.slot), &doc)
    }
}

fn slot_file(dir: &Path, slot: usize) -> PathBuf {
    dir.join(format!("slot-{slot}.bson"))
}

/// 12 lowercase hex digits from the system's random source.
pub fn new_writer_id() -> String {
    let mut bytes = [0u8; 6];
    // Without randomness two nodes might pick one id; never fail a start for it.
    let _ = getrandom::fill(&mut bytes);
    hex::encode(bytes)
}

/// Whether `id` is a writer id: 12 lowercase hex digits (safe in a field path).
pub fn is_writer_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn read(bytes: &[u8]) -> Result<(String, u32), String> {
    let doc = Document::from_reader(bytes).map_err(|e| e.to_string())?;
    let id = doc.get_str("writer").map_err(|e| e.to_string())?;
    if !is_writer_id(id) {
        return Err(format!("bad writer id {id:?}"));
    }
    let epoch = match doc.get("epoch") {
        Some(Bson::Int64(n)) => u32::try_from(*n).map_err(|e| e.to_string())?,
        Some(Bson::Int32(n)) => u32::try_from(*n).map_err(|e| e.to_string())?,
        _ => return Err("no epoch".into()),
    };
    Ok((id.to_owned(), epoch))
}

/// Writes `doc` to `path` so that a crash leaves the old file or the new one, never a mix.
fn write_atomically(path: &Path, doc: &Document) -> Result<(), IdentityError> {
    let mut bytes = Vec::new();
    doc.to_writer(&mut bytes)
        .map_err(|e| IdentityError::Corrupt {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
    let aside = path.with_extension("bson.new");
    let mut file = File::create(&aside).map_err(io_error(&aside))?;
    file.write_all(&bytes).map_err(io_error(&aside))?;
    file.sync_data().map_err(io_error(&aside))?;
    drop(file);
    fs::rename(&aside, path).map_err(io_error(path))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_epoch_is_raised_at_each_claim_and_the_id_stays() {
        let dir = tempfile::tempdir().unwrap();
        let first = Identity::claim(dir.path()).unwrap();
        assert!(is_writer_id(first.id()), "{}", first.id());
        assert_eq!((first.slot(), first.epoch()), (0, 1));
        let id = first.id().to_owned();
        drop(first);
        for epoch in 2..=5 {
            let again = Identity::claim(dir.path()).unwrap();
            assert_eq!(
                (again.id(), again.slot(), again.epoch()),
                (id.as_str(), 0, epoch)
            );
        }
        // The file on disk says what the last claim raised it to.
        let bytes = fs::read(dir.path().join(DIR).join("slot-0.bson")).unwrap();
        assert_eq!(read(&bytes).unwrap(), (id, 5));
    }

    #[test]
    fn a_held_slot_is_not_shared_and_a_freed_one_is_taken_again() {
        let dir = tempfile::tempdir().unwrap();
        let serve = Identity::claim(dir.path()).unwrap();
        let import = Identity::claim(dir.path()).unwrap();
        assert_eq!((serve.slot(), import.slot()), (0, 1));
        assert_ne!(serve.id(), import.id());
        let (serve_id, import_id) = (serve.id().to_owned(), import.id().to_owned());
        drop(serve);
        // Slot 0 is free again: the next process gets serve's identity back, epoch raised.
        let next = Identity::claim(dir.path()).unwrap();
        assert_eq!(
            (next.slot(), next.id(), next.epoch()),
            (0, serve_id.as_str(), 2)
        );
        drop(import);
        let later = Identity::claim(dir.path()).unwrap();
        assert_eq!((later.slot(), later.id()), (1, import_id.as_str()));
    }

    #[test]
    fn a_renewed_identity_is_new_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut identity = Identity::claim(dir.path()).unwrap();
        Identity::claim(dir.path()).unwrap(); // epoch of slot 1 only
        let old = identity.id().to_owned();
        identity.renew().unwrap();
        assert_ne!(identity.id(), old);
        assert_eq!(identity.epoch(), 1);
        let renewed = identity.id().to_owned();
        drop(identity);
        let again = Identity::claim(dir.path()).unwrap();
        assert_eq!((again.id(), again.epoch()), (renewed.as_str(), 2));
    }

    #[test]
    fn a_corrupt_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join(DIR)).unwrap();
        let path = dir.path().join(DIR).join("slot-0.bson");
        for bad in [
            b"not bson at all".to_vec(),
            bson_bytes(doc! {"writer": "XYZ", "epoch": 3_i64}),
            bson_bytes(doc! {"writer": "0123456789ab"}),
            bson_bytes(doc! {"writer": "0123456789ab", "epoch": -1_i64}),
            bson_bytes(doc! {"writer": "0123456789ab", "epoch": i64::from(u32::MAX)}),
        ] {
            fs::write(&path, &bad).unwrap();
            let e = Identity::claim(dir.path()).unwrap_err();
            assert!(matches!(e, IdentityError::Corrupt { .. }), "{e}");
            let message = e.to_string();
            assert!(
                message.contains("slot-0.bson") && message.contains("move it away"),
                "{message}"
            );
            // Nothing was written over the bad file.
            assert_eq!(fs::read(&path).unwrap(), bad);
        }
    }

    fn bson_bytes(doc: Document) -> Vec<u8> {
        let mut bytes = Vec::new();
        doc.to_writer(&mut bytes).unwrap();
        bytes
    }
}
