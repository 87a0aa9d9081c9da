//! Parsing and forwarding speed of the protocol crate, on realistic customer records.
//!
//! Prints one JSON object per measurement on stdout (`scripts/bench` renders them as a table).
//! `cargo bench -p sync-protocol --bench framing -- [RECORDS]`

use std::hint::black_box;
use std::io::{self, BufReader};
use std::time::Instant;

use serde_json::json;
use sync_protocol::framing::{MessageWriter, NdjsonReader};
use sync_protocol::peek::{self, Peeked};
use sync_protocol::{Message, Record, SourceState};

fn customer(i: usize) -> serde_json::Value {
    test_support::fixtures::customer_version(i, 0)
}

fn input(records: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut writer = MessageWriter::new(&mut out);
    for i in 0..records {
        writer
            .write(&Message::Record(Record::new("customers", customer(i))))
            .unwrap();
        if i % 100 == 99 {
            writer
                .write(&Message::SourceState(SourceState::stream(
                    "customers",
                    json!({"cursor": i}),
                )))
                .unwrap();
        }
    }
    drop(writer);
    out
}

fn report(name: &str, records: usize, bytes: usize, seconds: f64) {
    println!(
        "{}",
        json!({
            "bench": name,
            "records": records,
            "bytes": bytes,
            "seconds": seconds,
            "records_per_second": records as f64 / seconds,
            "mb_per_second": bytes as f64 / 1e6 / seconds,
        })
    );
}

fn measure(name: &str, records: usize, bytes: usize, mut f: impl FnMut()) {
    f(); // warm-up
    let rounds = 3;
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let start = Instant::now();
        f();
        best = best.min(start.elapsed().as_secs_f64());
    }
    report(name, records, bytes, best);
}

fn main() {
    let records: usize = test_support::measure::count_from_args(100_000);
    let data = input(records);
    let bytes = data.len();

    measure("frame lines", records, bytes, || {
        let mut reader = NdjsonReader::new(BufReader::new(&data[..]));
        let mut n = 0usize;
        while let Some(line) = reader.next_line() {
            n += line.unwrap().1.len();
        }
        black_box(n);
    });

    measure("parse full messages", records, bytes, || {
        let mut n = 0usize;
        for message in NdjsonReader::new(BufReader::new(&data[..])) {
            if let Message::Record(r) = message.unwrap() {
                n += r.stream.len();
            }
        }
        black_box(n);
    });

    measure("peek type and stream", records, bytes, || {
        let mut reader = NdjsonReader::new(BufReader::new(&data[..]));
        let mut n = 0usize;
        while let Some(line) = reader.next_line() {
            if let Peeked::Record(r) = peek::peek(line.unwrap().1).unwrap() {
                n += r.stream.len();
            }
        }
        black_box(n);
    });

    measure("forward (peek + write line)", records, bytes, || {
        let mut reader = NdjsonReader::new(BufReader::new(&data[..]));
        let mut writer = MessageWriter::new(io::sink());
        while let Some(line) = reader.next_line() {
            let (_, bytes) = line.unwrap();
            let is_record = matches!(peek::peek(bytes).unwrap(), Peeked::Record(_));
            writer.write_line(bytes, !is_record).unwrap();
        }
        writer.flush().unwrap();
    });

    let messages: Vec<Message> = NdjsonReader::new(BufReader::new(&data[..]))
        .map(Result::unwrap)
        .collect();
    measure("serialise messages", records, bytes, || {
        let mut writer = MessageWriter::new(io::sink());
        for m in &messages {
            writer.write(m).unwrap();
        }
        writer.flush().unwrap();
    });
}
