//! Printing: aligned tables by default (`-o wide`: every field as a column;
//! `--no-headers`: without the header line), JSON with `-o json`, YAML with `-o yaml`.

use serde_json::Value;
use std::sync::OnceLock;

/// How a command shapes its output: a table (`table`, `wide`) or a document (`json`,
/// `yaml`). Commands match on this; the finer choice is [`Style`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

/// `-o`: what the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputArg {
    /// Aligned columns (the default).
    Table,
    /// Aligned columns with every field of the answer.
    Wide,
    /// The answer as JSON.
    Json,
    /// The answer as YAML.
    Yaml,
}

impl OutputArg {
    pub fn format(self) -> Format {
        match self {
            OutputArg::Table | OutputArg::Wide => Format::Table,
            OutputArg::Json | OutputArg::Yaml => Format::Json,
        }
    }
}

/// The choices within a format, set once by `main`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    pub yaml: bool,
    pub wide: bool,
    pub no_headers: bool,
}

static STYLE: OnceLock<Style> = OnceLock::new();

pub fn set_style(style: Style) {
    let _ = STYLE.set(style);
}

fn style() -> Style {
    STYLE.get().copied().unwrap_or_default()
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
    let st = style();
    let header = header && !st.no_headers;
    // `-o wide`: the given columns, then every other field of the rows, in order.
    let owned: Vec<(String, String)>;
    let wide: Vec<(&str, &str)>;
    let columns: &[(&str, &str)] = if st.wide {
        let mut extra: Vec<String> = Vec::new();
        for r in rows {
            if let Some(o) = r.as_object() {
                for k in o.keys() {
                    if !columns.iter().any(|(_, f)| f == k) && !extra.contains(k) {
                        extra.push(k.clone());
                    }
                }
            }
        }
        owned = extra.into_iter().map(|k| (k.to_uppercase(), k)).collect();
        wide = columns
            .iter()
            .copied()
            .chain(owned.iter().map(|(h, f)| (h.as_str(), f.as_str())))
            .collect();
        &wide
    } else {
        columns
    };
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

/// What a command did that has no answer of its own: `text` in a table's place, the
/// object `v` with `-o json`/`-o yaml` (so `-o json` is never ignored).
pub fn done(format: Format, text: &str, v: &Value) {
    match format {
        Format::Table => println!("{text}"),
        Format::Json => json(v),
    }
}

/// The whole answer: pretty JSON, or YAML with `-o yaml`.
pub fn json(v: &Value) {
    if style().yaml {
        print!("{}", yaml(v));
    } else {
        println!("{}", serde_json::to_string_pretty(v).expect("json"));
    }
}

/// One entry of a stream (`--follow`): a JSON line, or a YAML document with `-o yaml`.
pub fn line(v: &Value) {
    if style().yaml {
        print!("---\n{}", yaml(v));
    } else {
        println!("{v}");
    }
}

/// A JSON value as block-style YAML. Strings (and keys) are written double-quoted with
/// JSON's escapes, which YAML reads the same way: no value can turn into another type
/// (`no`, `1e3`, `null`) or break the document.
pub fn yaml(v: &Value) -> String {
    fn scalar(v: &Value) -> Option<String> {
        match v {
            Value::Object(o) if o.is_empty() => Some("{}".into()),
            Value::Array(a) if a.is_empty() => Some("[]".into()),
            Value::Object(_) | Value::Array(_) => None,
            other => Some(other.to_string()),
        }
    }
    fn write(v: &Value, indent: usize, out: &mut String) {
        let pad = " ".repeat(indent);
        match v {
            Value::Object(o) if !o.is_empty() => {
                for (k, item) in o {
                    let key = Value::String(k.clone()).to_string();
                    match scalar(item) {
                        Some(s) => out.push_str(&format!("{pad}{key}: {s}\n")),
                        None => {
                            out.push_str(&format!("{pad}{key}:\n"));
                            write(item, indent + 2, out);
                        }
                    }
                }
            }
            Value::Array(a) if !a.is_empty() => {
                for item in a {
                    match scalar(item) {
                        Some(s) => out.push_str(&format!("{pad}- {s}\n")),
                        None => {
                            out.push_str(&format!("{pad}-\n"));
                            write(item, indent + 2, out);
                        }
                    }
                }
            }
            other => out.push_str(&format!("{pad}{}\n", scalar(other).unwrap_or_default())),
        }
    }
    let mut out = String::new();
    write(v, 0, &mut out);
    out
}
