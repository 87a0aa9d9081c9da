//! `stripe-fake`: serves the Stripe API simulator on a local port.

use anyhow::{Context, Result};
use clap::Parser;
use stripe_fake::{Config, Faults, WebhookConfig};

/// A Stripe API simulator: deterministic data, Stripe-shaped lists and events, faults.
#[derive(Debug, Parser)]
#[command(name = "stripe-fake", version = build_info::VERSION)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 12111)]
    port: u16,
    /// Seed of every generated id and value.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Multiplier of the realistic mix (1 ≈ 1,000 customers, 3,000 invoices…; 0 = only --objects).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Exact counts per stream, e.g. customers=10000,invoices=2000.
    #[arg(long)]
    objects: Option<String>,
    /// Connected accounts besides the platform.
    #[arg(long, default_value_t = 2)]
    accounts: usize,
    /// Accepted API keys, comma-separated (default sk_test_fake,sk_live_fake,rk_test_fake,rk_live_fake).
    #[arg(long)]
    keys: Option<String>,
    /// Anchor of the simulated clock, unix seconds (default: the real time at start); pins the data for a seed.
    #[arg(long)]
    now: Option<i64>,
    /// Latency per request in ms: fixed (200) or a range (150-250).
    #[arg(long)]
    latency_ms: Option<String>,
    /// Requests per second across all endpoints (excess: 429 global-rate).
    #[arg(long)]
    rate_limit: Option<f64>,
    /// Requests per second per endpoint of each account (excess: 429 endpoint-rate).
    #[arg(long)]
    endpoint_rate_limit: Option<f64>,
    /// Fraction of requests answered 500.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Fraction of requests answered 429 whatever the limits.
    #[arg(long, default_value_t = 0.0)]
    throttle_rate: f64,
    /// Fraction of requests whose connection is closed without an answer.
    #[arg(long, default_value_t = 0.0)]
    drop_rate: f64,
    /// Fraction of 200s truncated or malformed (half each).
    #[arg(long, default_value_t = 0.0)]
    corrupt_rate: f64,
    /// Streams answered "not set up to use <product>", comma-separated.
    #[arg(long)]
    disabled_streams: Option<String>,
    /// Answer compact JSON instead of api.stripe.com's pretty-printed layout (benchmarks).
    #[arg(long)]
    compact_json: bool,
    /// Lay out every object when its data set is generated, so that list pages are served by
    /// concatenation from the first read (benchmarks); the bytes served are the same.
    #[arg(long)]
    prerender: bool,
    /// Where to POST events (http:// only).
    #[arg(long, requires = "webhook_secret")]
    webhook_url: Option<String>,
    /// The whsec_… secret webhook signatures are computed with.
    #[arg(long, requires = "webhook_url")]
    webhook_secret: Option<String>,
    /// Fraction of webhook deliveries sent twice.
    #[arg(long, default_value_t = 0.0)]
    webhook_duplicate_rate: f64,
    /// Deliveries queued within this many milliseconds of each other go out shuffled.
    #[arg(long, default_value_t = 0)]
    webhook_reorder_window_ms: u64,
    /// Mutate objects at this many per second from the start (a load for latency tests); see
    /// POST /_fake/load.
    #[arg(long)]
    load_rate: Option<f64>,
}

fn config(args: &Args) -> Result<Config> {
    let mut config = Config {
        seed: args.seed,
        scale: args.scale,
        accounts: args.accounts,
        now: args.now,
        compact_json: args.compact_json,
        prerender: args.prerender,
        ..Config::default()
    };
    if let Some(objects) = &args.objects {
        config.objects = stripe_fake::parse_objects(objects).context("--objects")?;
    }
    if let Some(keys) = &args.keys {
        config.keys = stripe_fake::parse_list(keys);
    }
    config.faults = Faults {
        latency: args
            .latency_ms
            .as_deref()
            .map(stripe_fake::parse_latency)
            .transpose()
            .context("--latency-ms")?,
        rate_limit: args.rate_limit,
        endpoint_rate_limit: args.endpoint_rate_limit,
        error_rate: args.error_rate,
        throttle_rate: args.throttle_rate,
        drop_rate: args.drop_rate,
        corrupt_rate: args.corrupt_rate,
        disabled_streams: args
            .disabled_streams
            .as_deref()
            .map(stripe_fake::parse_list)
            .unwrap_or_default(),
        revoked_keys: Vec::new(),
        webhook_duplicate_rate: args.webhook_duplicate_rate,
        webhook_reorder_window_ms: args.webhook_reorder_window_ms,
    };
    if let (Some(url), Some(secret)) = (&args.webhook_url, &args.webhook_secret) {
        config.webhook = Some(WebhookConfig::new(url, secret));
    }
    Ok(config)
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let config = config(&args)?;
    let keys = config.keys.join(" ");
    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    let addr = listener.local_addr().context("listener address")?;
    let started = std::time::Instant::now();
    let simulator = tokio::task::spawn_blocking(move || {
        let simulator = stripe_fake::Simulator::new(config)?;
        simulator.generate_all();
        Ok::<_, stripe_fake::FakeError>(simulator)
    })
    .await
    .context("data generation panicked")?
    .context("invalid configuration")?;
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        platform = simulator.platform_account(),
        connected = simulator.connected_accounts().len(),
        "data generated"
    );
    println!("stripe-fake listening on http://{addr} (keys: {keys})");
    let simulator = std::sync::Arc::new(simulator);
    if let Some(rate) = args.load_rate {
        simulator
            .start_load(stripe_fake::LoadSpec {
                rate,
                stream: "customers".into(),
                seconds: None,
            })
            .context("--load-rate")?;
    }
    tokio::select! {
        result = simulator.serve(listener) => result.context("server failed")?,
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted, stopping"),
    }
    Ok(())
}
