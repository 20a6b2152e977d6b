//! `--durable`: the write-ahead log of accepted increments.
//!
//! Every hit the coalescer accepts is also appended here, as one record, before its answer is
//! sent: handlers wait ([`Journal::written`]) until a writer thread has handed their record to
//! the kernel. The thread writes whatever has gathered since its last write in one `write`
//! (group commit), so waiting costs a handler about one write, shared by every hit that
//! arrived meanwhile. A second thread `fdatasync`s the files written every `sync` interval, so a
//! slow sync never holds up a write; with an interval of 0 the writer syncs after every write
//! instead, and handlers wait for that. A killed process therefore loses nothing it acknowledged; a machine
//! that loses power may lose the last interval.
//!
//! The log is cut into segments, one per flush: the coalescer's drain and [`Journal::rotate`]
//! happen under one lock, so segment `n` holds exactly the increments of the drains before the
//! cut. The flusher's checkpoint (see [`super::checkpoint`]) then records "segments below `n`
//! are consumed" together with the statements that carry those increments, and consumed
//! segments are deleted. On start, the records of the segments not consumed are replayed into
//! the coalescer.
//!
//! The journal also keeps the durable directory's size for `--durable-max-bytes`
//! ([`Journal::bytes`], [`Journal::full`]): the segments not yet retired, counted as they are
//! appended, plus what the checkpoint reports for itself and its spill files
//! ([`super::spill`]).
//!
//! A record: `len: u32 LE`, `crc32: u32 LE` of the payload, payload. A record cut short by a
//! crash (a short or mismatching tail) ends the replay of its segment and is reported; it was
//! never acknowledged. This module must not talk to the store.
//!
//! Layout: this file holds the journal's state and what its users call (open and replay,
//! append, wait, cut, retire, the directory's size); `threads.rs` the writer and sync threads;
//! `record.rs` the record format, which the spill files share.

mod record;
mod threads;

pub use record::{decode, encode, read_records};

use crate::reports::Increments;
use crate::site::SiteId;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// The folder of the segments, inside the durable directory.
const SEGMENTS: &str = "journal";

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("durable log {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What the handlers add and the writer thread takes.
#[derive(Default)]
struct Pending {
    /// The segment now being appended to.
    segment: u64,
    /// Whether that segment has a record.
    dirty: bool,
    bytes: Vec<u8>,
    /// Segments cut but not yet fully written: their number and their last bytes.
    closed: Vec<(u64, Vec<u8>)>,
    stop: bool,
    /// Bytes appended to the segment now being appended to.
    segment_bytes: u64,
    /// The segments cut and not yet retired, with their sizes (for [`Journal::bytes`]).
    sizes: Vec<(u64, u64)>,
}

pub struct Journal {
    dir: PathBuf,
    pending: Mutex<Pending>,
    more: Condvar,
    /// Bytes appended so far (every record ever), and written so far.
    appended: AtomicU64,
    written: watch::Sender<u64>,
    /// The writer thread could not write: acknowledging would be a lie.
    broken: AtomicBool,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Bytes of the segments not yet retired (appended, whether or not written yet).
    log_bytes: AtomicU64,
    /// Bytes of the rest of the durable directory: the checkpoint and the spill files, as the
    /// checkpoint last reported them.
    other_bytes: AtomicU64,
    /// `--durable-max-bytes`: past it, [`Journal::full`] (and new hits are refused).
    max_bytes: AtomicU64,
}

/// Records read back from the segments a checkpoint did not consume.
#[derive(Default)]
pub struct Replayed {
    pub hits: Vec<(SiteId, Increments)>,
    /// Bytes at the end of segments that did not form a whole record (cut by a crash).
    pub torn_bytes: u64,
    pub segments: usize,
}

impl Journal {
    /// Opens the log in `dir`, deleting the segments below `consumed` and reading back the
    /// others; new records go to a segment after all of them. `sync`: the `fdatasync` interval
    /// (zero: after every write).
    pub fn open(
        dir: &Path,
        consumed: u64,
        sync: Duration,
    ) -> Result<(Arc<Journal>, Replayed), JournalError> {
        let dir = dir.join(SEGMENTS);
        fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let mut replayed = Replayed::default();
        let mut next = consumed;
        let mut sizes = Vec::new();
        for (n, path) in segments(&dir)? {
            if n < consumed {
                fs::remove_file(&path).map_err(io_error(&path))?;
                continue;
            }
            let mut bytes = Vec::new();
            File::open(&path)
                .and_then(|mut f| f.read_to_end(&mut bytes))
                .map_err(io_error(&path))?;
            replayed.torn_bytes += read_records(&bytes, &mut replayed.hits);
            replayed.segments += 1;
            sizes.push((n, bytes.len() as u64));
            next = next.max(n + 1);
        }
        let (written, _) = watch::channel(0);
        let log_bytes = sizes.iter().map(|(_, b)| b).sum();
        let journal = Arc::new(Journal {
            dir,
            pending: Mutex::new(Pending {
                segment: next,
                sizes,
                ..Pending::default()
            }),
            more: Condvar::new(),
            appended: AtomicU64::new(0),
            written,
            broken: AtomicBool::new(false),
            thread: Mutex::new(None),
            log_bytes: AtomicU64::new(log_bytes),
            other_bytes: AtomicU64::new(0),
            max_bytes: AtomicU64::new(u64::MAX),
        });
        let writer = Arc::clone(&journal);
        let handle = std::thread::Builder::new()
            .name("tally-journal".into())
            .spawn(move || writer.write_loop(sync))
            .map_err(io_error(&journal.dir))?;
        *journal.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        Ok((journal, replayed))
    }

    /// Appends one accepted hit's increments. Returns the position its handler waits for.
    pub fn append(&self, site: &SiteId, incs: &Increments) -> u64 {
        thread_local! {
            static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        SCRATCH.with(|scratch| {
            let mut record = scratch.borrow_mut();
            record.clear();
            encode(site, incs, &mut record);
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            pending.bytes.extend_from_slice(&record);
            pending.dirty = true;
            pending.segment_bytes += record.len() as u64;
            self.log_bytes
                .fetch_add(record.len() as u64, Ordering::Relaxed);
            let at = self
                .appended
                .fetch_add(record.len() as u64, Ordering::AcqRel)
                + record.len() as u64;
            drop(pending);
            self.more.notify_one();
            at
        })
    }

    /// Everything appended so far.
    pub fn appended(&self) -> u64 {
        self.appended.load(Ordering::Acquire)
    }

    /// Waits until everything up to `at` is written; `false` if the log cannot be written
    /// (the hit is counted, but must not be acknowledged as durable) or `limit` passed.
    pub async fn written(&self, at: u64, limit: Duration) -> bool {
        let mut rx = self.written.subscribe();
        let wait = rx.wait_for(|w| *w >= at);
        matches!(tokio::time::timeout(limit, wait).await, Ok(Ok(_)))
            && !self.broken.load(Ordering::Acquire)
    }

    /// Cuts the log: what was appended so far belongs to the segments below the returned
    /// number. The caller holds the coalescer's cut lock, so no hit is half on either side.
    pub fn rotate(&self) -> u64 {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.dirty {
            let (segment, bytes) = (pending.segment, std::mem::take(&mut pending.bytes));
            pending.closed.push((segment, bytes));
            let size = std::mem::take(&mut pending.segment_bytes);
            pending.sizes.push((segment, size));
            pending.segment += 1;
            pending.dirty = false;
        }
        let first_open = pending.segment;
        drop(pending);
        self.more.notify_one();
        first_open
    }

    /// Deletes the segments below `consumed` (their increments are in a checkpoint).
    pub fn retire(&self, consumed: u64) {
        {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let mut freed = 0;
            pending.sizes.retain(|(n, size)| {
                let keep = *n >= consumed;
                if !keep {
                    freed += size;
                }
                keep
            });
            self.log_bytes.fetch_sub(freed, Ordering::Relaxed);
        }
        if let Ok(list) = segments(&self.dir) {
            for (n, path) in list {
                if n < consumed {
                    if let Err(e) = fs::remove_file(&path) {
                        tracing::warn!(path = %path.display(), error = %e, "durable log: cannot delete a consumed segment");
                    }
                }
            }
        }
    }

    /// The bytes of the durable directory: the segments not yet retired (what was appended to
    /// them, written or about to be) and what the checkpoint reported for itself and its spill
    /// files.
    pub fn bytes(&self) -> u64 {
        self.log_bytes.load(Ordering::Relaxed) + self.other_bytes.load(Ordering::Relaxed)
    }

    /// The checkpoint's report of its own file and the spill files it lists.
    pub fn set_other_bytes(&self, bytes: u64) {
        self.other_bytes.store(bytes, Ordering::Relaxed);
    }

    /// `--durable-max-bytes`: the budget of the durable directory.
    pub fn set_max_bytes(&self, max: u64) {
        self.max_bytes.store(max, Ordering::Relaxed);
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes.load(Ordering::Relaxed)
    }

    /// The directory holds its budget or more: new hits are refused until flushes free it.
    pub fn full(&self) -> bool {
        self.bytes() >= self.max_bytes()
    }

    /// Writes what is left, syncs and stops the writer thread.
    pub fn close(&self) {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
        self.more.notify_one();
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

/// The segment files of `dir`, by number.
fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, JournalError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let path = entry.map_err(io_error(dir))?.path();
        let n = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(n) = n {
            out.push((n, path));
        }
    }
    out.sort_unstable();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::FieldKey;
    use crate::period::Period;
    use crate::reports::ReportKind;

    fn hit() -> (SiteId, Increments) {
        let mut incs = Increments::default();
        incs.add(
            ReportKind::Traffic,
            Period::Month(2026, 11),
            FieldKey::parse("d.23.v").unwrap(),
            1,
        );
        incs.set(
            ReportKind::Content,
            Period::Day(2026, 11, 23),
            FieldKey::parse("p./about.t").unwrap(),
            "About — us",
        );
        incs.add(
            ReportKind::EventsHour,
            Period::Hour(2026, 11, 23, 14),
            FieldKey::parse("e.signup.14.c").unwrap(),
            3,
        );
        (SiteId::parse("acme").unwrap(), incs)
    }

    #[test]
    fn records_read_back_as_written_and_a_torn_tail_is_cut_off() {
        let (site, incs) = hit();
        let mut bytes = Vec::new();
        encode(&site, &incs, &mut bytes);
        encode(&site, &incs, &mut bytes);
        let whole = bytes.len();
        encode(&site, &incs, &mut bytes);
        bytes.truncate(bytes.len() - 3);
        let mut out = Vec::new();
        assert_eq!(read_records(&bytes, &mut out), (bytes.len() - whole) as u64);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].0, site);
        assert_eq!(out[0].1.entries, incs.entries);
        // a flipped bit ends the replay there
        let mut flipped = bytes[..whole].to_vec();
        flipped[whole / 2 + 10] ^= 1;
        let mut out = Vec::new();
        read_records(&flipped, &mut out);
        assert_eq!(out.len(), 1);
    }

    #[tokio::test]
    async fn segments_below_the_consumed_one_are_not_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let (site, incs) = hit();
        {
            let (journal, replayed) = Journal::open(dir.path(), 0, Duration::ZERO).unwrap();
            assert_eq!(replayed.hits.len(), 0);
            let at = journal.append(&site, &incs);
            assert!(journal.written(at, Duration::from_secs(5)).await);
            assert_eq!(journal.rotate(), 1);
            let at = journal.append(&site, &incs);
            journal.append(&site, &incs);
            assert!(journal.written(at, Duration::from_secs(5)).await);
            journal.close();
        }
        let (journal, replayed) = Journal::open(dir.path(), 0, Duration::ZERO).unwrap();
        assert_eq!((replayed.hits.len(), replayed.segments), (3, 2));
        journal.close();
        let (journal, replayed) = Journal::open(dir.path(), 1, Duration::ZERO).unwrap();
        assert_eq!((replayed.hits.len(), replayed.torn_bytes), (2, 0));
        // new records go after every segment read back
        assert_eq!(journal.rotate(), 2);
        journal.close();
    }
}
