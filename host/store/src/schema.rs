//! The schema outline: the tables and columns a database actually has, with column types in
//! a small vocabulary both backends share. For the migration-parity test (SQLite and
//! PostgreSQL migrations must build the same schema) and for operators comparing a database
//! with what this build expects.

use crate::{Backend, Result, Store};
use sqlx::Row;

impl Store {
    /// Every column of every table as `(table, column, type, nullable)`: tables in name
    /// order, each table's columns in definition order. For the migration-parity test
    /// (`tests/api/migrations.rs`) and for operators.
    ///
    /// `type` is normalised (`normalise_type`) to `int`, `text`, `bytes` or `bool`; a type
    /// outside that vocabulary is the backend's own name, lower-cased, so it shows up as a
    /// difference rather than being hidden. `nullable` is whether the column admits NULL:
    /// on SQLite what `PRAGMA table_info` says, except that an `INTEGER PRIMARY KEY` (the
    /// rowid) never holds NULL; on PostgreSQL `information_schema.columns.is_nullable`.
    ///
    /// Sources: SQLite's `sqlite_master` with `pragma_table_info` (its internal `sqlite_*`
    /// tables left out); PostgreSQL's `information_schema.columns` for the base tables of
    /// the current schema (`public` unless the URL sets another `search_path`). sqlx's
    /// `_sqlx_migrations` table is included: callers comparing schemas leave it out.
    pub async fn schema_outline(&self) -> Result<Vec<(String, String, String, bool)>> {
        let mut outline: Vec<(String, String, String, bool)> = Vec::new();
        match self.backend {
            Backend::Sqlite => {
                let rows = sqlx::query(
                    "SELECT m.name AS table_name, p.name AS column_name, p.type AS column_type,
                            p.\"notnull\" AS not_null, p.pk AS pk,
                            (SELECT COUNT(*) FROM pragma_table_info(m.name) q WHERE q.pk > 0) AS pk_columns
                     FROM sqlite_master m JOIN pragma_table_info(m.name) p
                     WHERE m.type = 'table' AND substr(m.name, 1, 7) <> 'sqlite_'
                     ORDER BY m.name, p.cid",
                )
                .fetch_all(&self.pool)
                .await?;
                for r in &rows {
                    let declared: String = r.try_get("column_type")?;
                    let not_null = r.try_get::<i64, _>("not_null")? != 0;
                    let rowid = r.try_get::<i64, _>("pk")? > 0
                        && r.try_get::<i64, _>("pk_columns")? == 1
                        && declared.eq_ignore_ascii_case("integer");
                    outline.push((
                        r.try_get("table_name")?,
                        r.try_get("column_name")?,
                        normalise_type(&declared),
                        !(not_null || rowid),
                    ));
                }
            }
            Backend::Postgres => {
                let rows = sqlx::query(
                    "SELECT CAST(c.table_name AS TEXT) AS table_name,
                            CAST(c.column_name AS TEXT) AS column_name,
                            CAST(c.data_type AS TEXT) AS column_type,
                            CAST(c.is_nullable AS TEXT) AS is_nullable
                     FROM information_schema.columns c
                     JOIN information_schema.tables t
                       ON t.table_schema = c.table_schema AND t.table_name = c.table_name
                     WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
                     ORDER BY c.table_name, c.ordinal_position",
                )
                .fetch_all(&self.pool)
                .await?;
                for r in &rows {
                    outline.push((
                        r.try_get("table_name")?,
                        r.try_get("column_name")?,
                        normalise_type(&r.try_get::<String, _>("column_type")?),
                        r.try_get::<String, _>("is_nullable")? == "YES",
                    ));
                }
            }
        }
        // The same order on both backends whatever the database's collation (a stable sort
        // keeps each table's columns in definition order).
        outline.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(outline)
    }
}

/// A column type in the vocabulary both backends share: SQLite's declared type or
/// PostgreSQL's `data_type`, lower-cased and without a length (`varchar(20)` → `varchar`),
/// mapped to `int`, `text`, `bytes` or `bool`; any other type keeps its own name.
fn normalise_type(declared: &str) -> String {
    let lower = declared.trim().to_ascii_lowercase();
    let base = lower.split('(').next().unwrap_or_default().trim();
    match base {
        "integer" | "int" | "bigint" | "int8" | "int4" | "int2" | "smallint" | "bigserial"
        | "serial" => "int",
        "text" | "varchar" | "character varying" | "char" | "character" | "clob" => "text",
        "blob" | "bytea" => "bytes",
        "boolean" | "bool" => "bool",
        other => other,
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::normalise_type;

    #[test]
    fn types_of_both_backends_meet_in_one_vocabulary() {
        for (declared, common) in [
            ("INTEGER", "int"),
            ("bigint", "int"),
            ("BIGINT", "int"),
            ("TEXT", "text"),
            ("character varying", "text"),
            ("VARCHAR(20)", "text"),
            ("BLOB", "bytes"),
            ("bytea", "bytes"),
            ("BOOLEAN", "bool"),
            ("timestamp with time zone", "timestamp with time zone"),
        ] {
            assert_eq!(normalise_type(declared), common, "{declared}");
        }
    }
}
