//! The reference implementation's connector configs and its `control` message through the real
//! engine: `sync-engine serve` answers `pipeline_setup` with the source's complete config, as the
//! reference does (the client's own key not masked in it), and `sync-engine sync` applies it to
//! the run but keeps for later runs only what setup cannot find again; a config in the
//! reference's spelling (`poll_events`, dest-postgres' `connection_string`) syncs the rows ours
//! does.

use std::process::{Command, Stdio};

use serde_json::{Value, json};
use stripe_fake::{Config, FakeStripe, Scope};
use test_support::engine_serve::EngineServe;
use test_support::{Finished, TestDb, bin_path};

const KEY: &str = "sk_test_fake";
/// Another key of the same account.
const ROTATED: &str = "sk_test_rotated";

fn fake() -> FakeStripe {
    FakeStripe::start(Config {
        seed: 61,
        scale: 0.0,
        objects: vec![("customers".into(), 30)],
        keys: vec![KEY.into(), ROTATED.into()],
        ..Default::default()
    })
    .expect("the simulator starts")
}

/// `sync-engine serve` with none of the environment's settings.
fn serve() -> EngineServe {
    let mut cmd = engine();
    cmd.args(["serve", "--port", "0"])
        .env_remove("SYNC_ENGINE_API_TOKEN");
    EngineServe::spawn(cmd)
}

fn engine() -> Command {
    let mut cmd = Command::new(bin_path("sync-engine"));
    cmd.env_remove("STRIPE_API_KEY")
        .env_remove("DATABASE_URL")
        .env_remove("POSTGRES_URL")
        .env_remove("PORT")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    cmd
}

fn post(url: &str, body: &Value) -> (u16, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let response = reqwest::Client::new()
                .post(url)
                .json(body)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        })
}

#[test]
fn serve_answers_setup_with_the_sources_complete_config() {
    let fake = fake();
    let db = TestDb::new();
    let serve = serve();
    let stripe = json!({"api_key": KEY, "base_url": fake.base_url(),
                        "webhook_url": "https://sync.example.com/hooks"});
    let body = json!({"pipeline": {
        "source": {"type": "stripe", "stripe": stripe},
        "destination": {"type": "postgres", "postgres": {"connection_string": db.url(), "schema": "stripe"}},
        "streams": [{"name": "customers"}]}});
    let (status, text) = post(&format!("{}/pipeline_setup", serve.url), &body);
    assert_eq!(status, 200, "{text}");
    let controls: Vec<Value> = test_support::lines_of(&text)
        .into_iter()
        .filter(|m| m["type"] == "control" && m["control"]["control_type"] == "source_config")
        .collect();
    assert_eq!(controls.len(), 1, "{text}");
    let config = &controls[0]["control"]["source_config"];
    let platform = fake.platform_account();
    let mut expected = stripe.clone();
    expected["account_id"] = json!(platform);
    expected["api_version"] = config["api_version"].clone();
    expected["account_created"] = config["account_created"].clone();
    expected["webhook_secret"] = config["webhook_secret"].clone();
    assert_eq!(config, &expected, "the config as given, completed");
    assert!(config["account_created"].is_i64(), "{config}");
    assert!(config["api_version"].is_string(), "{config}");
    assert!(
        config["webhook_secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("whsec_")),
        "{config}"
    );
    let log = serve.log();
    assert!(
        !log.contains(KEY) && !log.contains("whsec_"),
        "no secret in the engine's log: {log}"
    );
}

/// The `_control` the sync saved beside its checkpoint in the destination's schema.
fn saved_control(db: &TestDb) -> Value {
    let row = db
        .client()
        .query_one(
            "SELECT state::text FROM stripe._sync_state WHERE stream = '_control'",
            &[],
        )
        .unwrap();
    serde_json::from_str(&row.get::<_, String>(0)).unwrap()
}

fn sync(fake: &FakeStripe, db: &TestDb, key: &str, source: &Value) -> Finished {
    engine()
        .args(["sync", "--stripe-api-key", key])
        .args(["--stripe-base-url", &fake.base_url()])
        .args(["--source-config", &source.to_string()])
        .args([
            "--destination-config",
            &json!({"connection_string": db.url()}).to_string(),
        ])
        .args(["--streams", "customers", "--output", "ndjson"])
        // Only fills what nothing explicit gives: connection_string is the URL.
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/nowhere")
        .output()
        .unwrap()
        .into()
}

#[test]
fn sync_applies_the_complete_config_and_keeps_only_what_setup_cannot_find_again() {
    let fake = fake();
    let db = TestDb::new();
    let source = json!({"poll_events": true, "rate_limit": 50,
                        "webhook_url": "https://sync.example.com/hooks"});
    let first = sync(&fake, &db, KEY, &source);
    assert_eq!(first.code, Some(0), "{}\n{}", first.stdout, first.stderr);
    let live = fake.objects(Scope::test(None), "customers").unwrap().len() as i64;
    assert_eq!(db.count("stripe.customers"), live);
    let control = saved_control(&db);
    let secret = control["source"]["webhook_secret"].clone();
    assert!(
        secret.as_str().is_some_and(|s| s.starts_with("whsec_")),
        "{control}"
    );
    assert_eq!(
        control["source"],
        json!({"webhook_secret": secret}),
        "neither the user's keys (api_key, rate_limit) nor what setup finds again (account_id, \
         account_created, api_version) are kept"
    );
    assert!(!first.stderr.contains(KEY) && !first.stderr.contains("whsec_"));

    // The saved secret fills the next run: setup keeps the endpoint it made.
    let second = sync(&fake, &db, KEY, &json!({"poll_events": true}));
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    let endpoints = fake
        .objects(Scope::test(None), "webhook_endpoints")
        .unwrap();
    assert_eq!(endpoints.len(), 1, "{endpoints:?}");
    assert_eq!(
        saved_control(&db)["source"],
        json!({"webhook_secret": secret})
    );

    // Another key of the account: nothing the first key resolved is carried over.
    let third = sync(&fake, &db, ROTATED, &json!({}));
    assert_eq!(third.code, Some(0), "{}", third.stderr);
    assert_eq!(db.count("stripe.customers"), live);
    assert!(saved_control(&db)["source"].get("account_id").is_none());
}
