//! The schema explorer's pages: every table as a card with search, and one table's columns,
//! its relations drawn as a graph, a join example for each, and its numbers in a destination.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use pg_tables::ident::quote as quote_ident;
use serde::Deserialize;

use crate::destinations::{Choice, chosen};
use crate::frame::{Console, render, unavailable};
use crate::schema_map::{ColumnKind, Edge, SchemaMap, TableCard};
use crate::table_stats::{self, Destination, SchemaStats};
use crate::{format, link};

/// The explorer's query: the search text and the destination to count rows in.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ExplorerQuery {
    #[serde(default)]
    q: String,
    /// A destination's label (a pipeline id in sync-service).
    #[serde(default)]
    destination: Option<String>,
}

struct CardView {
    /// The table's page.
    href: String,
    table: String,
    key: String,
    columns: usize,
    relations: usize,
    /// The table's and its columns' names, for the page's own filter.
    search: String,
    matching: Vec<String>,
    rows: String,
    last_synced: String,
}

#[derive(askama::Template)]
#[template(path = "explorer.html")]
struct ExplorerPage<'a> {
    chrome: &'a crate::frame::Chrome,
    current: &'static str,
    title: String,
    q: String,
    cards: Vec<CardView>,
    total: usize,
    relations: usize,
    choices: Vec<Choice>,
    problem: Option<String>,
}

async fn stats_for(destination: Option<&Destination>, map: &SchemaMap) -> SchemaStats {
    match destination {
        Some(d) => {
            let tables: Vec<String> = map.tables.iter().map(|t| t.table.clone()).collect();
            table_stats::read(d, &tables).await
        }
        None => SchemaStats::default(),
    }
}

fn numbers(stats: &SchemaStats, table: &str, measured: bool) -> (String, String) {
    match stats.tables.get(table) {
        Some(s) => (
            format::count(s.rows),
            s.last_synced_at
                .clone()
                .unwrap_or_else(|| "—".to_owned())
                .replace('T', " "),
        ),
        None if measured && stats.problem.is_none() => ("no table".to_owned(), "—".to_owned()),
        None => (String::new(), String::new()),
    }
}

/// The catalog's map, the destination chosen (with the choices and the link suffix), and its
/// numbers; or the page that says why not.
struct Loaded {
    map: SchemaMap,
    destination: Option<Destination>,
    choices: Vec<Choice>,
    suffix: String,
    stats: SchemaStats,
}

async fn load(console: &Console, wanted: Option<&str>) -> Result<Loaded, Response> {
    let catalog = console
        .explorer
        .catalog()
        .await
        .map_err(|e| unavailable(&console.chrome, &e))?;
    let map = SchemaMap::of(&catalog);
    let (destination, choices, suffix) = chosen(console, wanted)
        .await
        .map_err(|e| unavailable(&console.chrome, &e))?;
    let stats = stats_for(destination.as_ref(), &map).await;
    Ok(Loaded {
        map,
        destination,
        choices,
        suffix,
        stats,
    })
}

/// `GET /explorer`.
pub(crate) async fn index(
    State(console): State<Arc<Console>>,
    Query(query): Query<ExplorerQuery>,
) -> Response {
    let loaded = match load(&console, query.destination.as_deref()).await {
        Ok(l) => l,
        Err(page) => return page,
    };
    let Loaded {
        map,
        destination,
        choices,
        suffix,
        stats,
    } = loaded;
    let needle = query.q.trim().to_ascii_lowercase();
    let cards = map
        .tables
        .iter()
        .filter(|t| t.matches(&needle))
        .map(|t| card_view(&map, t, &needle, &stats, destination.is_some(), &suffix))
        .collect();
    render(&ExplorerPage {
        chrome: &console.chrome,
        current: "explorer",
        title: "Schema explorer".to_owned(),
        q: query.q.trim().to_owned(),
        cards,
        total: map.tables.len(),
        relations: map.edges.len(),
        choices,
        problem: stats.problem.clone(),
    })
}

fn card_view(
    map: &SchemaMap,
    t: &TableCard,
    needle: &str,
    stats: &SchemaStats,
    measured: bool,
    suffix: &str,
) -> CardView {
    let (outgoing, incoming) = map.edges_of(&t.stream);
    let (rows, last_synced) = numbers(stats, &t.table, measured);
    let mut search = t.table.clone();
    for c in &t.columns {
        search.push(' ');
        search.push_str(&c.name);
    }
    CardView {
        href: link::table_page(&t.stream, suffix),
        table: t.table.clone(),
        key: t.key().join(", "),
        columns: t.columns.len(),
        relations: outgoing.len() + incoming.len(),
        search,
        matching: t
            .matching_columns(needle)
            .into_iter()
            .map(str::to_owned)
            .collect(),
        rows,
        last_synced,
    }
}

struct ColumnView {
    name: String,
    pg_type: &'static str,
    kind: &'static str,
    /// The referred table's page and name.
    refers_to: Option<(String, String)>,
}

struct RelationView {
    outgoing: bool,
    column: String,
    other_stream: String,
    /// The other table's page.
    href: String,
    other_table: String,
    declared: bool,
    sql: String,
    /// The SQL page running `sql`.
    query_href: String,
}

/// One box of the graph.
struct Node {
    x: u32,
    y: u32,
    width: u32,
    /// The whole label (the box's tooltip).
    label: String,
    /// The label cut to fit the box.
    short: String,
    /// The stream it links to and its page; `None` for the table itself.
    link: Option<(String, String)>,
}

/// One line of the graph, with the column it stands for.
struct Line {
    x1: u32,
    y1: u32,
    x2: u32,
    y2: u32,
    title: String,
}

#[derive(askama::Template)]
#[template(path = "table.html")]
struct TablePage<'a> {
    chrome: &'a crate::frame::Chrome,
    current: &'static str,
    title: String,
    stream: String,
    table: String,
    object: String,
    parent: String,
    /// The parent's page.
    parent_href: String,
    key: String,
    columns: Vec<ColumnView>,
    raw_only: Vec<String>,
    relations: Vec<RelationView>,
    nodes: Vec<Node>,
    lines: Vec<Line>,
    graph_height: u32,
    rows: String,
    last_synced: String,
    destination: String,
    suffix: String,
    /// The SQL page running a select of this table.
    query_href: String,
    problem: Option<String>,
}

/// `GET /explorer/tables/{stream}`.
pub(crate) async fn table(
    State(console): State<Arc<Console>>,
    Path(stream): Path<String>,
    Query(query): Query<ExplorerQuery>,
) -> Response {
    let Loaded {
        map,
        destination,
        suffix,
        stats,
        ..
    } = match load(&console, query.destination.as_deref()).await {
        Ok(l) => l,
        Err(page) => return page,
    };
    let Some(card) = map.table(&stream) else {
        return crate::frame::not_found(
            &console.chrome,
            &format!("The catalog has no stream {stream:?}."),
        );
    };
    let (rows, last_synced) = numbers(&stats, &card.table, destination.is_some());
    let schema = destination.as_ref().map(|d| d.schema.as_str());
    let label = destination.as_ref().map(|d| d.label.as_str());
    let (outgoing, incoming) = map.edges_of(&stream);
    let relations: Vec<RelationView> = outgoing
        .iter()
        .map(|e| relation(&map, e, true, schema, label, &suffix))
        .chain(
            incoming
                .iter()
                .map(|e| relation(&map, e, false, schema, label, &suffix)),
        )
        .collect();
    let select = format!(
        "SELECT *\nFROM {}\nLIMIT 100;",
        match schema {
            Some(s) => format!("{}.{}", quote_ident(s), quote_ident(&card.table)),
            None => quote_ident(&card.table),
        }
    );
    let (nodes, lines, graph_height) = graph(card, &relations);
    let query_href = link::sql_page(&select, label);
    render(&TablePage {
        chrome: &console.chrome,
        current: "explorer",
        title: format!("{} · Schema explorer", card.table),
        stream: card.stream.clone(),
        table: card.table.clone(),
        object: card.object.clone().unwrap_or_default(),
        parent: card.parent.clone().unwrap_or_default(),
        parent_href: card
            .parent
            .as_deref()
            .map(|p| link::table_page(p, &suffix))
            .unwrap_or_default(),
        key: card.key().join(", "),
        columns: column_views(&map, card, &suffix),
        raw_only: card.raw_only.clone(),
        relations,
        nodes,
        lines,
        graph_height,
        rows,
        last_synced,
        destination: destination.map(|d| d.label).unwrap_or_default(),
        suffix,
        query_href,
        problem: stats.problem,
    })
}

fn column_views(map: &SchemaMap, card: &TableCard, suffix: &str) -> Vec<ColumnView> {
    card.columns
        .iter()
        .map(|c| ColumnView {
            name: c.name.clone(),
            pg_type: c.pg_type,
            kind: c.kind.label(),
            refers_to: c
                .refers_to
                .as_ref()
                .map(|s| (link::table_page(s, suffix), map.table_name(s).to_owned())),
        })
        .collect()
}

fn relation(
    map: &SchemaMap,
    edge: &Edge,
    outgoing: bool,
    schema: Option<&str>,
    destination: Option<&str>,
    suffix: &str,
) -> RelationView {
    let other = if outgoing { &edge.to } else { &edge.from };
    let sql = join_sql(map, edge, schema);
    RelationView {
        query_href: link::sql_page(&sql, destination),
        outgoing,
        column: edge.column.clone(),
        other_stream: other.clone(),
        href: link::table_page(other, suffix),
        other_table: map.table_name(other).to_owned(),
        declared: edge.declared,
        sql,
    }
}

/// A query joining the two tables of an edge: on the referred table's first key column, and
/// on every other key column both tables have (`_account_id`, when several accounts share
/// the tables).
pub fn join_sql(map: &SchemaMap, edge: &Edge, schema: Option<&str>) -> String {
    let from_table = map.table_name(&edge.from);
    let to_table = map.table_name(&edge.to);
    let from_alias = from_table.to_owned();
    let to_alias = if edge.from == edge.to {
        format!("{to_table}_2")
    } else {
        to_table.to_owned()
    };
    let qualified = |t: &str| match schema {
        Some(s) => format!("{}.{}", quote_ident(s), quote_ident(t)),
        None => quote_ident(t),
    };
    let (f, t) = (quote_ident(&from_alias), quote_ident(&to_alias));
    let target_keys: Vec<&str> = map.table(&edge.to).map(TableCard::key).unwrap_or_default();
    let referred = target_keys.first().copied().unwrap_or("id");
    let mut on = vec![format!(
        "{t}.{} = {f}.{}",
        quote_ident(referred),
        quote_ident(&edge.column)
    )];
    let from_columns = map.table(&edge.from).map(|c| &c.columns);
    for key in target_keys.iter().skip(1) {
        let shared = from_columns.is_some_and(|cs| {
            cs.iter()
                .any(|c| c.name == *key && c.kind == ColumnKind::Key)
        });
        if shared {
            on.push(format!("{t}.{k} = {f}.{k}", k = quote_ident(key)));
        }
    }
    format!(
        "SELECT {f}.*, {t}.*\nFROM {} AS {f}\nJOIN {} AS {t}\n  ON {}\nLIMIT 100;",
        qualified(from_table),
        qualified(to_table),
        on.join("\n AND ")
    )
}

const NODE_HEIGHT: u32 = 30;
const ROW: u32 = 40;
const SIDE_WIDTH: u32 = 250;
const CENTER_WIDTH: u32 = 200;
const LEFT_X: u32 = 10;
const CENTER_X: u32 = 310;
const RIGHT_X: u32 = 560;
/// Characters of 13px monospace that fit a box, padding aside.
const SIDE_LABEL_CHARS: usize = 29;
const CENTER_LABEL_CHARS: usize = 23;

/// `text`, or its start and `…` when longer than `max` characters.
fn fitted(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

/// The table in the middle, what refers to it on the left, what it refers to on the right.
fn graph(card: &TableCard, relations: &[RelationView]) -> (Vec<Node>, Vec<Line>, u32) {
    let left: Vec<&RelationView> = relations.iter().filter(|r| !r.outgoing).collect();
    let right: Vec<&RelationView> = relations.iter().filter(|r| r.outgoing).collect();
    let rows = left.len().max(right.len()).max(1) as u32;
    let height = rows * ROW + 10;
    let center_y = (height - NODE_HEIGHT) / 2;
    let mut nodes = vec![Node {
        x: CENTER_X,
        y: center_y,
        width: CENTER_WIDTH,
        short: fitted(&card.table, CENTER_LABEL_CHARS),
        label: card.table.clone(),
        link: None,
    }];
    let mut lines = Vec::new();
    for (side, items) in [(false, &left), (true, &right)] {
        let top = (height - items.len() as u32 * ROW) / 2 + 5;
        for (i, r) in items.iter().enumerate() {
            let y = top + i as u32 * ROW;
            let (x, label) = if side {
                (RIGHT_X, format!("{} → {}", r.column, r.other_table))
            } else {
                (LEFT_X, format!("{}.{}", r.other_table, r.column))
            };
            nodes.push(Node {
                x,
                y,
                width: SIDE_WIDTH,
                short: fitted(&label, SIDE_LABEL_CHARS),
                label,
                link: Some((r.other_stream.clone(), r.href.clone())),
            });
            let mid = y + NODE_HEIGHT / 2;
            let center_mid = center_y + NODE_HEIGHT / 2;
            lines.push(if side {
                Line {
                    x1: CENTER_X + CENTER_WIDTH,
                    y1: center_mid,
                    x2: RIGHT_X,
                    y2: mid,
                    title: r.column.clone(),
                }
            } else {
                Line {
                    x1: LEFT_X + SIDE_WIDTH,
                    y1: mid,
                    x2: CENTER_X,
                    y2: center_mid,
                    title: r.column.clone(),
                }
            });
        }
    }
    (nodes, lines, height)
}

#[cfg(test)]
mod tests {
    #[test]
    fn labels_are_cut_to_their_box() {
        assert_eq!(super::fitted("customers", 29), "customers");
        let long = super::fitted("default_payment_method → payment_methods", 29);
        assert_eq!(long.chars().count(), 29);
        assert!(long.ends_with('…'));
    }
}
