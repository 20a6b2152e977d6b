//! Any report as a table, and a table as CSV (RFC 4180), for `?format=csv` or
//! `Accept: text/csv`.
//!
//! Cells that come from strangers (pages, referrers, terms) could be read as formulas by a
//! spreadsheet; a cell starting with `=`, `+`, `-`, `@`, tab or carriage return is prefixed
//! with `'` (OWASP's advice on CSV injection).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Table {
    pub header: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&'static str]) -> Table {
        Table {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
            let cells: Vec<String> = cells.map(cell).collect();
            out.push_str(&cells.join(","));
            out.push_str("\r\n");
        };
        line(&mut out, &mut self.header.iter().copied());
        for row in &self.rows {
            line(&mut out, &mut row.iter().map(String::as_str));
        }
        out
    }
}

fn cell(raw: &str) -> String {
    let guarded =
        if raw.starts_with(['=', '+', '-', '@', '\t', '\r']) && raw.parse::<f64>().is_err() {
            format!("'{raw}")
        } else {
            raw.to_owned()
        };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

/// Whether the request asks for CSV.
pub fn wants_csv(req: &HttpRequest) -> bool {
    let query = req.query_string();
    query.split('&').any(|p| p == "format=csv")
        || req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/csv"))
}

pub fn csv_response(table: &Table, filename: &str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/csv; charset=utf-8"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}.csv\""),
        ))
        .body(table.to_csv())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_guards_cells() {
        let mut t = Table::new(&["key", "views"]);
        t.row(vec!["/a,b".into(), "3".into()]);
        t.row(vec!["say \"hi\"".into(), "1".into()]);
        t.row(vec!["=HYPERLINK(\"x\")".into(), "-5".into()]);
        assert_eq!(
            t.to_csv(),
            "key,views\r\n\"/a,b\",3\r\n\"say \"\"hi\"\"\",1\r\n\"'=HYPERLINK(\"\"x\"\")\",-5\r\n"
        );
    }
}
