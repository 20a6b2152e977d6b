//! MongoDB's `$inc`, `$max` and `$set` with `upsert: true`, applied to an in-memory BSON
//! document.
//!
//! The embedded store uses this to give its documents exactly the shape MongoDB gives them: a
//! dotted path creates the nested documents it names; a missing counter starts at the
//! increment (as a 64-bit integer); an existing int32, int64 or double is added to; `$set`
//! replaces whatever value is there; `$max` sets a missing or null field to its value (an int32
//! when it fits, as the MongoDB statement carries it), replaces a smaller number, and leaves a
//! larger number or a value of a type that sorts above numbers (a text, a document) alone, as
//! MongoDB's BSON order does; a path that runs into a non-document, or a counter that is
//! not a number, is an error for the whole document (as MongoDB's write error is), which then
//! stays unchanged.

use mongodb::bson::{Bson, Document};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IncError {
    #[error("cannot apply $inc to {path:?}: the value there is not a number")]
    NotNumeric { path: String },
    #[error("cannot create field {path:?}: a parent is not a document")]
    NotADocument { path: String },
    #[error("$inc on {path:?} overflows a 64-bit integer")]
    Overflow { path: String },
}

impl IncError {
    /// The code MongoDB answers for the same refusal (see [`super::classify`]).
    pub fn code(&self) -> i64 {
        match self {
            IncError::NotNumeric { .. } => 14,   // TypeMismatch
            IncError::NotADocument { .. } => 28, // PathNotViable
            IncError::Overflow { .. } => 2,      // BadValue
        }
    }
}

/// Applies every `(path, by)` increment, every `(path, text)` set and every `(path, value)`
/// maximum to `doc`, all or nothing.
pub fn apply_all<'a>(
    doc: &mut Document,
    incs: impl IntoIterator<Item = (&'a str, i64)>,
    sets: impl IntoIterator<Item = (&'a str, &'a str)>,
    maxes: impl IntoIterator<Item = (&'a str, i64)>,
) -> Result<(), IncError> {
    let mut updated = doc.clone();
    for (path, by) in incs {
        apply(&mut updated, path, by)?;
    }
    for (path, text) in sets {
        set(&mut updated, path, Bson::String(text.to_owned()))?;
    }
    for (path, value) in maxes {
        max(&mut updated, path, value)?;
    }
    *doc = updated;
    Ok(())
}

/// The BSON a `$max` of `value` carries: an int32 when it fits (a register), else an int64.
pub fn max_value(value: i64) -> Bson {
    i32::try_from(value).map_or(Bson::Int64(value), Bson::Int32)
}

/// `$max` of `value` at the dotted `path`.
pub fn max(doc: &mut Document, path: &str, value: i64) -> Result<(), IncError> {
    let (parent, last) = parent(doc, path)?;
    let raise = match parent.get(last) {
        None | Some(Bson::Null) => true,
        Some(Bson::Int64(n)) => value > *n,
        Some(Bson::Int32(n)) => value > i64::from(*n),
        Some(Bson::Double(d)) => (value as f64) > *d,
        // Texts, documents, arrays sort above every number: nothing to raise.
        Some(_) => false,
    };
    if raise {
        parent.insert(last, max_value(value));
    }
    Ok(())
}

/// The document that holds the last segment of the dotted `path`, creating the documents the
/// path names on the way, and that last segment.
fn parent<'d, 'p>(
    doc: &'d mut Document,
    path: &'p str,
) -> Result<(&'d mut Document, &'p str), IncError> {
    let (parents, last) = match path.rsplit_once('.') {
        Some((parents, last)) => (Some(parents), last),
        None => (None, path),
    };
    let mut current = doc;
    for segment in parents.into_iter().flat_map(|p| p.split('.')) {
        if !current.contains_key(segment) {
            current.insert(segment, Document::new());
        }
        current = match current.get_mut(segment) {
            Some(Bson::Document(d)) => d,
            _ => {
                return Err(IncError::NotADocument {
                    path: path.to_owned(),
                })
            }
        };
    }
    Ok((current, last))
}

/// `$set` of `value` at the dotted `path`.
pub fn set(doc: &mut Document, path: &str, value: Bson) -> Result<(), IncError> {
    let (parent, last) = parent(doc, path)?;
    parent.insert(last, value);
    Ok(())
}

/// `$unset` of the dotted `path`: removes the field if it is there; a path that runs into
/// nothing or into a non-document removes nothing (as MongoDB's `$unset` does).
pub fn unset(doc: &mut Document, path: &str) {
    let (parents, last) = match path.rsplit_once('.') {
        Some((parents, last)) => (Some(parents), last),
        None => (None, path),
    };
    let mut current = doc;
    for segment in parents.into_iter().flat_map(|p| p.split('.')) {
        current = match current.get_mut(segment) {
            Some(Bson::Document(d)) => d,
            _ => return,
        };
    }
    current.remove(last);
}

/// Applies one `$inc` of `by` at the dotted `path`.
pub fn apply(doc: &mut Document, path: &str, by: i64) -> Result<(), IncError> {
    let (parent, last) = parent(doc, path)?;
    let next = match parent.get(last) {
        None => Bson::Int64(by),
        Some(Bson::Int64(n)) => {
            Bson::Int64(n.checked_add(by).ok_or_else(|| IncError::Overflow {
                path: path.to_owned(),
            })?)
        }
        Some(Bson::Int32(n)) => Bson::Int64(i64::from(*n) + by),
        Some(Bson::Double(d)) => Bson::Double(*d + by as f64),
        Some(_) => {
            return Err(IncError::NotNumeric {
                path: path.to_owned(),
            })
        }
    };
    parent.insert(last, next);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    #[test]
    fn unset_removes_a_path_and_leaves_the_rest() {
        let mut d =
            doc! {"_id": "a", "v": 3_i64, "_w": {"aaaaaaaaaaaa": 5_i64, "bbbbbbbbbbbb": 7_i64}};
        unset(&mut d, "_w.aaaaaaaaaaaa");
        assert_eq!(
            d,
            doc! {"_id": "a", "v": 3_i64, "_w": {"bbbbbbbbbbbb": 7_i64}}
        );
        // Missing paths and paths through a counter remove nothing.
        unset(&mut d, "_w.cccccccccccc");
        unset(&mut d, "v.x");
        unset(&mut d, "nothing.here");
        assert_eq!(
            d,
            doc! {"_id": "a", "v": 3_i64, "_w": {"bbbbbbbbbbbb": 7_i64}}
        );
    }

    #[test]
    fn creates_nested_documents_and_adds() {
        let mut d = doc! {"_id": "acme:2011-06"};
        apply(&mut d, "h.05.23.v", 1).unwrap();
        apply(&mut d, "h.05.23.v", 2).unwrap();
        apply(&mut d, "h.05.01.v", 1).unwrap();
        apply(&mut d, "v", 4).unwrap();
        assert_eq!(
            d,
            doc! {"_id": "acme:2011-06", "h": {"05": {"23": {"v": 3_i64}, "01": {"v": 1_i64}}}, "v": 4_i64}
        );
    }

    #[test]
    fn set_creates_or_replaces_text() {
        let mut d = doc! {"p": {"/": {"v": 1_i64}}};
        apply_all(
            &mut d,
            [("p./.v", 1)],
            [("p./.t", "Home"), ("p./a.t", "A")],
            [],
        )
        .unwrap();
        apply_all(&mut d, [], [("p./.t", "Home, again")], []).unwrap();
        assert_eq!(
            d,
            doc! {"p": {"/": {"v": 2_i64, "t": "Home, again"}, "/a": {"t": "A"}}}
        );
        let before = d.clone();
        assert!(apply_all(&mut d, [("v", 1)], [("p./.v.x", "no")], []).is_err());
        assert_eq!(d, before);
    }

    #[test]
    fn max_raises_and_never_lowers() {
        let mut d = doc! {"_id": "acme:2026-06-01", "b": 7_i64, "t": "text"};
        apply_all(
            &mut d,
            [],
            [],
            [("17", 3), ("4095", 1), ("b", 5), ("t", 9), ("x.1", 2)],
        )
        .unwrap();
        apply_all(&mut d, [], [], [("17", 2), ("4095", 4)]).unwrap();
        assert_eq!(
            d,
            doc! {"_id": "acme:2026-06-01", "b": 7_i64, "t": "text", "17": 3, "4095": 4, "x": {"1": 2}}
        );
        let before = d.clone();
        assert!(matches!(
            apply_all(&mut d, [], [], [("1", 9), ("t.x", 1)]),
            Err(IncError::NotADocument { .. })
        ));
        assert_eq!(d, before);
    }

    #[test]
    fn keeps_other_numeric_types_as_mongodb_does() {
        let mut d = doc! {"a": 1_i32, "b": 1.5};
        apply(&mut d, "a", 2).unwrap();
        apply(&mut d, "b", 1).unwrap();
        assert_eq!(d, doc! {"a": 3_i64, "b": 2.5});
    }

    #[test]
    fn errors_leave_the_document_unchanged() {
        let mut d = doc! {"p": "oops", "v": 1_i64};
        let before = d.clone();
        let err = apply_all(&mut d, [("v", 1), ("p.windows", 1)], [], []).unwrap_err();
        assert!(matches!(err, IncError::NotADocument { .. }));
        assert_eq!(d, before);
        assert!(matches!(
            apply(&mut d, "p", 1),
            Err(IncError::NotNumeric { .. })
        ));
        let mut d = doc! {"v": i64::MAX};
        assert!(matches!(
            apply(&mut d, "v", 1),
            Err(IncError::Overflow { .. })
        ));
    }
}
