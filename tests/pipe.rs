//! Connectors joined by a plain shell pipe, as a user would run them.

use std::process::Command;

use test_support::{bin_path, lines_of};

#[test]
fn source_piped_into_destination_acknowledges_every_state() {
    let example = bin_path("example-connector");
    let catalog = r#"{"streams":[{"name":"a"},{"name":"b"}]}"#;
    let script = format!(
        "'{bin}' read --config '{{\"streams\":[\"a\",\"b\"],\"records\":1000,\"state_every\":100}}' --catalog '{catalog}' \
         | '{bin}' write --config '{{}}' --catalog '{catalog}'",
        bin = example.display()
    );
    let out = test_support::succeed(
        Command::new("bash")
            .arg("-o")
            .arg("pipefail")
            .arg("-c")
            .arg(&script),
    );
    let states: Vec<_> = lines_of(&String::from_utf8_lossy(&out.stdout))
        .into_iter()
        .filter(|m| m["type"] == "source_state")
        .collect();
    assert_eq!(states.len(), 20);
    let committed: u64 = states
        .iter()
        .map(|s| {
            s["source_state"]["destination_stats"]["committed"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(
        committed, 2000,
        "every record is accounted for by exactly one state"
    );
}
