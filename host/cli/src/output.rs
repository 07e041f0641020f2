//! Printing: aligned tables by default, JSON with `-o json`.

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// A cell of a JSON value: strings bare, null as `-`, lists joined with `,`.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect(),
        Value::Array(a) if a.is_empty() => "-".into(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(","),
        Value::Object(o) if o.is_empty() => "-".into(),
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| format!("{k}={}", cell(v)))
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

/// Print `rows` (JSON objects) as a table with the given (header, field) columns.
pub fn table(rows: &[Value], columns: &[(&str, &str)]) {
    table_rows(rows, columns, true)
}

/// [`table`], with or without its header line (`--follow` prints it once).
pub fn table_rows(rows: &[Value], columns: &[(&str, &str)], header: bool) {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| columns.iter().map(|(_, f)| cell(&r[*f])).collect())
        .collect();
    let mut widths: Vec<usize> = columns.iter().map(|(h, _)| h.chars().count()).collect();
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |values: Vec<String>| {
        let parts: Vec<String> = values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    if header {
        line(columns.iter().map(|(h, _)| h.to_string()).collect());
    }
    for row in cells {
        line(row);
    }
}

/// Print one object as `key: value` lines in the given order.
pub fn record(v: &Value, fields: &[(&str, &str)]) {
    let width = fields.iter().map(|(h, _)| h.len()).max().unwrap_or(0) + 1;
    for (label, field) in fields {
        println!("{:<width$} {}", format!("{label}:"), cell(&v[*field]));
    }
}

pub fn json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).expect("json"));
}
