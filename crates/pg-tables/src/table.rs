//! The table a stream loads into, derived from the stream's catalog entry: key columns, system
//! columns, and one typed column per top-level property of the stream's JSON Schema.
//!
//! Key columns and the system columns are written by the loader. Typed columns are stored
//! generated columns computed from `_raw_data`: the loader sends each object once, the typed
//! view can never disagree with the raw object, and a property added to a later catalog gets its
//! column filled for existing rows too. (`docs/benchmarks.md` measures the cost against plain
//! columns.)

use std::collections::BTreeSet;

use serde_json::Value;
use sync_protocol::ConfiguredStream;

use crate::ident::{fit, literal, quote};

/// Columns the destination owns; a property with one of these names is not given a column.
/// The column holding the whole object.
pub const RAW_DATA: &str = "_raw_data";
/// The column holding the version (the stream's newer-than field).
pub const UPDATED_AT: &str = "_updated_at";
/// When the row was last written.
pub const SYNCED_AT: &str = "_synced_at";
/// Whether the row is a tombstone.
pub const DELETED: &str = "_deleted";
/// Why a row was marked deleted without a deletion of its own: `missing_from_listing` when a
/// whole listing of its stream did not return it; null for rows deleted by a deletion (an
/// event, a deleted object) and for live rows.
pub const DELETED_REASON: &str = "_deleted_reason";
/// [`DELETED_REASON`] of rows a whole listing did not return.
pub const MISSING_FROM_LISTING: &str = "missing_from_listing";
/// The tombstone field when the catalog names none (Stripe's deleted objects carry it).
pub const DEFAULT_SOFT_DELETE_FIELD: &str = "deleted";
const SYSTEM: [&str; 5] = [RAW_DATA, UPDATED_AT, SYNCED_AT, DELETED, DELETED_REASON];
/// The system columns of every table and their definitions.
pub const SYSTEM_COLUMNS: [(&str, &str); 5] = [
    (RAW_DATA, "jsonb NOT NULL"),
    (UPDATED_AT, "timestamptz"),
    (SYNCED_AT, "timestamptz NOT NULL DEFAULT now()"),
    (DELETED, "boolean NOT NULL DEFAULT false"),
    (DELETED_REASON, "text"),
];

/// A Postgres column type the destination produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgType {
    /// `text`.
    Text,
    /// `bigint`.
    BigInt,
    /// `numeric`.
    Numeric,
    /// `boolean`.
    Boolean,
    /// `jsonb`: objects, arrays and mixed types.
    Jsonb,
    /// A string id, or the expanded object it refers to (Stripe's expandable fields): text, the id.
    Reference,
}

impl PgType {
    /// The type as Postgres spells it.
    pub fn sql(self) -> &'static str {
        match self {
            PgType::Text | PgType::Reference => "text",
            PgType::BigInt => "bigint",
            PgType::Numeric => "numeric",
            PgType::Boolean => "boolean",
            PgType::Jsonb => "jsonb",
        }
    }
}

/// The JSON types a property can take, null excluded.
fn json_types(schema: &Value, out: &mut BTreeSet<String>) {
    match schema.get("type") {
        Some(Value::String(t)) => {
            out.insert(t.clone());
        }
        Some(Value::Array(ts)) => {
            out.extend(ts.iter().filter_map(Value::as_str).map(str::to_owned))
        }
        _ => {}
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(Value::Array(members)) = schema.get(key) {
            for m in members {
                json_types(m, out);
            }
        }
    }
    if schema.get("type").is_none()
        && let Some(Value::Array(values)) = schema.get("enum")
    {
        for v in values {
            let t = match v {
                Value::String(_) => "string",
                Value::Bool(_) => "boolean",
                Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
                Value::Number(_) => "number",
                _ => continue,
            };
            out.insert(t.to_owned());
        }
    }
    out.remove("null");
}

/// The column type for a property schema. Nullable types are unwrapped to their real type.
pub fn pg_type(schema: &Value) -> PgType {
    let mut types = BTreeSet::new();
    json_types(schema, &mut types);
    let expandable = schema
        .get("x-expandable")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let has = |t: &str| types.contains(t);
    match types.len() {
        0 => PgType::Jsonb,
        1 if has("string") => {
            if expandable {
                PgType::Reference
            } else {
                PgType::Text
            }
        }
        1 if has("integer") => PgType::BigInt,
        1 if has("number") => PgType::Numeric,
        1 if has("boolean") => PgType::Boolean,
        1 => PgType::Jsonb,
        2 if has("integer") && has("number") => PgType::Numeric,
        2 if has("string") && has("object") => PgType::Reference,
        _ => PgType::Jsonb,
    }
}

/// The column of one top-level field of the records: a key column (written by the loader) or a
/// typed column (generated from `_raw_data`).
#[derive(Debug, Clone)]
pub struct FieldColumn {
    /// The record's field.
    pub field: String,
    /// The column (the field's name, cut to fit Postgres' limit).
    pub column: String,
    /// Its type.
    pub pg_type: PgType,
}

impl FieldColumn {
    /// A typed column's generation expression. Guards by JSON type so an unexpected value becomes NULL rather
    /// than failing the load; JSON null becomes SQL NULL.
    pub fn expression(&self) -> String {
        let value = format!("({RAW_DATA} -> {})", literal(&self.field));
        let text = format!("({RAW_DATA} ->> {})", literal(&self.field));
        let guarded = |json_type: &str, cast: &str| {
            format!("CASE WHEN jsonb_typeof({value}) = '{json_type}' THEN ({value})::{cast} END")
        };
        match self.pg_type {
            PgType::Text => text,
            // Only a whole number within bigint's range: 1.5 is not rounded, 2^63 does not fail
            // the load; the raw object keeps the value either way.
            PgType::BigInt => format!(
                "CASE WHEN jsonb_typeof({value}) = 'number' AND ({value})::numeric = trunc(({value})::numeric) \
                 AND ({value})::numeric BETWEEN -9223372036854775808 AND 9223372036854775807 THEN ({value})::bigint END"
            ),
            PgType::Numeric => guarded("number", "numeric"),
            PgType::Boolean => guarded("boolean", "boolean"),
            PgType::Jsonb => format!("NULLIF({value}, 'null'::jsonb)"),
            PgType::Reference => format!(
                "CASE WHEN jsonb_typeof({value}) = 'object' THEN {value} ->> 'id' ELSE {text} END"
            ),
        }
    }

    /// The column's definition in `CREATE TABLE`.
    pub fn definition(&self) -> String {
        format!(
            "{} {} GENERATED ALWAYS AS ({}) STORED",
            quote(&self.column),
            self.pg_type.sql(),
            self.expression()
        )
    }
}

/// Everything about one stream's table.
#[derive(Debug, Clone)]
pub struct TableModel {
    /// The stream.
    pub stream: String,
    /// The table (the stream's name, cut to fit).
    pub table: String,
    /// The primary key's columns, written by the loader.
    pub keys: Vec<FieldColumn>,
    /// The typed columns.
    pub columns: Vec<FieldColumn>,
    /// The field whose value orders versions of a row.
    pub newer_than_field: Option<String>,
    /// The boolean field whose `true` marks a tombstone (the catalog's `soft_delete_field`).
    pub soft_delete_field: String,
}

impl TableModel {
    /// The table of a configured stream.
    pub fn from_stream(configured: &ConfiguredStream) -> TableModel {
        let stream = &configured.stream;
        let properties = stream
            .json_schema
            .as_ref()
            .and_then(|s| s.get("properties"))
            .and_then(Value::as_object);
        let property = |field: &str| properties.and_then(|p| p.get(field));
        let mut seen_columns = BTreeSet::new();
        let mut keys = Vec::new();
        for field in stream.primary_key_fields() {
            let column = fit(field);
            if !seen_columns.insert(column.clone()) {
                continue;
            }
            let pg_type = match property(field).map(pg_type) {
                Some(PgType::BigInt) => PgType::BigInt,
                _ => PgType::Text,
            };
            keys.push(FieldColumn {
                field: field.to_owned(),
                column,
                pg_type,
            });
        }
        for system in SYSTEM {
            seen_columns.insert(system.to_owned());
        }
        let selected: Option<BTreeSet<&str>> = configured
            .fields
            .as_ref()
            .map(|f| f.iter().map(String::as_str).collect());
        let mut columns = Vec::new();
        if let Some(properties) = properties {
            for (field, schema) in properties {
                if selected
                    .as_ref()
                    .is_some_and(|s| !s.contains(field.as_str()))
                {
                    continue;
                }
                let column = fit(field);
                if column.is_empty() || !seen_columns.insert(column.clone()) {
                    continue;
                }
                columns.push(FieldColumn {
                    field: field.clone(),
                    column,
                    pg_type: pg_type(schema),
                });
            }
        }
        TableModel {
            stream: stream.name.clone(),
            table: fit(&stream.name),
            keys,
            columns,
            newer_than_field: stream.newer_than_field.clone(),
            soft_delete_field: stream
                .soft_delete_field
                .clone()
                .unwrap_or_else(|| DEFAULT_SOFT_DELETE_FIELD.to_owned()),
        }
    }

    /// The system columns' definitions (key columns excluded).
    pub fn system_definitions(&self) -> Vec<String> {
        SYSTEM_COLUMNS
            .iter()
            .map(|(name, definition)| format!("{} {definition}", quote(name)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nullable_types_are_unwrapped() {
        assert_eq!(pg_type(&json!({"type": ["string", "null"]})), PgType::Text);
        assert_eq!(
            pg_type(&json!({"oneOf": [{"type": "integer"}, {"type": "null"}]})),
            PgType::BigInt
        );
        assert_eq!(
            pg_type(&json!({"anyOf": [{"type": "boolean"}, {"type": "null"}]})),
            PgType::Boolean
        );
        assert_eq!(
            pg_type(&json!({"type": ["number", "null"]})),
            PgType::Numeric
        );
        assert_eq!(
            pg_type(&json!({"type": ["integer", "number"]})),
            PgType::Numeric
        );
        assert_eq!(pg_type(&json!({"type": ["object", "null"]})), PgType::Jsonb);
        assert_eq!(pg_type(&json!({"type": "array"})), PgType::Jsonb);
        assert_eq!(
            pg_type(&json!({"type": ["string", "null"], "x-expandable": true})),
            PgType::Reference
        );
        assert_eq!(pg_type(&json!({"enum": ["a", "b", null]})), PgType::Text);
        assert_eq!(pg_type(&json!({})), PgType::Jsonb);
        assert_eq!(
            pg_type(&json!({"type": ["string", "integer"]})),
            PgType::Jsonb
        );
    }
}
