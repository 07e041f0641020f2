//! The CSV import parser: never panics on any bytes, and every error names a row that
//! exists in the input (1 is the header).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(errors) = portcullis_app::fuzzing::csv_import(data) {
        assert!(!errors.is_empty());
        let lines = data.split(|b| *b == b'\n').count().max(1);
        for (row, error) in errors {
            assert!(
                row >= 1 && row <= lines + 1,
                "row {row} of {lines}: {error}"
            );
            assert!(!error.is_empty());
        }
    }
});
