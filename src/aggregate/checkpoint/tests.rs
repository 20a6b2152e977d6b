//! The checkpoint's round trip, its lock, and the spill-file rules, on a temporary directory.

use super::*;
use crate::aggregate::Value;
use crate::field::FieldKey;
use crate::period::Period;
use crate::reports::{DocRef, ReportKind};
use crate::site::SiteId;
use crate::store::{Guard, Mark};
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
        max: vec![(FieldKey::parse("p./a.17").unwrap(), 3)],
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
            vec![
                (FieldKey::parse("v").unwrap(), Value::Inc(2)),
                (FieldKey::parse("4095").unwrap(), Value::Max(9)),
            ],
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
        vec![
            (FieldKey::parse("v").unwrap(), Value::Inc(2)),
            (FieldKey::parse("4095").unwrap(), Value::Max(9))
        ]
    );
}

/// A checkpoint as tally wrote it before `$max` existed (counters and texts only) still reads.
#[test]
fn a_checkpoint_written_before_max_existed_still_reads() {
    let old = mongodb::bson::doc! {
        "writer": "0123456789ab", "epoch": 2_i64, "consumed": 5_i64,
        "statements": [{
            "site": "acme", "kind": "content", "period": "2026-11",
            "fields": [["p./a.t", "A"], ["p./a.v", 7_i64]],
            "mark": {"writer": "0123456789ab", "seq": 9_i64},
        }],
        "carried": [{"site": "acme", "kind": "traffic", "period": "2026-11",
                     "fields": [["v", 2_i64]]}],
    };
    let (writer, epoch, consumed, statements, carried, spills) = format::read(&old).unwrap();
    assert_eq!((writer.as_str(), epoch, consumed), ("0123456789ab", 2, 5));
    assert_eq!(
        statements[0].1.inc,
        vec![(FieldKey::parse("p./a.v").unwrap(), 7)]
    );
    assert_eq!(statements[0].1.set.len(), 1);
    assert!(statements[0].1.max.is_empty());
    assert_eq!(
        carried[0].1,
        vec![(FieldKey::parse("v").unwrap(), Value::Inc(2))]
    );
    assert!(spills.is_empty());
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
