//! `dest-postgres write` throughput against the physical limit of this machine's Postgres.
//!
//! Measures, in one run and one fresh database:
//! 1. raw COPY: the same rows, pre-encoded, COPYed into an empty table of the same shape;
//! 2. first load: `dest-postgres write` of an NDJSON file into the empty table;
//! 3. updates: every row changed (a new name, a newer version) on a full table;
//! 4. mixed: half the records new keys, half updates;
//! 5. a re-sync of unchanged records (equal versions, equal objects);
//! 6. five streams at once against five raw COPYs on five connections;
//! 7. plain columns: raw COPY into a table whose typed columns are ordinary columns filled by
//!    the client, to price generated columns.
//!
//! Prints one JSON object per measurement. `cargo bench -p dest-postgres --bench load -- [RECORDS]`

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use postgres::Client;
use serde_json::{Value, json};
use test_support::TestDb;
use test_support::fixtures::customer_version;

fn customer(i: usize) -> Value {
    customer_version(i, 0)
}

fn catalog() -> Value {
    catalog_of(&["customers"])
}

fn catalog_of(streams: &[&str]) -> Value {
    let props = json!({
        "id": {"type": "string"}, "object": {"type": "string"}, "address": {"type": ["object", "null"]},
        "balance": {"type": "integer"}, "created": {"type": "integer"}, "currency": {"type": ["string", "null"]},
        "default_source": {"type": ["string", "null"], "x-expandable": true}, "delinquent": {"type": ["boolean", "null"]},
        "description": {"type": ["string", "null"]}, "discount": {"type": ["object", "null"]}, "email": {"type": ["string", "null"]},
        "invoice_prefix": {"type": ["string", "null"]}, "invoice_settings": {"type": "object"}, "livemode": {"type": "boolean"},
        "metadata": {"type": "object"}, "name": {"type": ["string", "null"]}, "next_invoice_sequence": {"type": "integer"},
        "phone": {"type": ["string", "null"]}, "preferred_locales": {"type": ["array", "null"]}, "shipping": {"type": ["object", "null"]},
        "tax_exempt": {"type": ["string", "null"]}, "test_clock": {"type": ["string", "null"], "x-expandable": true},
        "_account_id": {"type": "string"}, "_updated_at": {"type": "integer"}
    });
    let streams: Vec<Value> = streams
        .iter()
        .map(|name| json!({"name": name, "primary_key": [["id"]], "newer_than_field": "_updated_at", "json_schema": {"type": "object", "properties": props}}))
        .collect();
    json!({ "streams": streams })
}

fn write_input(path: &Path, records: usize) -> u64 {
    write_records(path, &["customers"], (0..records).map(|i| (i, 0)))
}

/// Writes records `(key, version)` of customers, spread round-robin over `streams`, with a
/// state per stream every thousand records.
fn write_records(
    path: &Path,
    streams: &[&str],
    records: impl Iterator<Item = (usize, i64)>,
) -> u64 {
    let mut out = BufWriter::new(File::create(path).unwrap());
    for (n, (i, v)) in records.enumerate() {
        let stream = streams[n % streams.len()];
        let line = json!({"type": "record", "record": {"stream": stream, "data": customer_version(i, v), "emitted_at": "2026-01-01T00:00:00.000Z"}});
        serde_json::to_writer(&mut out, &line).unwrap();
        out.write_all(b"\n").unwrap();
        if n % 1000 == 999 {
            writeln!(out, "{}", json!({"type": "source_state", "source_state": {"stream": stream, "data": {"n": n}}})).unwrap();
        }
    }
    out.flush().unwrap();
    std::fs::metadata(path).unwrap().len()
}

/// Runs the binary on the input file; returns elapsed time and peak RSS in bytes.
fn run_write(config: &Value, input: &Path) -> (Duration, u64) {
    run_write_catalog(config, &catalog(), input)
}

fn run_write_catalog(config: &Value, catalog: &Value, input: &Path) -> (Duration, u64) {
    let start = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_dest-postgres"))
        .args([
            "write",
            "--config",
            &config.to_string(),
            "--catalog",
            &catalog.to_string(),
        ])
        .stdin(File::open(input).unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let measured = test_support::measure::wait_measuring(child, start);
    assert!(measured.status.success(), "dest-postgres write failed");
    (measured.elapsed, measured.peak_rss_bytes)
}

/// COPYs pre-encoded text rows into a table; returns elapsed time.
fn raw_copy(client: &mut Client, table: &str, columns: &str, rows: &[u8]) -> Duration {
    let start = Instant::now();
    let mut writer = client
        .copy_in(&format!("COPY {table} ({columns}) FROM STDIN"))
        .unwrap();
    writer.write_all(rows).unwrap();
    writer.finish().unwrap();
    start.elapsed()
}

/// The cluster's WAL position in bytes: the difference around a run is the WAL it wrote
/// (and whatever else the cluster wrote meanwhile).
fn wal_position(client: &mut Client) -> i64 {
    client
        .query_one("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint", &[])
        .unwrap()
        .get(0)
}

/// Runs `run`, returning its result and the WAL written meanwhile.
fn with_wal<T>(client: &mut Client, run: impl FnOnce() -> T) -> (T, i64) {
    let before = wal_position(client);
    let result = run();
    (result, wal_position(client) - before)
}

/// Vacuums and checkpoints the database before a pass, so that none pays for the previous
/// one's dead rows (pruned by whoever reads them next) or dirty pages.
fn settle(client: &mut Client) {
    client.batch_execute("VACUUM").unwrap();
    client.batch_execute("CHECKPOINT").unwrap();
}

fn copy_text(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
}

fn report(name: &str, records: usize, elapsed: Duration, extra: Value) {
    let mut line = json!({"bench": name, "records": records, "seconds": elapsed.as_secs_f64(), "records_per_second": records as f64 / elapsed.as_secs_f64()});
    if let (Value::Object(l), Value::Object(e)) = (&mut line, extra) {
        l.extend(e);
    }
    println!("{line}");
}

fn main() {
    let records: usize = test_support::measure::count_from_args(200_000);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let input = dir.join(format!("customers-{records}.ndjson"));
    let bytes = write_input(&input, records);
    let db = TestDb::new();
    let config = json!({"url": db.url(), "schema": "bench"});
    let mut client = db.client();

    // Create the target table through the connector, then clone its shape for the raw COPY.
    let setup = Command::new(env!("CARGO_BIN_EXE_dest-postgres"))
        .args([
            "setup",
            "--config",
            &config.to_string(),
            "--catalog",
            &catalog().to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        setup.status.success(),
        "{}",
        String::from_utf8_lossy(&setup.stderr)
    );
    client
        .batch_execute("CREATE TABLE bench.raw_copy (LIKE bench.customers INCLUDING ALL)")
        .unwrap();

    let mut generated_rows = String::with_capacity(bytes as usize);
    let mut plain_rows = String::with_capacity(bytes as usize * 2);
    let typed: Vec<&str> = vec![
        "balance", "created", "email", "name", "livemode", "currency", "metadata",
    ];
    for i in 0..records {
        let c = customer(i);
        let raw = copy_text(&c.to_string());
        let ts = chrono::DateTime::from_timestamp(c["_updated_at"].as_i64().unwrap(), 0)
            .unwrap()
            .to_rfc3339();
        generated_rows.push_str(&format!("{}\t{raw}\t{ts}\tf\n", c["id"].as_str().unwrap()));
        let typed_values: Vec<String> = typed
            .iter()
            .map(|f| match &c[*f] {
                Value::Null => "\\N".to_owned(),
                Value::String(s) => copy_text(s),
                other => copy_text(&other.to_string()),
            })
            .collect();
        plain_rows.push_str(&format!(
            "{}\t{raw}\t{ts}\tf\t{}\n",
            c["id"].as_str().unwrap(),
            typed_values.join("\t")
        ));
    }

    // Best of three for the baseline and of two for each pass, each settled first (see `settle`):
    // this machine is shared and noisy.
    let mut raw = Duration::MAX;
    let mut raw_wal = 0;
    for _ in 0..3 {
        client
            .batch_execute("TRUNCATE bench.raw_copy; CHECKPOINT")
            .unwrap();
        let before = wal_position(&mut client);
        raw = raw.min(raw_copy(
            &mut client,
            "bench.raw_copy",
            "id, _raw_data, _updated_at, _deleted",
            generated_rows.as_bytes(),
        ));
        raw_wal = wal_position(&mut client) - before;
    }
    report(
        "raw COPY, generated columns",
        records,
        raw,
        json!({"wal_bytes": raw_wal}),
    );
    // The same rows on two connections at once: the fair baseline for a stream that loads
    // through two (connections_per_stream).
    let halves: Vec<String> = {
        let mut h = vec![String::new(), String::new()];
        for (n, line) in generated_rows.lines().enumerate() {
            h[n % 2].push_str(line);
            h[n % 2].push('\n');
        }
        h
    };
    let mut raw2 = Duration::MAX;
    for _ in 0..3 {
        client
            .batch_execute("TRUNCATE bench.raw_copy; CHECKPOINT")
            .unwrap();
        let start = Instant::now();
        std::thread::scope(|scope| {
            for half in &halves {
                let url = db.url().to_owned();
                scope.spawn(move || {
                    let mut c = Client::connect(&url, postgres::NoTls).unwrap();
                    raw_copy(
                        &mut c,
                        "bench.raw_copy",
                        "id, _raw_data, _updated_at, _deleted",
                        half.as_bytes(),
                    );
                });
            }
        });
        raw2 = raw2.min(start.elapsed());
    }
    report("raw COPY, two connections", records, raw2, json!({}));
    let ratios = |elapsed: Duration| {
        json!({"ratio_to_raw_copy": raw.as_secs_f64() / elapsed.as_secs_f64(),
               "ratio_to_raw_copy_two_connections": raw2.as_secs_f64() / elapsed.as_secs_f64()})
    };

    settle(&mut client);
    let ((mut first, mut first_rss), first_wal) = with_wal(&mut client, || {
        run_write(&json!({"url": db.url(), "schema": "bench_first"}), &input)
    });
    settle(&mut client);
    let (again_first, again_rss) = run_write(&config, &input);
    if again_first < first {
        first = again_first;
    }
    first_rss = first_rss.max(again_rss);
    let loaded: i64 = client
        .query_one("SELECT count(*) FROM bench.customers", &[])
        .unwrap()
        .get(0);
    assert_eq!(loaded as usize, records);
    let mut extra = ratios(first);
    extra["peak_rss_bytes"] = json!(first_rss);
    extra["input_bytes"] = json!(bytes);
    extra["wal_bytes"] = json!(first_wal);
    report("dest-postgres write, first load", records, first, extra);

    // The same load at a tenth of the size, into another schema: memory must not grow with input.
    let small_input = dir.join(format!("customers-{}.ndjson", records / 10));
    write_input(&small_input, records / 10);
    let (small, small_rss) = run_write(
        &json!({"url": db.url(), "schema": "bench_small"}),
        &small_input,
    );
    report(
        "dest-postgres write, first load of a tenth",
        records / 10,
        small,
        json!({"peak_rss_bytes": small_rss}),
    );

    // Every row changed, on a full table (twice, with newer versions each time).
    let mut update = Duration::MAX;
    let mut update_rss = 0;
    let mut update_wal = 0;
    for version in [1, 2] {
        let updates = dir.join(format!("customers-{records}-v{version}.ndjson"));
        write_records(&updates, &["customers"], (0..records).map(|i| (i, version)));
        settle(&mut client);
        let ((elapsed, rss), wal) = with_wal(&mut client, || run_write(&config, &updates));
        update = update.min(elapsed);
        update_rss = update_rss.max(rss);
        update_wal = wal;
    }
    let mut extra = ratios(update);
    extra["peak_rss_bytes"] = json!(update_rss);
    extra["wal_bytes"] = json!(update_wal);
    report(
        "dest-postgres write, updates of a full table",
        records,
        update,
        extra,
    );
    // The same updates on a table made with fillfactor 75 (room on each page for an update).
    let spaced = json!({"url": db.url(), "schema": "bench_spaced", "fillfactor": 75});
    settle(&mut client);
    run_write(&spaced, &input);
    let mut spaced_update = Duration::MAX;
    for version in [1, 2] {
        let updates = dir.join(format!("customers-{records}-v{version}.ndjson"));
        settle(&mut client);
        spaced_update = spaced_update.min(run_write(&spaced, &updates).0);
    }
    report(
        "dest-postgres write, updates of a full table, fillfactor 75",
        records,
        spaced_update,
        ratios(spaced_update),
    );
    // Half new keys, half changes of existing rows, interleaved (twice, new keys each time).
    let mut mix = Duration::MAX;
    let mut mix_wal = 0;
    for round in [1, 2] {
        let mixed = dir.join(format!("customers-{records}-mixed{round}.ndjson"));
        write_records(
            &mixed,
            &["customers"],
            (0..records).map(|n| {
                if n % 2 == 0 {
                    (records * round + n, 0)
                } else {
                    (n, 2 + round as i64)
                }
            }),
        );
        settle(&mut client);
        let ((elapsed, _), wal) = with_wal(&mut client, || run_write(&config, &mixed));
        mix = mix.min(elapsed);
        mix_wal = wal;
    }
    let mut extra = ratios(mix);
    extra["wal_bytes"] = json!(mix_wal);
    report(
        "dest-postgres write, half inserts and half updates",
        records,
        mix,
        extra,
    );
    // The first file once more: nothing changed (a reconcile of an unchanged account).
    settle(&mut client);
    let ((same, _), same_wal) = with_wal(&mut client, || {
        run_write(&json!({"url": db.url(), "schema": "bench_first"}), &input)
    });
    let mut extra = ratios(same);
    extra["wal_bytes"] = json!(same_wal);
    report(
        "dest-postgres write, a re-sync of unchanged records",
        records,
        same,
        extra,
    );

    parallel_streams(&db, dir, records);

    let typed_defs: Vec<String> = typed
        .iter()
        .map(|f| {
            let t = match *f {
                "balance" | "created" => "bigint",
                "livemode" => "boolean",
                "metadata" => "jsonb",
                _ => "text",
            };
            format!("\"{f}\" {t}")
        })
        .collect();
    client
        .batch_execute(&format!(
            "CREATE TABLE bench.plain (id text PRIMARY KEY, _raw_data jsonb NOT NULL, _updated_at timestamptz, _deleted boolean NOT NULL DEFAULT false, _synced_at timestamptz NOT NULL DEFAULT now(), {})",
            typed_defs.join(", ")
        ))
        .unwrap();
    client.batch_execute("CREATE TABLE bench.generated_subset (id text PRIMARY KEY, _raw_data jsonb NOT NULL, _updated_at timestamptz, _deleted boolean NOT NULL DEFAULT false, _synced_at timestamptz NOT NULL DEFAULT now())").unwrap();
    let quoted: Vec<String> = typed.iter().map(|f| format!("\"{f}\"")).collect();
    let plain = raw_copy(
        &mut client,
        "bench.plain",
        &format!(
            "id, _raw_data, _updated_at, _deleted, {}",
            quoted.join(", ")
        ),
        plain_rows.as_bytes(),
    );
    report(
        "raw COPY, 7 typed columns written by the client",
        records,
        plain,
        json!({}),
    );
    for f in &typed {
        let t = match *f {
            "balance" | "created" => "CASE WHEN jsonb_typeof(_raw_data->'X') = 'number' THEN (_raw_data->'X')::bigint END",
            "livemode" => "CASE WHEN jsonb_typeof(_raw_data->'X') = 'boolean' THEN (_raw_data->'X')::boolean END",
            "metadata" => "NULLIF(_raw_data->'X', 'null'::jsonb)",
            _ => "(_raw_data->>'X')",
        }
        .replace('X', f);
        let ty = match *f {
            "balance" | "created" => "bigint",
            "livemode" => "boolean",
            "metadata" => "jsonb",
            _ => "text",
        };
        client.batch_execute(&format!("ALTER TABLE bench.generated_subset ADD COLUMN \"{f}\" {ty} GENERATED ALWAYS AS ({t}) STORED")).unwrap();
    }
    let generated = raw_copy(
        &mut client,
        "bench.generated_subset",
        "id, _raw_data, _updated_at, _deleted",
        generated_rows.as_bytes(),
    );
    report(
        "raw COPY, the same 7 typed columns generated",
        records,
        generated,
        json!({}),
    );
}

/// Five streams in one `write` (five connections, one per stream) against five raw COPYs of
/// the same rows on five connections at once.
fn parallel_streams(db: &TestDb, dir: &Path, records: usize) {
    let streams = ["s1", "s2", "s3", "s4", "s5"];
    let input = dir.join(format!("five-streams-{records}.ndjson"));
    write_records(&input, &streams, (0..records).map(|i| (i, 0)));
    let config = json!({"url": db.url(), "schema": "bench_five", "max_connections": 5, "connections_per_stream": 1});
    let catalog = catalog_of(&streams);
    let setup = Command::new(env!("CARGO_BIN_EXE_dest-postgres"))
        .args([
            "setup",
            "--config",
            &config.to_string(),
            "--catalog",
            &catalog.to_string(),
        ])
        .output()
        .unwrap();
    assert!(setup.status.success());
    let mut client = db.client();
    let mut per_stream: Vec<String> = vec![String::new(); streams.len()];
    for i in 0..records {
        let c = customer(i);
        let ts = chrono::DateTime::from_timestamp(c["_updated_at"].as_i64().unwrap(), 0)
            .unwrap()
            .to_rfc3339();
        per_stream[i % streams.len()].push_str(&format!(
            "{}\t{}\t{ts}\tf\n",
            c["id"].as_str().unwrap(),
            copy_text(&c.to_string())
        ));
    }
    for s in &streams {
        client
            .batch_execute(&format!(
                "CREATE TABLE bench_five.raw_{s} (LIKE bench_five.{s} INCLUDING ALL)"
            ))
            .unwrap();
    }
    let mut raw = Duration::MAX;
    for _ in 0..2 {
        for s in &streams {
            client
                .batch_execute(&format!("TRUNCATE bench_five.raw_{s}"))
                .unwrap();
        }
        settle(&mut client);
        let start = Instant::now();
        std::thread::scope(|scope| {
            for (s, rows) in streams.iter().zip(&per_stream) {
                let url = db.url().to_owned();
                scope.spawn(move || {
                    let mut c = Client::connect(&url, postgres::NoTls).unwrap();
                    raw_copy(
                        &mut c,
                        &format!("bench_five.raw_{s}"),
                        "id, _raw_data, _updated_at, _deleted",
                        rows.as_bytes(),
                    );
                });
            }
        });
        raw = raw.min(start.elapsed());
    }
    report(
        "raw COPY, five tables on five connections",
        records,
        raw,
        json!({}),
    );
    settle(&mut client);
    let (parallel, rss) = run_write_catalog(&config, &catalog, &input);
    report(
        "dest-postgres write, five streams",
        records,
        parallel,
        json!({"ratio_to_raw_copy": raw.as_secs_f64() / parallel.as_secs_f64(), "peak_rss_bytes": rss}),
    );
    let single = json!({"url": db.url(), "schema": "bench_five_single", "max_connections": 1, "connections_per_stream": 1});
    settle(&mut client);
    let (one, _) = run_write_catalog(&single, &catalog, &input);
    report(
        "dest-postgres write, five streams on one connection",
        records,
        one,
        json!({"ratio_to_raw_copy": raw.as_secs_f64() / one.as_secs_f64()}),
    );
}
