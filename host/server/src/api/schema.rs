//! Schema pieces utoipa's attributes cannot state on their own, for `#[schema(schema_with
//! = …)]` on the request types: the text patterns the domain enforces (`portcullis_core`
//! names and labels), `roles`, `attributes`, `expires_in` and the AuthZEN property maps.

// The domain's patterns, written once in `portcullis_core::names::patterns`. (Schema
// attributes take string literals only: the `pattern = r"…"` literals in `crate::api` repeat
// these, and `tests/tidy.rs` holds every one of them to this list.)
pub use portcullis_core::names::patterns::{
    ACCOUNT_NAME as NAME_PATTERN, EMAIL as EMAIL_PATTERN, LABEL as LABEL_PATTERN,
    USERNAME as USERNAME_PATTERN, VALUE as VALUE_PATTERN,
};

fn label(max: usize) -> utoipa::openapi::ObjectBuilder {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .pattern(Some(LABEL_PATTERN))
        .max_length(Some(max))
}

/// `roles`: at most 100 labels of at most 256 characters.
pub fn roles() -> utoipa::openapi::Array {
    utoipa::openapi::ArrayBuilder::new()
        .items(label(256))
        .max_items(Some(100))
        .build()
}

/// [`roles`] or `null` (PATCH: unchanged).
pub fn roles_or_null() -> utoipa::openapi::Array {
    let mut a = roles();
    a.schema_type = nullable(utoipa::openapi::Type::Array);
    a
}

/// [`attributes`] or `null` (PATCH: unchanged).
pub fn attributes_or_null() -> utoipa::openapi::Object {
    let mut o = attributes();
    o.schema_type = nullable(utoipa::openapi::Type::Object);
    o
}

fn nullable(t: utoipa::openapi::Type) -> utoipa::openapi::schema::SchemaType {
    utoipa::openapi::schema::SchemaType::from_iter([t, utoipa::openapi::Type::Null])
}

/// `attributes`: at most 100 entries; keys are labels (≤ 128), values at most 1024
/// characters without control characters.
pub fn attributes() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .property_names(Some(label(128)))
        .additional_properties(Some(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::Type::String)
                .pattern(Some(VALUE_PATTERN))
                .max_length(Some(1024)),
        ))
        .max_properties(Some(100))
        .build()
}

/// Key lifetimes in text (see `portcullis_app::keys::parse_lifetime`).
pub const LIFETIME_PATTERN: &str =
    r"^([1-9][0-9]{0,7}s|[1-9][0-9]{0,5}m|[1-9][0-9]{0,3}h|[1-9][0-9]{0,2}d|[1-9][0-9]?w)$";

/// `expires_in`: seconds (1 to ten years) or a duration like `"30d"`; `null` or absent:
/// never expires.
pub fn expires_in() -> utoipa::openapi::Schema {
    use utoipa::openapi::{ObjectBuilder, Type};
    let one_of = utoipa::openapi::schema::OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .maximum(Some(10 * 366 * 24 * 3600)),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(LIFETIME_PATTERN)),
        )
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .build();
    utoipa::openapi::Schema::OneOf(one_of)
}

/// AuthZEN `properties` and `context`: at most 64 entries with label keys (≤ 128); values
/// of any JSON type (non-strings reach the plugin as their JSON text, at most 4096
/// characters).
pub fn zen_properties() -> utoipa::openapi::Object {
    // Any JSON object (values of any type, nested as deep as the body allows): what the
    // server reads, so the document neither refuses what is accepted nor the reverse.
    let mut o = utoipa::openapi::ObjectBuilder::new().build();
    o.schema_type = nullable(utoipa::openapi::Type::Object);
    o
}

/// `/v1/authorize` resource attributes and context: at most 64 entries; keys are labels
/// (≤ 128), values any text up to 4096 characters.
pub fn pairs() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .property_names(Some(label(128)))
        .additional_properties(Some(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::Type::String)
                .max_length(Some(4096)),
        ))
        .max_properties(Some(64))
        .build()
}
