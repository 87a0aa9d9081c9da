//! The pipeline to run, from a config file, flags and the environment.
//!
//! The rule: what the user wrote explicitly (the `--config` file, `--source-config` and
//! `--destination-config`, the shortcut flags) always beats the environment, which only fills
//! what nothing explicit gives. Two explicit sources giving one setting different values is an
//! error that names both (never which value won); equal values agree. Configs are merged key by
//! key under that rule. Of two environment variables for one setting (`DATABASE_URL` and
//! `POSTGRES_URL`), either fills it; both set to different values is an error naming both.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Result, bail};
use serde_json::{Map, Value};
use sync_connector::json_arg::json_or_file;

use crate::args::PipelineArgs;
use crate::builtin::{self, SHORTCUTS};
use crate::pipeline_file::ConfigFile;
use sync_engine_api::ConnectorConfig;
pub use sync_engine_api::StreamChoice;

/// A pipeline as the CLI gives it: both sides, the streams, and the checkpoint settings.
#[derive(Debug, Clone)]
pub struct PipelineSettings {
    /// Where records come from.
    pub source: ConnectorConfig,
    /// Where they go.
    pub destination: ConnectorConfig,
    /// `None`: every stream the source offers.
    pub streams: Option<Vec<StreamChoice>>,
    /// Keep the checkpoint in this file.
    pub state_file: Option<PathBuf>,
    /// The checkpoint's key.
    pub sync_id: Option<String>,
    /// Stop gracefully after this many seconds.
    pub time_limit: Option<f64>,
    /// Stop gracefully after this many source states.
    pub state_limit: Option<u64>,
}

fn object(flag: &str, text: &str) -> Result<Map<String, Value>> {
    match json_or_file(flag, text).map_err(anyhow::Error::msg)? {
        Value::Object(map) => Ok(map),
        _ => bail!("--{flag} must be a JSON object"),
    }
}

/// Explicit values of one config, each with where it came from.
#[derive(Default)]
struct Layers {
    values: BTreeMap<String, (Value, String)>,
}

impl Layers {
    /// Adds an explicit value; a different value already given for the key is an error
    /// naming both places (values are never shown: they may be secrets).
    fn add(&mut self, side: &str, key: &str, value: Value, from: String) -> Result<()> {
        match self.values.get(key) {
            Some((existing, first)) if *existing != value => bail!(
                "{side} {key:?} is given twice with different values, by {first} and by {from}; give it once"
            ),
            Some(_) => Ok(()),
            None => {
                self.values.insert(key.to_owned(), (value, from));
                Ok(())
            }
        }
    }

    fn add_all(&mut self, side: &str, config: Map<String, Value>, from: &str) -> Result<()> {
        for (key, value) in config {
            self.add(side, &key, value, format!("{from}'s {key:?}"))?;
        }
        Ok(())
    }

    fn into_config(self) -> Map<String, Value> {
        self.values.into_iter().map(|(k, (v, _))| (k, v)).collect()
    }
}

/// Builds one side's config: the file's, the JSON flag's, the shortcut flags', then the
/// environment for keys still missing.
fn side_config(
    side: &str,
    connector: &str,
    file_config: Map<String, Value>,
    json_flag: Option<(&str, &str)>,
    args: &PipelineArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Map<String, Value>> {
    let mut layers = Layers::default();
    layers.add_all(side, file_config, &format!("--config's {side}.config"))?;
    if let Some((flag, text)) = json_flag {
        layers.add_all(side, object(flag, text)?, &format!("--{flag}"))?;
    }
    for shortcut in SHORTCUTS.iter().filter(|s| s.connector == connector) {
        if let Some(value) = shortcut_value(args, shortcut.flag) {
            layers.add(side, shortcut.key, value, shortcut.flag.to_owned())?;
        }
    }
    let mut config = layers.into_config();
    for shortcut in SHORTCUTS.iter().filter(|s| s.connector == connector) {
        if !builtin::gives(connector, &config, shortcut.key)
            && let Some(value) = from_environment(shortcut.env, env)?
        {
            config.insert(shortcut.key.to_owned(), Value::String(value));
        }
    }
    if let Some((key, hint)) = builtin::required_key(connector)
        && !builtin::gives(connector, &config, key)
    {
        bail!("{hint}");
    }
    Ok(config)
}

/// The value the environment gives a setting; two of its variables set to different values
/// is an error naming both (never the values: they may be secrets).
fn from_environment(vars: &[&str], env: &dyn Fn(&str) -> Option<String>) -> Result<Option<String>> {
    let mut found: Option<(&str, String)> = None;
    for var in vars {
        let Some(value) = env(var).filter(|v| !v.is_empty()) else {
            continue;
        };
        match &found {
            Some((first, seen)) if *seen != value => bail!(
                "{first} and {var} are both set, to different values; unset one, or pass the setting explicitly"
            ),
            Some(_) => {}
            None => found = Some((var, value)),
        }
    }
    Ok(found.map(|(_, value)| value))
}

fn shortcut_value(args: &PipelineArgs, flag: &str) -> Option<Value> {
    match flag {
        "--stripe-rate-limit" => args.stripe_rate_limit.map(Value::from),
        "--stripe-api-key" => args.stripe_api_key.clone().map(Value::String),
        "--stripe-base-url" => args.stripe_base_url.clone().map(Value::String),
        "--backfill-limit" => args.backfill_limit.map(Value::from),
        "--postgres-url" => args.postgres_url.clone().map(Value::String),
        "--schema" => args.schema.clone().map(Value::String),
        _ => None,
    }
}

/// A setting given by a flag or the config file; both, differently, is an error.
pub fn one_of<T: PartialEq>(what: &str, flag: Option<T>, file: Option<T>) -> Result<Option<T>> {
    match (flag, file) {
        (Some(a), Some(b)) if a != b => bail!(
            "{what} is given twice with different values, by --{what} and by --config's {}; give it once",
            what.replace('-', "_")
        ),
        (Some(a), _) => Ok(Some(a)),
        (None, b) => Ok(b),
    }
}

/// The config file's limits, checked as the flags are.
fn limits_of(file: &ConfigFile) -> Result<()> {
    if file
        .time_limit
        .is_some_and(|secs| !sync_engine_api::is_time_limit(secs))
    {
        bail!(
            "the config file's time_limit: must be a number of seconds above 0 and at most {}",
            sync_engine_api::MAX_TIME_LIMIT_SECS
        );
    }
    if file.state_limit == Some(0) {
        bail!("the config file's state_limit: must be at least 1");
    }
    Ok(())
}

/// Builds the pipeline from a config file, flags and the process environment.
pub fn pipeline(args: &PipelineArgs) -> Result<PipelineSettings> {
    pipeline_with_env(args, &|var| std::env::var(var).ok())
}

/// [`pipeline`] with the environment given (tests).
pub fn pipeline_with_env(
    args: &PipelineArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PipelineSettings> {
    let file = match &args.config {
        Some(arg) => crate::pipeline_file::read(arg)?,
        None => ConfigFile::default(),
    };
    limits_of(&file)?;
    let source_name = one_of("source", args.source.clone(), file.source.name)?
        .unwrap_or_else(|| builtin::STRIPE.to_owned());
    let destination_name = one_of(
        "destination",
        args.destination.clone(),
        file.destination.name,
    )?
    .unwrap_or_else(|| builtin::POSTGRES.to_owned());
    for shortcut in &SHORTCUTS {
        let connector = if shortcut.connector == builtin::STRIPE {
            &source_name
        } else {
            &destination_name
        };
        if shortcut_value(args, shortcut.flag).is_some() && connector != shortcut.connector {
            bail!(
                "{} configures the {} connector, but this pipeline uses {connector:?}; put the setting in its config instead",
                shortcut.flag,
                shortcut.connector
            );
        }
    }
    let source = side_config(
        "source",
        &source_name,
        file.source.config,
        args.source_config.as_deref().map(|t| ("source-config", t)),
        args,
        env,
    )?;
    let destination = side_config(
        "destination",
        &destination_name,
        file.destination.config,
        args.destination_config
            .as_deref()
            .map(|t| ("destination-config", t)),
        args,
        env,
    )?;
    let flag_streams = args.streams.as_ref().map(|names| {
        names
            .iter()
            .filter(|n| !n.trim().is_empty())
            .map(|n| StreamChoice {
                name: n.trim().to_owned(),
                ..Default::default()
            })
            .collect::<Vec<_>>()
    });
    let file_streams = file
        .streams
        .map(|list| sync_engine_api::wire::streams(&list, "the config file's streams"))
        .transpose()?;
    let streams = one_of("streams", flag_streams, file_streams)?;
    Ok(PipelineSettings {
        source: ConnectorConfig {
            name: source_name,
            config: source,
        },
        destination: ConnectorConfig {
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

impl From<&PipelineSettings> for sync_engine_api::PipelineRequest {
    fn from(p: &PipelineSettings) -> sync_engine_api::PipelineRequest {
        sync_engine_api::PipelineRequest {
            source: p.source.clone(),
            destination: p.destination.clone(),
            streams: p.streams.clone(),
            sync_id: p.sync_id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args() -> PipelineArgs {
        PipelineArgs::default()
    }

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |var| {
            pairs
                .iter()
                .find(|(k, _)| *k == var)
                .map(|(_, v)| v.to_string())
        }
    }

    const ENV: &[(&str, &str)] = &[
        ("STRIPE_API_KEY", "sk_live_from_env"),
        ("DATABASE_URL", "postgres://env/db"),
    ];

    fn file(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let path = dir.path().join("sync.json");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_config_file_entry_or_limit_that_would_be_ignored_or_meaningless_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let env = env_of(ENV);
        let refused = |text: &str| -> String {
            let mut a = args();
            a.config = Some(file(&dir, text));
            format!("{:#}", pipeline_with_env(&a, &env).unwrap_err())
        };
        let e = refused(r#"{"streams": ["charges", {"name": "invoices", "backfil_limit": 10}]}"#);
        assert!(
            e.contains("streams[1]") && e.contains("backfil_limit"),
            "{e}"
        );
        assert!(refused(r#"{"streams": [7]}"#).contains("streams[0]"));
        assert!(
            refused(r#"{"streams": [{"name": "x", "backfill_limit": 0}]}"#)
                .contains("streams[0].backfill_limit")
        );
        assert!(refused(r#"{"time_limit": 0}"#).contains("time_limit"));
        assert!(refused(r#"{"time_limit": -5}"#).contains("time_limit"));
        assert!(refused(r#"{"time_limit": 1e308}"#).contains("time_limit"));
        assert!(refused(r#"{"state_limit": 0}"#).contains("state_limit"));
        let mut a = args();
        a.config = Some(file(
            &dir,
            r#"{"streams": ["charges", {"name": "invoices", "backfill_limit": 10, "fields": ["id"]}], "time_limit": 0.5, "state_limit": 1}"#,
        ));
        let p = pipeline_with_env(&a, &env).unwrap();
        let streams = p.streams.unwrap();
        assert_eq!(
            (streams[1].backfill_limit, p.time_limit, p.state_limit),
            (Some(10), Some(0.5), Some(1))
        );
    }

    #[test]
    fn explicit_beats_the_environment_in_every_form() {
        let dir = tempfile::tempdir().unwrap();
        let env = env_of(ENV);
        // Each explicit way of giving the key and the URL, against both environment variables.
        let mut by_flag = args();
        by_flag.stripe_api_key = Some("sk_test_flag".into());
        by_flag.postgres_url = Some("postgres://flag/db".into());
        let mut by_json = args();
        by_json.source_config = Some(r#"{"api_key":"sk_test_flag"}"#.into());
        by_json.destination_config = Some(r#"{"url":"postgres://flag/db"}"#.into());
        let mut by_file = args();
        by_file.config = Some(file(
            &dir,
            r#"{"source":{"config":{"api_key":"sk_test_flag"}},"destination":{"config":{"url":"postgres://flag/db"}}}"#,
        ));
        for (what, a) in [
            ("flags", by_flag),
            ("JSON configs", by_json),
            ("config file", by_file),
        ] {
            let p = pipeline_with_env(&a, &env).unwrap();
            assert_eq!(p.source.config["api_key"], "sk_test_flag", "{what}");
            assert_eq!(p.destination.config["url"], "postgres://flag/db", "{what}");
        }
        // The environment fills only what nothing explicit gives.
        let p = pipeline_with_env(&args(), &env).unwrap();
        assert_eq!(p.source.config["api_key"], "sk_live_from_env");
        assert_eq!(p.destination.config["url"], "postgres://env/db");
    }

    #[test]
    fn two_explicit_values_for_one_setting_are_an_error_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        let env = env_of(&[]);
        let pairs: Vec<(PipelineArgs, &str, &str)> = {
            let mut v = Vec::new();
            let mut a = args();
            a.postgres_url = Some("postgres://a/db".into());
            a.destination_config = Some(r#"{"url":"postgres://b/db"}"#.into());
            a.stripe_api_key = Some("sk_test_x".into());
            v.push((a, "--postgres-url", "--destination-config"));
            let mut a = args();
            a.schema = Some("one".into());
            a.destination_config = Some(r#"{"url":"postgres://b/db","schema":"two"}"#.into());
            a.stripe_api_key = Some("sk_test_x".into());
            v.push((a, "--schema", "--destination-config"));
            let mut a = args();
            a.stripe_base_url = Some("http://one".into());
            a.source_config = Some(r#"{"api_key":"sk_test_x","base_url":"http://two"}"#.into());
            a.postgres_url = Some("postgres://a/db".into());
            v.push((a, "--stripe-base-url", "--source-config"));
            let mut a = args();
            a.stripe_api_key = Some("sk_test_flag".into());
            a.source_config = Some(r#"{"api_key":"sk_live_json"}"#.into());
            a.postgres_url = Some("postgres://a/db".into());
            v.push((a, "--stripe-api-key", "--source-config"));
            let mut a = args();
            a.config = Some(file(
                &dir,
                r#"{"destination":{"config":{"schema":"from_file"}}}"#,
            ));
            a.schema = Some("from_flag".into());
            a.stripe_api_key = Some("sk_test_x".into());
            a.postgres_url = Some("postgres://a/db".into());
            v.push((a, "--config", "--schema"));
            v
        };
        for (a, first, second) in pairs {
            let err = pipeline_with_env(&a, &env).unwrap_err().to_string();
            assert!(
                err.contains(first) && err.contains(second),
                "{first}/{second}: {err}"
            );
            assert!(
                !err.contains("sk_live") && !err.contains("sk_test"),
                "{err}"
            );
        }
        // The same value twice agrees.
        let mut a = args();
        a.schema = Some("same".into());
        a.destination_config = Some(r#"{"url":"postgres://b/db","schema":"same"}"#.into());
        a.stripe_api_key = Some("sk_test_x".into());
        assert_eq!(
            pipeline_with_env(&a, &env).unwrap().destination.config["schema"],
            "same"
        );
        // Streams from a flag and from the file.
        let mut a = args();
        a.config = Some(file(&dir, r#"{"streams":["customers"]}"#));
        a.streams = Some(vec!["invoices".into()]);
        a.stripe_api_key = Some("sk_test_x".into());
        a.postgres_url = Some("postgres://a/db".into());
        let err = pipeline_with_env(&a, &env).unwrap_err().to_string();
        assert!(
            err.contains("--streams") && err.contains("--config"),
            "{err}"
        );
    }

    #[test]
    fn file_and_flags_merge_key_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = args();
        a.config = Some(file(
            &dir,
            r#"{"source":{"config":{"api_key":"sk_test_file","rate_limit":5}},"destination":{"config":{"url":"postgres://file/db"}},"streams":["customers",{"name":"invoices","backfill_limit":3}]}"#,
        ));
        a.schema = Some("from_flag".into());
        let p = pipeline_with_env(&a, &env_of(ENV)).unwrap();
        assert_eq!(p.source.config["api_key"], "sk_test_file");
        assert_eq!(p.source.config["rate_limit"], 5);
        assert_eq!(p.destination.config["url"], "postgres://file/db");
        assert_eq!(p.destination.config["schema"], "from_flag");
        assert_eq!(
            p.streams.unwrap()[1],
            StreamChoice {
                name: "invoices".into(),
                backfill_limit: Some(3),
                ..Default::default()
            }
        );
    }

    #[test]
    fn either_postgres_url_variable_fills_the_url_and_two_different_ones_are_refused() {
        let mut a = args();
        a.stripe_api_key = Some("sk_test_x".into());
        for env in [
            &[("POSTGRES_URL", "postgres://p/db")][..],
            &[
                ("DATABASE_URL", "postgres://p/db"),
                ("POSTGRES_URL", "postgres://p/db"),
            ],
        ] {
            let pairs: &'static [(&'static str, &'static str)] = Box::leak(env.to_vec().into());
            let p = pipeline_with_env(&a, &env_of(pairs)).unwrap();
            assert_eq!(p.destination.config["url"], "postgres://p/db");
        }
        let env = env_of(&[
            ("DATABASE_URL", "postgres://d/db"),
            ("POSTGRES_URL", "postgres://p/db"),
        ]);
        let err = pipeline_with_env(&a, &env).unwrap_err().to_string();
        assert!(
            err.contains("DATABASE_URL") && err.contains("POSTGRES_URL"),
            "{err}"
        );
        assert!(!err.contains("postgres://"), "{err}");
        // An explicit URL needs neither.
        a.postgres_url = Some("postgres://flag/db".into());
        let p = pipeline_with_env(&a, &env).unwrap();
        assert_eq!(p.destination.config["url"], "postgres://flag/db");
    }

    #[test]
    fn missing_key_and_url_are_explained() {
        let env = env_of(&[]);
        let err = pipeline_with_env(&args(), &env).unwrap_err().to_string();
        assert!(
            err.contains("--stripe-api-key") && err.contains("STRIPE_API_KEY"),
            "{err}"
        );
        let mut a = args();
        a.stripe_api_key = Some("sk_test_x".into());
        let err = pipeline_with_env(&a, &env).unwrap_err().to_string();
        assert!(
            err.contains("--postgres-url") && err.contains("DATABASE_URL"),
            "{err}"
        );
        a.stripe_api_key = None;
        a.source = Some("other".into());
        a.destination = Some("elsewhere".into());
        let p = pipeline_with_env(&a, &env).unwrap();
        assert!(p.source.config.is_empty(), "{:?}", p.source.config);
        // A shortcut flag for a connector the pipeline does not use is not silently ignored.
        a.stripe_api_key = Some("sk_test_x".into());
        let err = pipeline_with_env(&a, &env).unwrap_err().to_string();
        assert!(
            err.contains("--stripe-api-key") && err.contains("\"other\""),
            "{err}"
        );
        let _ = json!({});
    }
}
