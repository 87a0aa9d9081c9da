//! The pipeline to run, from a config file, the environment and flags. Precedence: flags, then
//! environment, then the config file, then defaults; configs are merged key by key.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::{Map, Value};
use sync_connector::json_arg::json_or_file;

use crate::cli::PipelineArgs;

pub const DEFAULT_SOURCE: &str = "stripe";
pub const DEFAULT_DESTINATION: &str = "postgres";

/// One side of the pipeline: a connector name and its config.
#[derive(Debug, Clone)]
pub struct Side {
    pub name: String,
    pub config: Map<String, Value>,
}

/// A stream the user selected, with its options.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamChoice {
    pub name: String,
    pub backfill_limit: Option<u64>,
    pub fields: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct Pipeline {
    pub source: Side,
    pub destination: Side,
    /// `None`: every stream the source offers.
    pub streams: Option<Vec<StreamChoice>>,
    pub state_file: Option<PathBuf>,
    pub sync_id: Option<String>,
    pub time_limit: Option<f64>,
    pub state_limit: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSide {
    name: Option<String>,
    #[serde(default)]
    config: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum FileStream {
    Name(String),
    Options {
        name: String,
        backfill_limit: Option<u64>,
        fields: Option<Vec<String>>,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    source: FileSide,
    #[serde(default)]
    destination: FileSide,
    streams: Option<Vec<FileStream>>,
    state_file: Option<PathBuf>,
    sync_id: Option<String>,
    time_limit: Option<f64>,
    state_limit: Option<u64>,
}

fn read_file(path: &Path) -> Result<ConfigFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("invalid config file {}: {e}", path.display()))
}

fn object(flag: &str, text: &str) -> Result<Map<String, Value>> {
    match json_or_file(flag, text).map_err(anyhow::Error::msg)? {
        Value::Object(map) => Ok(map),
        _ => bail!("--{flag} must be a JSON object"),
    }
}

fn set(config: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        config.insert(key.to_owned(), v);
    }
}

/// Builds the pipeline from a config file, the environment (through clap) and flags.
pub fn pipeline(args: &PipelineArgs) -> Result<Pipeline> {
    let file = match &args.config {
        Some(path) => read_file(path)?,
        None => ConfigFile::default(),
    };
    let source_name = args
        .source
        .clone()
        .or(file.source.name)
        .unwrap_or_else(|| DEFAULT_SOURCE.to_owned());
    let destination_name = args
        .destination
        .clone()
        .or(file.destination.name)
        .unwrap_or_else(|| DEFAULT_DESTINATION.to_owned());
    let mut source = file.source.config;
    let mut destination = file.destination.config;
    if let Some(text) = &args.source_config {
        source.extend(object("source-config", text)?);
    }
    if let Some(text) = &args.destination_config {
        destination.extend(object("destination-config", text)?);
    }
    if source_name == "stripe" {
        set(
            &mut source,
            "api_key",
            args.stripe_api_key.clone().map(Value::String),
        );
        set(
            &mut source,
            "base_url",
            args.stripe_base_url.clone().map(Value::String),
        );
        set(
            &mut source,
            "backfill_limit",
            args.backfill_limit.map(Value::from),
        );
        if !source.contains_key("api_key") {
            bail!(
                "missing the Stripe API key: pass --stripe-api-key, set STRIPE_API_KEY, or give source.config.api_key in --config"
            );
        }
    }
    if destination_name == "postgres" {
        set(
            &mut destination,
            "url",
            args.postgres_url.clone().map(Value::String),
        );
        set(
            &mut destination,
            "schema",
            args.schema.clone().map(Value::String),
        );
        if !destination.contains_key("url") {
            bail!(
                "missing the Postgres URL: pass --postgres-url, set DATABASE_URL, or give destination.config.url in --config"
            );
        }
    }
    let streams = match &args.streams {
        Some(names) => Some(
            names
                .iter()
                .filter(|n| !n.trim().is_empty())
                .map(|n| StreamChoice {
                    name: n.trim().to_owned(),
                    backfill_limit: None,
                    fields: None,
                })
                .collect(),
        ),
        None => file.streams.map(|list| {
            list.into_iter()
                .map(|s| match s {
                    FileStream::Name(name) => StreamChoice {
                        name,
                        backfill_limit: None,
                        fields: None,
                    },
                    FileStream::Options {
                        name,
                        backfill_limit,
                        fields,
                    } => StreamChoice {
                        name,
                        backfill_limit,
                        fields,
                    },
                })
                .collect()
        }),
    };
    Ok(Pipeline {
        source: Side {
            name: source_name,
            config: source,
        },
        destination: Side {
            name: destination_name,
            config: destination,
        },
        streams,
        state_file: file.state_file,
        sync_id: file.sync_id,
        time_limit: file.time_limit,
        state_limit: file.state_limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::ResolverArgs;

    fn args() -> PipelineArgs {
        PipelineArgs {
            config: None,
            source: None,
            source_config: None,
            destination: None,
            destination_config: None,
            stripe_api_key: None,
            stripe_base_url: None,
            postgres_url: None,
            schema: None,
            streams: None,
            backfill_limit: None,
            resolver: ResolverArgs {
                connectors_from_command_map: None,
                no_connectors_from_path: false,
                connectors_from_registry: false,
            },
        }
    }

    #[test]
    fn flags_beat_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync.json");
        std::fs::write(
            &path,
            r#"{"source":{"config":{"api_key":"sk_test_file","rate_limit":5}},"destination":{"config":{"url":"postgres://file/db","schema":"from_file"}},"streams":["customers",{"name":"invoices","backfill_limit":3}]}"#,
        )
        .unwrap();
        let mut a = args();
        a.config = Some(path);
        a.stripe_api_key = Some("sk_test_flag".into());
        a.schema = Some("from_flag".into());
        let p = pipeline(&a).unwrap();
        assert_eq!(p.source.config["api_key"], "sk_test_flag");
        assert_eq!(
            p.source.config["rate_limit"], 5,
            "keys the flags do not set stay"
        );
        assert_eq!(p.destination.config["url"], "postgres://file/db");
        assert_eq!(p.destination.config["schema"], "from_flag");
        let streams = p.streams.unwrap();
        assert_eq!(
            streams[1],
            StreamChoice {
                name: "invoices".into(),
                backfill_limit: Some(3),
                fields: None
            }
        );
    }

    #[test]
    fn missing_key_and_url_are_explained() {
        let err = pipeline(&args()).unwrap_err().to_string();
        assert!(
            err.contains("--stripe-api-key") && err.contains("STRIPE_API_KEY"),
            "{err}"
        );
        let mut a = args();
        a.stripe_api_key = Some("sk_test_x".into());
        let err = pipeline(&a).unwrap_err().to_string();
        assert!(
            err.contains("--postgres-url") && err.contains("DATABASE_URL"),
            "{err}"
        );
        a.source = Some("other".into());
        a.destination = Some("elsewhere".into());
        assert!(
            pipeline(&a).is_ok(),
            "other connectors need no Stripe key or Postgres URL"
        );
    }
}
