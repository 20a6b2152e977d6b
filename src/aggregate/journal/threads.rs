//! The journal's threads: the writer, which writes whatever the handlers appended since its
//! last write in one `write` (group commit) and publishes how far it got, and the syncer,
//! which `fdatasync`s the files written every `sync` interval so a slow sync never holds up
//! a write (with an interval of 0 the writer syncs after every write instead).
//!
//! A write that fails marks the journal broken (handlers answer 503) and is tried again. This
//! module owns the segment files while they are written; it must not decide where a segment
//! is cut or retired ([`super::Journal::rotate`], [`super::Journal::retire`]).

use super::Journal;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

impl Journal {
    fn segment_path(&self, n: u64) -> PathBuf {
        self.dir.join(format!("{n:016}.log"))
    }

    pub(super) fn write_loop(self: &Arc<Self>, sync: Duration) {
        // Files written since their last sync, for the sync thread (unless every write syncs).
        let dirty: Arc<Mutex<Vec<(u64, File)>>> = Arc::default();
        let syncer = (!sync.is_zero()).then(|| {
            let (journal, dirty) = (Arc::clone(self), Arc::clone(&dirty));
            std::thread::Builder::new()
                .name("tally-journal-sync".into())
                .spawn(move || journal.sync_loop(sync, &dirty))
        });
        let mut file: Option<(u64, File)> = None;
        loop {
            let (closed, bytes, segment, upto, stop) = {
                let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                while pending.bytes.is_empty() && pending.closed.is_empty() && !pending.stop {
                    pending = self.more.wait(pending).unwrap_or_else(|e| e.into_inner());
                }
                (
                    std::mem::take(&mut pending.closed),
                    std::mem::take(&mut pending.bytes),
                    pending.segment,
                    self.appended.load(Ordering::Acquire),
                    pending.stop,
                )
            };
            let result = (|| -> io::Result<()> {
                for (n, last) in closed {
                    self.file_for(&mut file, n)?.write_all(&last)?;
                    mark_dirty(&dirty, &file, sync)?;
                }
                if !bytes.is_empty() {
                    self.file_for(&mut file, segment)?.write_all(&bytes)?;
                    mark_dirty(&dirty, &file, sync)?;
                }
                if sync.is_zero() {
                    if let Some((_, f)) = &file {
                        f.sync_data()?;
                    }
                }
                Ok(())
            })();
            match result {
                Ok(()) => {
                    self.broken.store(false, Ordering::Release);
                    self.written.send_replace(upto);
                }
                Err(e) => {
                    // Not acknowledged: the handlers waiting answer 503. Keep trying.
                    if !self.broken.swap(true, Ordering::AcqRel) {
                        tracing::error!(dir = %self.dir.display(), error = %e, "durable log: cannot write; hits are counted but answered 503 until it can");
                    }
                    self.written.send_replace(upto);
                    file = None;
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
            if stop {
                let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                if pending.bytes.is_empty() && pending.closed.is_empty() {
                    drop(pending);
                    if let Some((_, f)) = &file {
                        let _ = f.sync_data();
                    }
                    if let Some(Ok(handle)) = syncer {
                        let _ = handle.join();
                    }
                    return;
                }
            }
        }
    }

    /// Every `sync`, `fdatasync`s the files written since the last round. Apart from the writer,
    /// so a slow sync never delays a write (and the handlers waiting for it).
    fn sync_loop(&self, sync: Duration, dirty: &Mutex<Vec<(u64, File)>>) {
        loop {
            std::thread::sleep(sync);
            let files = std::mem::take(&mut *dirty.lock().unwrap_or_else(|e| e.into_inner()));
            for (_, f) in &files {
                if let Err(e) = f.sync_data() {
                    tracing::warn!(dir = %self.dir.display(), error = %e, "durable log: fdatasync failed");
                }
            }
            let stopping = self.pending.lock().unwrap_or_else(|e| e.into_inner()).stop;
            if stopping {
                return;
            }
        }
    }

    /// The open file of segment `n`, opening it if the one open is another segment's.
    fn file_for<'f>(&self, file: &'f mut Option<(u64, File)>, n: u64) -> io::Result<&'f mut File> {
        if file.as_ref().is_none_or(|(open, _)| *open != n) {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.segment_path(n))?;
            *file = Some((n, f));
        }
        Ok(&mut file.as_mut().expect("just opened").1)
    }
}

/// Lists the file just written to for the sync thread's next round (once per round).
fn mark_dirty(
    dirty: &Mutex<Vec<(u64, File)>>,
    file: &Option<(u64, File)>,
    sync: Duration,
) -> io::Result<()> {
    let Some((n, f)) = file else {
        return Ok(());
    };
    if sync.is_zero() {
        return Ok(());
    }
    let mut dirty = dirty.lock().unwrap_or_else(|e| e.into_inner());
    if !dirty.iter().any(|(d, _)| d == n) {
        dirty.push((*n, f.try_clone()?));
    }
    Ok(())
}
