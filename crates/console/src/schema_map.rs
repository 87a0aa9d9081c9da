//! What a catalog becomes in Postgres, for the explorer: one card per table (its columns and
//! their types, the key, what stays only in `_raw_data`) and the relations between tables.
//!
//! A relation is a column holding another resource's id. The catalog says which objects a
//! property refers to when its schema carries `x-resources` (source-stripe copies Stripe's
//! `x-expansionResources` there); otherwise a property named after an object (`customer`,
//! `default_payment_method` → `payment_method`) is taken as a reference to that object's stream.

use std::collections::BTreeMap;

use pg_tables::table::{self, PgType, TableModel};
use serde_json::Value;
use sync_protocol::{Catalog, ConfiguredStream};

/// How a column came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// Part of the primary key; written by the loader.
    Key,
    /// Generated from `_raw_data`.
    Typed,
    /// Owned by the destination (`_raw_data`, `_synced_at`, …).
    System,
}

impl ColumnKind {
    /// A word for the column's kind.
    pub fn label(self) -> &'static str {
        match self {
            ColumnKind::Key => "key",
            ColumnKind::Typed => "typed",
            ColumnKind::System => "system",
        }
    }
}

/// One column of a table.
#[derive(Debug, Clone)]
pub struct Column {
    /// Its name in Postgres.
    pub name: String,
    /// Its Postgres type.
    pub pg_type: &'static str,
    /// Key, typed or system.
    pub kind: ColumnKind,
    /// The stream its value refers to, when it holds another resource's id.
    pub refers_to: Option<String>,
}

/// One stream's table.
#[derive(Debug, Clone)]
pub struct TableCard {
    /// The stream.
    pub stream: String,
    /// The table.
    pub table: String,
    /// The objects' `object` value, when the catalog says it.
    pub object: Option<String>,
    /// The stream it is listed through, for nested streams.
    pub parent: Option<String>,
    /// Key columns first, then typed columns, then the system columns.
    pub columns: Vec<Column>,
    /// Properties of the schema that have no column of their own (their values are in
    /// `_raw_data` only): names taken by a system column, or cut to a name already used.
    pub raw_only: Vec<String>,
}

impl TableCard {
    /// The key columns' names.
    pub fn key(&self) -> Vec<&str> {
        self.columns
            .iter()
            .filter(|c| c.kind == ColumnKind::Key)
            .map(|c| c.name.as_str())
            .collect()
    }

    /// Whether the search text names this table or one of its columns.
    pub fn matches(&self, needle: &str) -> bool {
        needle.is_empty()
            || self.table.contains(needle)
            || !self.matching_columns(needle).is_empty()
    }

    /// The columns whose names contain the search text.
    pub fn matching_columns(&self, needle: &str) -> Vec<&str> {
        if needle.is_empty() {
            return Vec::new();
        }
        self.columns
            .iter()
            .filter(|c| c.name.contains(needle))
            .map(|c| c.name.as_str())
            .collect()
    }
}

/// A column of one table holding the id of a row of another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// The referring stream.
    pub from: String,
    /// The column holding the id.
    pub column: String,
    /// The referred stream.
    pub to: String,
    /// Said by the catalog (`x-resources`), or guessed from the column's name.
    pub declared: bool,
}

/// Every table of a catalog and the relations between them.
#[derive(Debug, Clone, Default)]
pub struct SchemaMap {
    /// Sorted by stream name.
    pub tables: Vec<TableCard>,
    /// Sorted by referring stream, then column.
    pub edges: Vec<Edge>,
}

/// Prefixes Stripe puts before an object's name in a property that refers to it.
const REFERENCE_PREFIXES: [&str; 8] = [
    "default_",
    "latest_",
    "original_",
    "source_",
    "from_",
    "destination_",
    "last_",
    "pending_",
];

impl SchemaMap {
    /// The map of a catalog.
    pub fn of(catalog: &Catalog) -> SchemaMap {
        let objects = ObjectIndex::of(catalog);
        let mut tables = Vec::new();
        let mut edges = Vec::new();
        for stream in &catalog.streams {
            let model = TableModel::from_stream(&ConfiguredStream::new(stream.clone()));
            let properties = stream
                .json_schema
                .as_ref()
                .and_then(|s| s.get("properties"))
                .and_then(Value::as_object);
            let mut columns = Vec::new();
            for (kind, fields) in [
                (ColumnKind::Key, &model.keys),
                (ColumnKind::Typed, &model.columns),
            ] {
                for field in fields {
                    let schema = properties.and_then(|p| p.get(&field.field));
                    let target =
                        schema.and_then(|s| objects.reference(&field.field, s, field.pg_type));
                    if let Some((to, declared)) = &target {
                        edges.push(Edge {
                            from: stream.name.clone(),
                            column: field.column.clone(),
                            to: to.clone(),
                            declared: *declared,
                        });
                    }
                    columns.push(Column {
                        name: field.column.clone(),
                        pg_type: field.pg_type.sql(),
                        kind,
                        refers_to: target.map(|(to, _)| to),
                    });
                }
            }
            columns.extend(system_columns());
            let raw_only = properties
                .map(|p| {
                    p.keys()
                        .filter(|f| {
                            !model
                                .keys
                                .iter()
                                .chain(&model.columns)
                                .any(|c| &c.field == *f)
                        })
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            let metadata = stream.metadata.as_ref();
            tables.push(TableCard {
                stream: stream.name.clone(),
                table: model.table,
                object: metadata
                    .and_then(|m| m.get("resource_name"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                parent: metadata
                    .and_then(|m| m.get("parent_stream"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                columns,
                raw_only,
            });
        }
        tables.sort_by(|a, b| a.stream.cmp(&b.stream));
        edges.sort_by(|a, b| (&a.from, &a.column).cmp(&(&b.from, &b.column)));
        SchemaMap { tables, edges }
    }

    /// The card of a stream.
    pub fn table(&self, stream: &str) -> Option<&TableCard> {
        self.tables.iter().find(|t| t.stream == stream)
    }

    /// The relations of a stream: those from it, and those to it.
    pub fn edges_of<'a>(&'a self, stream: &str) -> (Vec<&'a Edge>, Vec<&'a Edge>) {
        let outgoing = self.edges.iter().filter(|e| e.from == stream).collect();
        let incoming = self
            .edges
            .iter()
            .filter(|e| e.to == stream && e.from != stream)
            .collect();
        (outgoing, incoming)
    }

    /// The table name of a stream (the stream's own name when it is unknown).
    pub fn table_name<'a>(&'a self, stream: &'a str) -> &'a str {
        self.table(stream).map_or(stream, |t| t.table.as_str())
    }
}

fn system_columns() -> Vec<Column> {
    table::SYSTEM_COLUMNS
        .iter()
        .map(|(name, definition)| Column {
            name: (*name).to_owned(),
            // The type is the definition's first word.
            pg_type: definition.split(' ').next().unwrap_or(definition),
            kind: ColumnKind::System,
            refers_to: None,
        })
        .collect()
}

/// Streams by the `object` value of their objects.
struct ObjectIndex {
    streams: BTreeMap<String, String>,
}

impl ObjectIndex {
    fn of(catalog: &Catalog) -> ObjectIndex {
        let mut streams = BTreeMap::new();
        // Top-level streams first: an object listed both ways is joined to its own list.
        let mut ordered: Vec<_> = catalog.streams.iter().collect();
        ordered.sort_by_key(|s| {
            s.metadata
                .as_ref()
                .is_some_and(|m| m.get("parent_stream").is_some())
        });
        for stream in ordered {
            let object = stream
                .metadata
                .as_ref()
                .and_then(|m| m.get("resource_name"))
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| stream.name.trim_end_matches('s').to_owned());
            streams.entry(object).or_insert_with(|| stream.name.clone());
        }
        ObjectIndex { streams }
    }

    /// The stream a property refers to, and whether the catalog declared it.
    fn reference(&self, field: &str, schema: &Value, pg_type: PgType) -> Option<(String, bool)> {
        if let Some(Value::Array(objects)) = schema.get("x-resources") {
            return objects
                .iter()
                .filter_map(Value::as_str)
                .find_map(|o| self.streams.get(o))
                .map(|s| (s.clone(), true));
        }
        if !matches!(pg_type, PgType::Reference | PgType::Text)
            || field == "id"
            || field == "object"
        {
            return None;
        }
        let bare = REFERENCE_PREFIXES
            .iter()
            .filter_map(|p| field.strip_prefix(p));
        std::iter::once(field)
            .chain(bare)
            .find_map(|name| self.by_name(name))
            .map(|s| (s, false))
    }

    /// The stream of an object named exactly so, or the only one whose dotted name ends so
    /// (`test_clock` → `test_helpers.test_clock`).
    fn by_name(&self, name: &str) -> Option<String> {
        if let Some(stream) = self.streams.get(name) {
            return Some(stream.clone());
        }
        let suffix = format!(".{name}");
        let mut found = self.streams.iter().filter(|(o, _)| o.ends_with(&suffix));
        match (found.next(), found.next()) {
            (Some((_, stream)), None) => Some(stream.clone()),
            _ => None,
        }
    }
}
