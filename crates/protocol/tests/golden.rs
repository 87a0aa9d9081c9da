//! Golden shapes: every example message of both dialects parses and re-serialises to the same
//! JSON, and translation between the dialects keeps every field they share.

use serde_json::{Value, json};
use sync_protocol::Role;
use sync_protocol::airbyte::{self, AirbyteMessage};
use sync_protocol::framing::NdjsonReader;
use sync_protocol::{
    Catalog, ConnectionStatus, Control, LogLevel, Message, MessageType, Record, SourceState,
    SourceStateSet, Spec, Stream, StreamStatus, StreamStatusKind, SyncState,
};

const NATIVE: &str = include_str!("golden/native.ndjson");
const AIRBYTE: &str = include_str!("golden/airbyte.ndjson");

fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|l| !l.trim().is_empty())
}

#[test]
fn native_examples_round_trip_exactly() {
    let mut seen = std::collections::HashSet::new();
    for line in lines(NATIVE) {
        let message = Message::from_str_line(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        seen.insert(message.message_type());
        let again: Value = serde_json::from_str(&message.to_line()).unwrap();
        let original: Value = serde_json::from_str(line).unwrap();
        assert_eq!(again, original, "re-serialised form differs for {line}");
        // The generic serde path agrees with the line parser.
        let via_serde: Message = serde_json::from_str(line).unwrap();
        assert_eq!(via_serde, message);
    }
    for ty in MessageType::ALL {
        assert!(seen.contains(&ty), "no golden example of {ty}");
    }
}

#[test]
fn airbyte_examples_round_trip_exactly() {
    for line in lines(AIRBYTE) {
        let message =
            AirbyteMessage::from_slice(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"));
        let again: Value = serde_json::from_str(&message.to_line()).unwrap();
        let original: Value = serde_json::from_str(line).unwrap();
        assert_eq!(again, original, "re-serialised form differs for {line}");
        assert!(airbyte::is_airbyte_line(line.as_bytes()));
    }
    for line in lines(NATIVE) {
        assert!(
            !airbyte::is_airbyte_line(line.as_bytes()),
            "native line taken for Airbyte: {line}"
        );
    }
}

#[test]
fn airbyte_spellings_are_exact() {
    let status = airbyte::to_airbyte(&Message::ConnectionStatus(ConnectionStatus::failed(
        "x", None,
    )))
    .unwrap();
    assert_eq!(
        serde_json::to_value(&status).unwrap(),
        json!({"type":"CONNECTION_STATUS","connectionStatus":{"status":"FAILED","message":"x"}})
    );

    let spec = airbyte::to_airbyte(&Message::Spec(Spec::new(json!({"type":"object"})))).unwrap();
    assert_eq!(
        serde_json::to_value(&spec).unwrap(),
        json!({"type":"SPEC","spec":{"connectionSpecification":{"type":"object"}}})
    );

    let state = SourceState::stream("customers", json!({"c":1})).with_committed(100);
    let line = airbyte::to_airbyte(&Message::SourceState(state))
        .unwrap()
        .to_line();
    assert!(
        line.contains(r#""destinationStats":{"recordCount":100.0}"#),
        "{line}"
    );
    assert!(line.contains(r#""type":"STREAM""#), "{line}");

    let record = Record {
        emitted_at: Some("2023-11-14T22:13:20.000Z".into()),
        ..Record::new("c", json!({}))
    };
    let line = airbyte::to_airbyte(&Message::Record(record))
        .unwrap()
        .to_line();
    assert!(line.contains(r#""emitted_at":1700000000000"#), "{line}");
}

/// Native → Airbyte → native keeps every shared field.
#[test]
fn native_to_airbyte_and_back_keeps_shared_fields() {
    let mut stream = Stream::new("customers");
    stream.primary_key = vec![vec!["id".into()], vec!["_account_id".into()]];
    stream.newer_than_field = Some("_updated_at".into());
    stream.json_schema = Some(json!({"type":"object","properties":{"id":{"type":"string"}}}));
    stream.metadata = Some(json!({"resource_name":"customers"}));
    let mut log = sync_protocol::Log::new(LogLevel::Warn, "careful");
    log.data = Some(json!({"k":"v"}));
    let mut record = Record::new("customers", json!({"id":"cus_1","n":[1,2]}));
    record.emitted_at = Some("2026-04-20T12:00:00.123Z".into());
    let cases = vec![
        Message::Record(record),
        Message::SourceState(
            SourceState::stream("customers", json!({"cursor":"cus_1"})).with_committed(7),
        ),
        Message::SourceState(SourceState::global(json!({"events_cursor":5})).with_committed(3)),
        Message::Catalog(Catalog {
            streams: vec![stream],
            ..Default::default()
        }),
        Message::Spec(Spec::new(json!({"type":"object","required":["api_key"]}))),
        Message::ConnectionStatus(ConnectionStatus::succeeded()),
        Message::ConnectionStatus(ConnectionStatus::failed("nope", None)),
        Message::Log(log),
        Message::StreamStatus(StreamStatus::new(
            "customers",
            StreamStatusKind::Start { time_range: None },
        )),
        Message::StreamStatus(StreamStatus::new(
            "customers",
            StreamStatusKind::Complete {},
        )),
        Message::StreamStatus(StreamStatus::new(
            "customers",
            StreamStatusKind::Error {
                error: "bad".into(),
            },
        )),
        Message::Control(Control::SourceConfig(json!({"api_key":"k"}))),
    ];
    for original in cases {
        let translated = airbyte::to_airbyte(&original).unwrap();
        // Through the wire form, to prove the Airbyte text carries the fields.
        let reparsed = AirbyteMessage::from_slice(translated.to_line().as_bytes()).unwrap();
        let back = airbyte::from_airbyte(reparsed, Role::Source);
        assert_eq!(
            back,
            vec![original.clone()],
            "round trip changed {original:?}"
        );
    }
}

/// Airbyte → native → Airbyte keeps every shared field.
#[test]
fn airbyte_to_native_and_back_keeps_shared_fields() {
    for line in lines(AIRBYTE) {
        let original = AirbyteMessage::from_slice(line.as_bytes()).unwrap();
        let natives = airbyte::from_airbyte(original.clone(), Role::Source);
        match &original {
            AirbyteMessage::Record(r) => {
                let AirbyteMessage::Record(back) = airbyte::to_airbyte(&natives[0]).unwrap() else {
                    panic!()
                };
                assert_eq!(
                    (&back.stream, &back.namespace, &back.data, back.emitted_at),
                    (&r.stream, &r.namespace, &r.data, r.emitted_at)
                );
                assert_eq!(back.meta, r.meta);
            }
            AirbyteMessage::State(s) => {
                let mut set = SourceStateSet::default();
                for m in &natives {
                    let Message::SourceState(st) = m else {
                        panic!()
                    };
                    set.apply(st);
                }
                match s.effective_type() {
                    airbyte::AirbyteStateType::Stream => {
                        let AirbyteMessage::State(back) = airbyte::to_airbyte(&natives[0]).unwrap()
                        else {
                            panic!()
                        };
                        assert_eq!(
                            back.stream.as_ref().unwrap().stream_descriptor.name,
                            s.stream.as_ref().unwrap().stream_descriptor.name
                        );
                        assert_eq!(
                            back.stream.as_ref().unwrap().stream_state,
                            s.stream.as_ref().unwrap().stream_state
                        );
                        assert_eq!(back.destination_stats, s.destination_stats);
                    }
                    airbyte::AirbyteStateType::Global => {
                        let input = airbyte::state_to_airbyte_input(&set);
                        assert_eq!(input.len(), 1);
                        assert_eq!(
                            input[0].global.as_ref().unwrap().shared_state,
                            s.global.as_ref().unwrap().shared_state
                        );
                        assert_eq!(
                            input[0].global.as_ref().unwrap().stream_states,
                            s.global.as_ref().unwrap().stream_states
                        );
                    }
                    airbyte::AirbyteStateType::Legacy => {
                        assert_eq!(&set.global, s.data.as_ref().unwrap())
                    }
                }
            }
            AirbyteMessage::Log(l) => {
                let Message::Log(native) = &natives[0] else {
                    panic!()
                };
                assert!(native.message.starts_with(&l.message));
            }
            AirbyteMessage::Spec(s) => {
                let AirbyteMessage::Spec(back) = airbyte::to_airbyte(&natives[0]).unwrap() else {
                    panic!()
                };
                assert_eq!(back.connection_specification, s.connection_specification);
                assert_eq!(back.extra, s.extra);
            }
            AirbyteMessage::ConnectionStatus(c) => {
                assert_eq!(
                    airbyte::to_airbyte(&natives[0]).unwrap(),
                    AirbyteMessage::ConnectionStatus(c.clone())
                );
            }
            AirbyteMessage::Catalog(c) => {
                let AirbyteMessage::Catalog(back) = airbyte::to_airbyte(&natives[0]).unwrap()
                else {
                    panic!()
                };
                let (a, b) = (&back.streams[0], &c.streams[0]);
                assert_eq!(
                    (
                        &a.name,
                        &a.json_schema,
                        &a.source_defined_primary_key,
                        &a.default_cursor_field
                    ),
                    (
                        &b.name,
                        &b.json_schema,
                        &b.source_defined_primary_key,
                        &b.default_cursor_field
                    )
                );
                assert_eq!(a.supported_sync_modes, b.supported_sync_modes);
            }
            AirbyteMessage::Trace(t) => match t.trace_type {
                airbyte::AirbyteTraceType::Error => {
                    let Message::StreamStatus(s) = &natives[0] else {
                        panic!("{natives:?}")
                    };
                    assert_eq!(s.stream, "customers");
                    assert!(
                        matches!(&s.kind, StreamStatusKind::Error { error } if error.contains("user-facing"))
                    );
                }
                airbyte::AirbyteTraceType::StreamStatus => {
                    assert!(natives.is_empty(), "RUNNING has no native form")
                }
                _ => assert!(matches!(natives[0], Message::Log(_))),
            },
            AirbyteMessage::Control(c) => {
                assert_eq!(
                    natives,
                    vec![Message::Control(Control::SourceConfig(
                        c.connector_config.clone().unwrap().config
                    ))]
                );
            }
            AirbyteMessage::DestinationCatalog(_) => assert!(natives.is_empty()),
        }
    }
}

#[test]
fn state_without_state_type_is_a_stream_state() {
    let m = Message::from_str_line(
        r#"{"type":"source_state","source_state":{"stream":"orders","data":{"cursor":1}}}"#,
    )
    .unwrap();
    assert_eq!(
        m,
        Message::SourceState(SourceState::stream("orders", json!({"cursor":1})))
    );
    let m = Message::from_str_line(r#"{"type":"source_state","source_state":{"state_type":"global","data":{"events_cursor":"evt_1"}}}"#).unwrap();
    assert_eq!(
        m,
        Message::SourceState(SourceState::global(json!({"events_cursor":"evt_1"})))
    );
}

#[test]
fn unknown_fields_are_kept() {
    let line = r#"{"type":"record","record":{"stream":"s","data":{},"emitted_at":"2026-01-01T00:00:00.000Z","future":{"x":1}},"_ts":"ignored"}"#;
    let m = Message::from_str_line(line).unwrap();
    assert!(m.to_line().contains(r#""future":{"x":1}"#));
    let line = r#"{"type":"stream_status","stream_status":{"stream":"s","status":"complete"}}"#;
    assert!(Message::from_str_line(line).is_ok());
}

#[test]
fn malformed_input_is_reported_with_line_numbers() {
    let input = concat!(
        r#"{"type":"log","log":{"level":"info","message":"ok"}}"#,
        "\n",
        "{not json\n",
        "\n",
        r#"{"type":"bogus","bogus":{}}"#,
        "\n",
        r#"{"type":"record","record":{"data":{}}}"#,
        "\n",
        r#"{"type":"control","control":{"control_type":"unknown"}}"#,
        "\n",
        r#"{"type":"source_state"}"#,
        "\n",
        "[1,2,3]\n",
        r#"{"type":"log","log":{"level":"info","message":"0123456789012345678901234567890123456789012345678901234567890123456789"}}"#,
        "\n",
        r#"{"type":"stream_status","stream_status":{"stream":"s","status":"paused"}}"#,
        "\n",
    );
    let reader = NdjsonReader::with_max_line_bytes(input.as_bytes(), 80);
    let results: Vec<_> = reader.collect();
    assert_eq!(results.len(), 9);
    assert!(results[0].is_ok());
    let errors: Vec<String> = results[1..]
        .iter()
        .map(|r| r.as_ref().unwrap_err().to_string())
        .collect();
    assert!(
        errors[0].starts_with("line 2: invalid JSON"),
        "{}",
        errors[0]
    );
    assert_eq!(errors[1], r#"line 4: unknown message type "bogus""#);
    assert!(results[2].as_ref().unwrap_err().is_unknown_type());
    assert!(
        errors[2].starts_with("line 5: invalid record payload: missing field `stream`"),
        "{}",
        errors[2]
    );
    assert!(
        errors[3].starts_with("line 6: invalid control payload: unknown variant `unknown`"),
        "{}",
        errors[3]
    );
    assert!(
        errors[4]
            .starts_with(r#"line 7: message of type "source_state" has no "source_state" payload"#),
        "{}",
        errors[4]
    );
    assert!(
        errors[5].starts_with("line 8: invalid JSON"),
        "{}",
        errors[5]
    );
    assert_eq!(errors[6], "line 9: longer than the 80-byte limit");
    assert!(
        errors[7].starts_with("line 10: invalid stream_status payload"),
        "{}",
        errors[7]
    );
    for (i, r) in results.iter().enumerate().skip(1) {
        assert!(r.as_ref().unwrap_err().line() >= 2, "result {i}");
    }
}

#[test]
fn sync_state_reduces() {
    let states = [
        SourceState::stream("a", json!({"v":1})),
        SourceState::global(json!({"events_cursor":10})),
        SourceState::stream("b", json!({"v":1})),
        SourceState::stream("a", json!({"v":2})),
        SourceState::global(json!({"events_cursor":20})),
    ];
    let state = SyncState::default().reduce(&states);
    assert_eq!(state.source.streams["a"], json!({"v":2}));
    assert_eq!(state.source.streams["b"], json!({"v":1}));
    assert_eq!(state.source.global, json!({"events_cursor":20}));

    // The ending state of one run is the next run's input.
    let text = serde_json::to_string(&state).unwrap();
    let parsed: SyncState = serde_json::from_str(&text).unwrap();
    assert_eq!(parsed, state);
}

#[test]
fn state_flag_accepts_every_documented_form() {
    let set = SourceStateSet::from_value_lenient(json!({"streams":{"a":{"v":1}},"global":{"g":1}}))
        .unwrap();
    assert_eq!(set.streams["a"], json!({"v":1}));
    let legacy = SourceStateSet::from_value_lenient(json!({"customers":{"cursor":"x"}})).unwrap();
    assert_eq!(legacy.streams["customers"], json!({"cursor":"x"}));
    assert_eq!(legacy.global, json!({}));
    let whole = SourceStateSet::from_value_lenient(
        json!({"source":{"streams":{"a":1},"global":{}},"destination":{},"sync_run":{}}),
    )
    .unwrap();
    assert_eq!(whole.streams["a"], json!(1));
}

#[test]
fn configured_catalog_accepts_bare_streams() {
    let c: sync_protocol::ConfiguredCatalog =
        serde_json::from_value(json!({"streams":[{"name":"customers","primary_key":[["id"]]}]}))
            .unwrap();
    assert_eq!(c.streams[0].stream.name, "customers");
    let c: sync_protocol::ConfiguredCatalog = serde_json::from_value(json!({"streams":[{"stream":{"name":"x"},"sync_mode":"incremental","destination_sync_mode":"append"}]})).unwrap();
    assert_eq!(c.streams[0].sync_mode, sync_protocol::SyncMode::Incremental);
    let err = serde_json::from_value::<sync_protocol::ConfiguredCatalog>(
        json!({"streams":[{"primary_key":[]}]}),
    )
    .unwrap_err();
    assert!(err.to_string().contains("streams[0]"), "{err}");
}

#[test]
fn unknown_payload_fields_are_kept_except_in_stream_status_and_control() {
    let kept = r#"{"type":"record","record":{"stream":"a","data":{},"x":1}}"#;
    assert!(
        Message::from_str_line(kept)
            .unwrap()
            .to_line()
            .contains(r#""x":1"#)
    );
    for dropped in [
        r#"{"type":"stream_status","stream_status":{"stream":"a","status":"complete","x":1}}"#,
        r#"{"type":"control","control":{"control_type":"source_config","source_config":{},"x":1}}"#,
    ] {
        let line = Message::from_str_line(dropped).unwrap().to_line();
        assert!(!line.contains(r#""x""#), "{line}");
    }
}
