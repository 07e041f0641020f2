//! Entry points for the fuzz targets in `tests/fuzz` (not part of the API).

/// Parse and check a CSV import body as `POST /v1/users/import` does; the number of good
/// rows or the row errors.
pub fn csv_import(body: &[u8]) -> Result<usize, Vec<(usize, String)>> {
    crate::import::parse_summary(body)
}

/// Load a configuration from file text and one environment variable, as `portcullis
/// server` does; `Err` carries the message.
pub fn config(file: &str, env: Vec<(String, String)>) -> Result<crate::config::Config, String> {
    crate::config::Config::from_text(
        Some((file, std::path::Path::new("fuzz.toml"))),
        env,
        Vec::new(),
    )
    .map_err(|e| format!("{e:#}"))
}
