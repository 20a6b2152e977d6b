//! Statements from drained increments and back: [`update_of`] turns a document's merged fields
//! into the store statement that applies them, and [`restorable`] takes from a statement that
//! did not apply what goes back to the coalescer.
//!
//! Shared by the flusher (which builds and sends statements) and the checkpoint (which reads
//! owed statements back at start), so neither imports the other. Pure conversions: this module
//! must not talk to the store or keep any state.

use super::admission::ADMITTED;
use super::Value;
use crate::reports::DocKey;
use crate::store::DocUpdate;

/// The statement that applies `fields` to `key`'s document: counters to `$inc`, texts to
/// `$set`, registers to `$max`, each sorted by field.
pub fn update_of(key: &DocKey, fields: Vec<(crate::field::FieldKey, Value)>) -> DocUpdate {
    let mut update = DocUpdate {
        id: key.id(),
        ..DocUpdate::default()
    };
    for (field, value) in fields {
        match value {
            Value::Inc(by) => update.inc.push((field, by)),
            Value::Set(text) => update.set.push((field, text.into())),
            Value::Max(value) => update.max.push((field, value)),
        }
    }
    update.inc.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    update.set.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    update.max.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    update
}

/// What of a failed update goes back to the coalescer: its increments, texts and maxima, but not the
/// admission count of a guarded update, which the next flush works out again.
pub fn restorable(update: &DocUpdate) -> Vec<(crate::field::FieldKey, Value)> {
    let guarded = update.guard.is_some();
    update
        .inc
        .iter()
        .filter(|(f, _)| !(guarded && f.as_str() == ADMITTED))
        .map(|(f, by)| (f.clone(), Value::Inc(*by)))
        .chain(
            update
                .set
                .iter()
                .map(|(f, t)| (f.clone(), Value::Set(t.as_str().into()))),
        )
        .chain(update.max.iter().map(|(f, v)| (f.clone(), Value::Max(*v))))
        .collect()
}
