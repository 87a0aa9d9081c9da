//! The `--config` pipeline document: a JSON file, or inline JSON (its first character that is
//! not white space is `{`, as the reference implementation decides). Each side takes our shape,
//! `{"name": …, "config": {…}}`, or the reference's, whose config keys sit beside the name:
//! `{"name": "stripe", "api_key": …}`. Errors name the field and the document, never a value:
//! configs hold secrets.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};
use sync_connector::json_arg::json_or_file;

/// One side of the document: a connector name and its config.
#[derive(Debug, Default)]
pub(crate) struct FileSide {
    pub name: Option<String>,
    pub config: Map<String, Value>,
}

/// What the document gives.
#[derive(Debug, Default)]
pub(crate) struct ConfigFile {
    pub source: FileSide,
    pub destination: FileSide,
    pub streams: Option<Value>,
    pub state_file: Option<PathBuf>,
    pub sync_id: Option<String>,
    pub time_limit: Option<f64>,
    pub state_limit: Option<u64>,
}

const FIELDS: &str = "source, destination, streams, state_file, sync_id, time_limit, state_limit";

/// Reads `--config`: inline JSON or the file it names.
pub(crate) fn read(arg: &Path) -> Result<ConfigFile> {
    let inline = arg.to_str().filter(|t| t.trim_start().starts_with('{'));
    let (value, what) = match inline {
        Some(text) => (
            json_or_file("config", text).map_err(anyhow::Error::msg)?,
            "--config".to_owned(),
        ),
        None => {
            // `@path` too, as the reference implementation's help writes file arguments.
            let at_stripped = arg.to_str().and_then(|t| t.strip_prefix('@'));
            let arg = match at_stripped {
                Some(rest) if !arg.exists() => Path::new(rest),
                _ => arg,
            };
            let text = std::fs::read_to_string(arg)
                .with_context(|| format!("cannot read the config file {}", arg.display()))?;
            let value = serde_json::from_str(&text).map_err(|e| {
                anyhow::anyhow!(
                    "invalid config file {}: line {} column {}: not JSON",
                    arg.display(),
                    e.line(),
                    e.column()
                )
            })?;
            (value, format!("the config file {}", arg.display()))
        }
    };
    parse(value, &what)
}

fn parse(value: Value, what: &str) -> Result<ConfigFile> {
    let Value::Object(document) = value else {
        bail!("{what}: must be a JSON object");
    };
    let mut file = ConfigFile::default();
    for (key, value) in document {
        match key.as_str() {
            "source" | "destination" => {
                let side = side(value, &key, what)?;
                if key == "source" {
                    file.source = side;
                } else {
                    file.destination = side;
                }
            }
            "streams" => file.streams = Some(value),
            "state_file" => file.state_file = Some(PathBuf::from(text(value, &key, what)?)),
            "sync_id" => file.sync_id = Some(text(value, &key, what)?),
            "time_limit" => match value.as_f64() {
                Some(secs) => file.time_limit = Some(secs),
                None => bail!("{what}: time_limit must be a number of seconds"),
            },
            "state_limit" => match value.as_u64() {
                Some(n) => file.state_limit = Some(n),
                None => bail!("{what}: state_limit must be a whole number of states"),
            },
            _ => bail!("{what}: unknown field {key:?} (expected one of: {FIELDS})"),
        }
    }
    Ok(file)
}

fn text(value: Value, key: &str, what: &str) -> Result<String> {
    match value {
        Value::String(s) => Ok(s),
        _ => bail!("{what}: {key} must be a string"),
    }
}

/// A side in either shape; a key both in `config` and beside the name is refused.
fn side(value: Value, key: &str, what: &str) -> Result<FileSide> {
    let Value::Object(fields) = value else {
        bail!("{what}: {key} must be an object");
    };
    let mut side = FileSide::default();
    let mut beside = Map::new();
    for (field, value) in fields {
        match field.as_str() {
            "name" => side.name = Some(text(value, &format!("{key}.name"), what)?),
            "config" => match value {
                Value::Object(config) => side.config = config,
                _ => bail!("{what}: {key}.config must be an object"),
            },
            _ => {
                beside.insert(field, value);
            }
        }
    }
    for (field, value) in beside {
        if side.config.contains_key(&field) {
            bail!(
                "{what}: {key} {field:?} is given both in {key}.config and beside {key}.name; give it once"
            );
        }
        side.config.insert(field, value);
    }
    Ok(side)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_shapes_give_the_same_sides() {
        let ours = parse(
            json!({"source": {"name": "stripe", "config": {"api_key": "k"}}, "streams": ["a"]}),
            "t",
        )
        .unwrap();
        let theirs = parse(
            json!({"source": {"name": "stripe", "api_key": "k"}, "streams": ["a"]}),
            "t",
        )
        .unwrap();
        assert_eq!(ours.source.name, theirs.source.name);
        assert_eq!(ours.source.config, theirs.source.config);
        assert_eq!(ours.streams, theirs.streams);
    }

    #[test]
    fn errors_name_the_field_and_never_a_value() {
        for (document, field) in [
            (json!({"sorce": {}}), "sorce"),
            (json!({"source": "sk_live_x"}), "source must be an object"),
            (json!({"source": {"config": "sk_live_x"}}), "source.config"),
            (json!({"sync_id": 5}), "sync_id"),
            (json!({"time_limit": "sk_live_x"}), "time_limit"),
            (
                json!({"source": {"api_key": "sk_live_x", "config": {"api_key": "sk_live_y"}}}),
                "\"api_key\" is given both",
            ),
        ] {
            let e = parse(document, "--config").unwrap_err().to_string();
            assert!(e.starts_with("--config: ") && e.contains(field), "{e}");
            assert!(!e.contains("sk_live"), "{e}");
        }
    }
}
