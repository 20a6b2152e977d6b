//! The checkpoint's BSON: how an owed statement and a document's carried increments are
//! written into `checkpoint.bson`, and how a saved checkpoint is read back at start (its
//! writer, epoch, consumed segment, statements, carried increments and spill list), each
//! field checked, so that a damaged file is reported rather than half-trusted.
//!
//! Pure conversions between documents and values: this module must not touch the disk (the
//! atomic replace is [`super::Checkpoint::save`]'s) or talk to the store.

use crate::aggregate::spill::SpillFile;
use crate::aggregate::statement::update_of;
use crate::aggregate::{Drained, Value};
use crate::field::FieldKey;
use crate::period::Period;
use crate::reports::{DocKey, DocRef, ReportKind};
use crate::site::SiteId;
use crate::store::{DocUpdate, Guard, Mark};
use mongodb::bson::{doc, Bson, Document};

pub(super) fn key_doc(key: &DocKey) -> Document {
    doc! {
        "site": key.site.as_str(),
        "kind": key.doc.kind.name(),
        "period": key.doc.period.to_string(),
    }
}

pub(super) fn fields_array(fields: &[(FieldKey, Value)]) -> Vec<Bson> {
    fields
        .iter()
        .map(|(f, v)| {
            let value = match v {
                Value::Inc(n) => Bson::Int64(*n),
                Value::Set(t) => Bson::String(t.to_string()),
                // Since the people sketches; checkpoints written before hold none.
                Value::Max(n) => Bson::Document(doc! {"max": *n}),
            };
            Bson::Array(vec![Bson::String(f.as_str().to_owned()), value])
        })
        .collect()
}

pub(super) fn statement(key: &DocKey, update: &DocUpdate) -> Document {
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
    fields.extend(update.max.iter().map(|(f, n)| (f.clone(), Value::Max(*n))));
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

pub(super) type Read = (
    String,
    u32,
    u64,
    Vec<(DocKey, DocUpdate)>,
    Drained,
    Vec<SpillFile>,
);

pub(super) fn read(doc: &Document) -> Result<Read, String> {
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
            Bson::Document(d) => Value::Max(d.get_i64("max").map_err(|e| e.to_string())?),
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
