//! The web console in a real browser: headless Chromium driven through ChromeDriver against
//! the real `sync-service serve` and worker, a Temporal dev server, the simulator and Postgres.
//! Screenshots are written to `<target>/tmp/console-screenshots/` (and to `docs/images/` with
//! `UPDATE_SCREENSHOTS=1`).

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Service, runtime};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use test_support::process::free_port;

const TOKEN: &str = "console-test-token";

/// ChromeDriver on a free port, stopped on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Driver {
        let path = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".to_owned());
        let port = free_port();
        let child = Command::new(&path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {path}: {e} (scripts/test installs Debian's chromium and chromium-driver; or set CHROMEDRIVER)")
            });
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not listen"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Driver { child, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn open_browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                        "--window-size=1280,800", "--force-device-scale-factor=1"]}),
    );
    caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url())
        .await
        .expect("a Chromium session through chromedriver")
}

/// The browser's console messages since the last call; panics on any error among them.
async fn assert_no_console_errors(driver: &Driver, client: &Client, during: &str) {
    let errors = console_errors(driver, client).await;
    assert!(errors.is_empty(), "console errors {during}: {errors:#?}");
}

/// The browser's console errors since the last call.
async fn console_errors(driver: &Driver, client: &Client) -> Vec<Value> {
    let session = client.session_id().await.unwrap().unwrap();
    let logs: Value = reqwest::Client::new()
        .post(format!("{}/session/{session}/se/log", driver.url()))
        .json(&json!({"type": "browser"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = logs["value"].as_array().cloned().unwrap_or_default();
    entries
        .into_iter()
        .filter(|e| e["level"] == "SEVERE")
        .collect()
}

fn screenshots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    let path = screenshots_dir().join(format!("{name}.png"));
    std::fs::write(&path, &png).unwrap();
    if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/images");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(docs.join(format!("console-{name}.png")), &png).unwrap();
    }
}

async fn text_of(client: &Client, css: &str) -> String {
    match client.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits until the element's text is `want`.
async fn wait_text(client: &Client, css: &str, want: &str, timeout: Duration) {
    wait_shown(client, css, want, timeout, |got| got == want).await;
}

/// Waits until the element's text contains `want`.
async fn wait_contains(client: &Client, css: &str, want: &str, timeout: Duration) {
    wait_shown(client, css, want, timeout, |got| got.contains(want)).await;
}

async fn wait_shown(
    client: &Client,
    css: &str,
    want: &str,
    timeout: Duration,
    done: impl Fn(&str) -> bool,
) {
    let started = Instant::now();
    loop {
        let got = text_of(client, css).await;
        if done(&got) {
            return;
        }
        assert!(
            started.elapsed() < timeout,
            "{css}: waited {timeout:?} for {want:?}, it shows {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn api(service: &Service, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method.parse().unwrap(), service.url(path))
        .bearer_auth(TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

async fn log_in(driver: &Driver, client: &Client, service: &Service) {
    client.goto(&service.url("/")).await.unwrap();
    let url = client.current_url().await.unwrap();
    assert_eq!(
        url.path(),
        "/login",
        "a page without a session goes to the login form"
    );
    let field = client.find(Locator::Id("token")).await.unwrap();
    field.send_keys("not-the-token").await.unwrap();
    click(client, "form.login button[type=submit]").await;
    wait_text(
        client,
        "#login-problem",
        "That is not this server's token.",
        Duration::from_secs(5),
    )
    .await;
    // The refused form is answered 401, which the browser reports; nothing else may be.
    let errors = console_errors(driver, client).await;
    assert!(
        errors.len() == 1
            && errors[0]["message"].as_str().unwrap_or("").contains(
                "/login - Failed to load resource: the server responded with a status of 401"
            ),
        "{errors:#?}"
    );
    let field = client.find(Locator::Id("token")).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(TOKEN).await.unwrap();
    click(client, "form.login button[type=submit]").await;
    wait_text(client, "h1", "Pipelines", Duration::from_secs(5)).await;
}

/// The sum of layout shifts the page has had (Chrome's Layout Instability API).
async fn layout_shift(client: &Client) -> f64 {
    let script = r#"
        const done = arguments[arguments.length - 1];
        let total = 0;
        new PerformanceObserver((list) => {
            for (const e of list.getEntries()) if (!e.hadRecentInput) total += e.value;
        }).observe({type: "layout-shift", buffered: true});
        setTimeout(() => done(total), 100);
    "#;
    client
        .execute_async(script, vec![])
        .await
        .unwrap()
        .as_f64()
        .unwrap_or(0.0)
}

#[test]
fn the_console_in_a_real_browser() {
    let service = Service::start_full("1", 1500, &[], &[], &["--api-token", TOKEN], 2);
    let driver = Driver::start();
    runtime().block_on(async {
        let client = open_browser(&driver).await;
        log_in(&driver, &client, &service).await;
        create_through_the_form(&driver, &client, &service).await;
        pipelines_go_live(&client, &service).await;
        assert_no_console_errors(&driver, &client, "on the pipelines list").await;
        pipeline_page(&client, &service).await;
        assert_no_console_errors(&driver, &client, "on the pipeline page").await;
        edit_streams(&client, &service).await;
        assert_no_console_errors(&driver, &client, "while editing").await;
        explorer(&client, &service).await;
        assert_no_console_errors(&driver, &client, "in the explorer").await;
        sql_page(&driver, &client, &service).await;
        phone_width(&client, &service).await;
        delete_with_confirmation(&client, &service).await;
        assert_no_console_errors(&driver, &client, "while deleting").await;
        client.close().await.unwrap();
    });
}

async fn type_into(client: &Client, id: &str, text: &str) {
    let field = client
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("#{id}: {e}"));
    field.clear().await.unwrap();
    field
        .send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("typing into #{id}: {e}"));
}

/// The names of the checked streams in the form's picker.
async fn chosen_streams(client: &Client) -> Vec<String> {
    let chosen = client
        .execute(
            "return Array.from(document.querySelectorAll('#stream-list input:checked')).map((b) => b.value)",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(chosen).unwrap()
}

/// Ticks or unticks one stream in the picker (found through its search box).
async fn pick_stream(client: &Client, name: &str) {
    type_into(client, "stream-search", name).await;
    click(client, &format!("#stream-list input[value={name}]")).await;
    type_into(client, "stream-search", "").await;
}

/// From the empty list to a pipeline, through the form only: a wrong key is refused by the
/// check and shown at the key's field, a wrong id by the API's 400 at the id's field; then
/// the streams picked from discover, and Create opens the new pipeline's page.
async fn create_through_the_form(driver: &Driver, client: &Client, service: &Service) {
    assert!(
        text_of(client, "#empty").await.contains("create one"),
        "the empty list points to the form"
    );
    click(client, ".heading a.button").await;
    wait_text(client, "h1", "New pipeline", Duration::from_secs(5)).await;
    assert_eq!(
        client
            .find(Locator::Id("source-api_key"))
            .await
            .unwrap()
            .attr("type")
            .await
            .unwrap()
            .as_deref(),
        Some("password"),
        "a secret is typed into a password field"
    );
    // Nothing typed: the required fields say so, before anything is sent.
    click(client, "[data-action=check]").await;
    wait_text(
        client,
        "#source-api_key-error",
        "api_key: required",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(
        text_of(client, "#destination-url-error").await,
        "url: required"
    );
    // Invoices of a few customers, so that the explorer's invoices → customers join has rows.
    for customer in service.object_ids("customers").iter().take(5) {
        service
            .fake
            .create(None, "invoices", json!({"customer": customer}))
            .unwrap();
    }
    // Their creation events then lie before the backfill, so the first run's events (read
    // from the backfill's start, a few seconds' slack included) do not apply them again.
    service.fake.advance_clock(3_600);
    let body = service.pipeline_body("pl_console", "console");
    type_into(
        client,
        "source-api_key",
        "sk_test_not_a_key_of_this_account",
    )
    .await;
    click(client, "fieldset[data-side=source] details summary").await;
    type_into(
        client,
        "source-base_url",
        body["source"]["config"]["base_url"].as_str().unwrap(),
    )
    .await;
    type_into(
        client,
        "source-webhook_secret",
        body["source"]["config"]["webhook_secret"].as_str().unwrap(),
    )
    .await;
    // Refused by the source's spec first: the engine's error names the field.
    type_into(client, "source-rate_limit", "0").await;
    type_into(
        client,
        "destination-url",
        body["destination"]["config"]["url"].as_str().unwrap(),
    )
    .await;
    click(client, "fieldset[data-side=destination] details summary").await;
    type_into(client, "destination-schema", "console").await;
    type_into(client, "pipeline-id", "pl console").await;

    click(client, "[data-action=check]").await;
    wait_contains(
        client,
        "#source-rate_limit-error",
        "rate_limit: value is less than the minimum of 1",
        Duration::from_secs(30),
    )
    .await;
    // Slow enough that the list shows the backfill before it shows `ready`.
    type_into(client, "source-rate_limit", "4").await;
    click(client, "[data-action=check]").await;
    wait_contains(
        client,
        "#source-api_key-error",
        "Invalid API Key provided",
        Duration::from_secs(30),
    )
    .await;
    assert!(
        text_of(client, "#source-api_key-error")
            .await
            .starts_with("api_key: ")
    );
    wait_contains(
        client,
        "#check-destination",
        "Check passed",
        Duration::from_secs(10),
    )
    .await;
    // The stream list of a source that refuses the key says why, naming the key.
    let mut draft = service.pipeline_body("unused", "console");
    draft.as_object_mut().unwrap().remove("id");
    draft.as_object_mut().unwrap().remove("streams");
    draft["source"]["config"]["api_key"] = json!("sk_test_not_a_key_of_this_account");
    let (status, answer) = api(service, "POST", "/console/streams", Some(draft)).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"].as_str().unwrap_or("").contains("api_key: "),
        "{answer}"
    );
    // Create checks again: still refused, nothing stored.
    click(client, "[data-action=save]").await;
    wait_text(
        client,
        "#form-status",
        "The check failed: see the messages above.",
        Duration::from_secs(30),
    )
    .await;
    let (_, listed) = api(service, "GET", "/pipelines", None).await;
    assert_eq!(listed["data"], json!([]), "a refused form creates nothing");
    client
        .execute(
            "document.querySelector('fieldset[data-side=source]').scrollIntoView({block: 'start'})",
            vec![],
        )
        .await
        .unwrap();
    screenshot(client, "new-pipeline").await;

    type_into(client, "source-api_key", "sk_test_service").await;
    click(client, "[data-action=check]").await;
    wait_contains(
        client,
        "#check-source",
        "Check passed",
        Duration::from_secs(30),
    )
    .await;
    wait_contains(client, "#stream-count", " chosen", Duration::from_secs(30)).await;
    let common = chosen_streams(client).await;
    assert!(
        common.contains(&"customers".to_owned()) && common.contains(&"invoices".to_owned()),
        "the common streams come chosen: {common:?}"
    );
    click(client, "button[data-pick=none]").await;
    for name in ["customers", "products", "invoices"] {
        pick_stream(client, name).await;
    }
    let mut chosen = chosen_streams(client).await;
    chosen.sort();
    assert_eq!(chosen, ["customers", "invoices", "products"]);

    // The API's 400 names the id: shown at its field.
    click(client, "[data-action=save]").await;
    wait_contains(
        client,
        "#pipeline-id-error",
        "is not a pipeline id",
        Duration::from_secs(30),
    )
    .await;
    let errors = console_errors(driver, client).await;
    let refused = |path: &str| {
        format!("{path} - Failed to load resource: the server responded with a status of 400")
    };
    assert!(
        errors.len() == 2
            && errors[0]["message"]
                .as_str()
                .unwrap_or("")
                .contains(&refused("/console/check"))
            && errors[1]["message"]
                .as_str()
                .unwrap_or("")
                .contains(&refused("/pipelines")),
        "only the refused check and create are errors: {errors:#?}"
    );
    type_into(client, "pipeline-id", "pl_console").await;
    click(client, "[data-action=save]").await;
    wait_text(client, "h1", "Pipeline pl_console", Duration::from_secs(30)).await;
    let (_, shown) = api(service, "GET", "/pipelines/pl_console", None).await;
    let mut streams: Vec<String> = serde_json::from_value(shown["streams"].clone()).unwrap();
    streams.sort();
    assert_eq!(streams, ["customers", "invoices", "products"]);
    assert_eq!(shown["source"]["config"]["rate_limit"], json!(4));
    assert_eq!(shown["destination"]["config"]["schema"], json!("console"));
}

/// The list, opened while the new pipeline backfills, shows it reach `ready` without a reload,
/// and the live numbers move nothing.
async fn pipelines_go_live(client: &Client, service: &Service) {
    click(client, ".crumbs a").await;
    wait_text(client, "h1", "Pipelines", Duration::from_secs(5)).await;
    client
        .execute("window.notReloaded = true", vec![])
        .await
        .unwrap();
    let status_cell = "tr[data-id=pl_console] [data-field=status]";
    wait_text(client, status_cell, "backfilling", Duration::from_secs(30)).await;
    wait_text(client, status_cell, "ready", Duration::from_secs(180)).await;
    let still = client
        .execute("return window.notReloaded === true", vec![])
        .await
        .unwrap();
    assert_eq!(still, json!(true), "the page was reloaded");
    let expected = service.object_ids("customers").len()
        + service.object_ids("products").len()
        + service.object_ids("invoices").len();
    wait_text(
        client,
        "tr[data-id=pl_console] [data-field=records]",
        &format_count(expected),
        Duration::from_secs(10),
    )
    .await;
    assert!(text_of(client, "#summary").await.contains("1 ready"));
    let shift = layout_shift(client).await;
    assert!(shift < 0.01, "the live list shifted its layout by {shift}");
    screenshot(client, "pipelines").await;
}

fn format_count(n: usize) -> String {
    sync_console::format::count(n as i64)
}

/// Per-stream numbers, runs, and pause / resume / reconcile through the REST API.
async fn pipeline_page(client: &Client, service: &Service) {
    click(client, "tr[data-id=pl_console] th a").await;
    wait_text(client, "h1", "Pipeline pl_console", Duration::from_secs(5)).await;
    let customers = service.object_ids("customers").len();
    let rows = client
        .find_all(Locator::Css("#stream-rows tr"))
        .await
        .unwrap();
    let mut found = Vec::new();
    for row in rows {
        found.push(row.text().await.unwrap());
    }
    assert!(
        found
            .iter()
            .any(|r| r.starts_with("customers") && r.contains(&format_count(customers))),
        "streams: {found:?}"
    );
    assert!(
        !text_of(client, "#run-rows tr").await.is_empty(),
        "runs are listed"
    );
    assert_ne!(
        text_of(client, "#pipeline [data-field=saved_at]").await,
        "never"
    );

    click(client, "[data-action=pause]").await;
    wait_text(
        client,
        "#pipeline [data-field=desired]",
        "paused",
        Duration::from_secs(10),
    )
    .await;
    wait_text(
        client,
        "#pipeline [data-field=status]",
        "paused",
        Duration::from_secs(60),
    )
    .await;
    let (_, shown) = api(service, "GET", "/pipelines/pl_console", None).await;
    assert_eq!(shown["desired_status"], "paused");
    click(client, "[data-action=resume]").await;
    wait_text(
        client,
        "#pipeline [data-field=desired]",
        "active",
        Duration::from_secs(10),
    )
    .await;
    wait_text(
        client,
        "#pipeline [data-field=status]",
        "ready",
        Duration::from_secs(120),
    )
    .await;
    click(client, "[data-action=reconcile]").await;
    wait_text(
        client,
        "#action-result",
        "Reconcile: done.",
        Duration::from_secs(10),
    )
    .await;
}

/// The pipeline page's Edit: the stored streams come chosen and the key is never sent back,
/// not even masked; a stream added and saved is synced with the key kept.
async fn edit_streams(client: &Client, service: &Service) {
    for product in service.object_ids("products").iter().take(3) {
        service
            .fake
            .create(
                None,
                "prices",
                json!({"product": product, "currency": "usd", "unit_amount": 500}),
            )
            .unwrap();
    }
    // A stream stored with settings of its own (set through the API) keeps them through the form.
    let (status, answer) = api(
        service,
        "PATCH",
        "/pipelines/pl_console",
        Some(json!({"streams": ["customers", "products", {"name": "invoices", "backfill_limit": 1000}]})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    client
        .goto(&service.url("/console/pipelines/pl_console"))
        .await
        .unwrap();
    click(client, ".actions a[href$='/edit']").await;
    wait_text(client, "h1", "Edit pl_console", Duration::from_secs(5)).await;
    let key = client.find(Locator::Id("source-api_key")).await.unwrap();
    assert_eq!(key.prop("value").await.unwrap().as_deref(), Some(""));
    assert!(
        key.attr("placeholder")
            .await
            .unwrap()
            .unwrap_or_default()
            .contains("kept"),
        "the form says the stored key is kept"
    );
    assert!(
        !client.source().await.unwrap().contains("sk_test_service"),
        "the stored key is not in the page"
    );
    wait_contains(client, "#stream-count", "3 of ", Duration::from_secs(30)).await;
    pick_stream(client, "prices").await;
    screenshot(client, "edit-pipeline").await;
    click(client, "[data-action=save]").await;
    wait_text(client, "h1", "Pipeline pl_console", Duration::from_secs(30)).await;
    let (_, shown) = api(service, "GET", "/pipelines/pl_console", None).await;
    let streams = shown["streams"].as_array().unwrap();
    let mut names: Vec<&str> = streams
        .iter()
        .map(|s| s.as_str().or_else(|| s["name"].as_str()).unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["customers", "invoices", "prices", "products"]);
    assert!(
        streams.contains(&json!({"name": "invoices", "backfill_limit": 1000})),
        "a stream kept keeps its settings: {streams:?}"
    );
    assert_eq!(shown["source"]["config"]["api_key"], "***");
    // Synced with the key the form left alone.
    let want = service.object_ids("prices");
    assert_eq!(want.len(), 3);
    let started = Instant::now();
    loop {
        let exists = psql_rows(
            service,
            "select 1 from information_schema.tables where table_schema = 'console' and table_name = 'prices'",
        );
        if !exists.is_empty()
            && psql_rows(service, "select id from console.prices where not _deleted") == want
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "the added stream was not synced: {:?}",
            api(service, "GET", "/pipelines/pl_console", None).await.1
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Find `invoices`, follow its edge to `customers`, copy a join, count rows.
async fn explorer(client: &Client, service: &Service) {
    click(client, "nav a[href='/explorer']").await;
    wait_text(client, "h1", "Schema explorer", Duration::from_secs(10)).await;
    // Keyboard: "/" goes to the search field.
    client
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys("/")
        .await
        .unwrap();
    let active = client.active_element().await.unwrap();
    assert_eq!(active.attr("id").await.unwrap().as_deref(), Some("search"));
    active.send_keys("invoices").await.unwrap();
    let count = text_of(client, "#match-count").await;
    let numbers: Vec<usize> = count.split(' ').filter_map(|w| w.parse().ok()).collect();
    assert!(
        numbers.len() == 2 && numbers[0] >= 1 && numbers[0] < numbers[1],
        "{count}"
    );
    let visible = client
        .execute(
            "return Array.from(document.querySelectorAll('#cards > li')).filter(c => !c.hidden).map(c => c.querySelector('h2').textContent)",
            vec![],
        )
        .await
        .unwrap();
    let visible: Vec<String> = serde_json::from_value(visible).unwrap();
    assert!(visible.contains(&"invoices".to_owned()), "{visible:?}");
    assert!(!visible.contains(&"customers".to_owned()), "{visible:?}");
    click(client, "#cards a[href^='/explorer/tables/invoices']").await;
    wait_text(client, "h1", "Table invoices", Duration::from_secs(10)).await;
    assert!(
        client
            .find(Locator::Css("svg a[data-to=customers]"))
            .await
            .is_ok(),
        "the graph draws invoices → customers"
    );
    screenshot(client, "explorer").await;
    click(client, "table.relations button[data-copy]").await;
    wait_text(
        client,
        "#copy-result",
        "SQL copied.",
        Duration::from_secs(5),
    )
    .await;
    click(client, "a[data-relation=customers]").await;
    wait_text(client, "h1", "Table customers", Duration::from_secs(10)).await;
    let customers = service.object_ids("customers").len();
    wait_text(
        client,
        "#row-count",
        &format_count(customers),
        Duration::from_secs(5),
    )
    .await;
}

/// Runs `sql` from the SQL page's form.
async fn run_sql(client: &Client, sql: &str) {
    let field = client.find(Locator::Id("sql")).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(sql).await.unwrap();
    click(client, "form.sql-form button[type=submit]").await;
}

/// `psql`'s rows for `sql`, each as its fields joined by tabs (NULL empty), sorted.
fn psql_rows(service: &Service, sql: &str) -> Vec<String> {
    let out = Command::new("psql")
        .args(["-X", "-A", "-t", "-0", "-F", "\t", "-v", "ON_ERROR_STOP=1"])
        .arg(service.db.url())
        .args(["-c", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rows: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .split('\0')
        .map(|row| row.trim_end_matches('\n'))
        .filter(|row| !row.is_empty())
        .map(str::to_owned)
        .collect();
    rows.sort();
    rows
}

/// Each customer's id, email, name and deletion mark (what the refused statements would
/// change; not the stamps the live pipeline's own runs may write again).
fn customer_rows(service: &Service) -> Vec<String> {
    psql_rows(
        service,
        "SELECT concat_ws(' ', id, _raw_data->>'email', _raw_data->>'name', _deleted) \
         FROM console.customers",
    )
}

/// From a table's Query button and the explorer's join example to the rows psql gives;
/// writes and a second statement refused with nothing changed; a long query cancelled; CSV.
async fn sql_page(driver: &Driver, client: &Client, service: &Service) {
    // The explorer's last stop was the customers table.
    click(client, "#query-table").await;
    wait_text(client, "h1", "SQL", Duration::from_secs(10)).await;
    let customers = service.object_ids("customers").len();
    wait_text(
        client,
        "#sql-count",
        &format_count(customers.min(100)),
        Duration::from_secs(10),
    )
    .await;
    client
        .goto(&service.url("/explorer/tables/invoices"))
        .await
        .unwrap();
    wait_text(client, "h1", "Table invoices", Duration::from_secs(10)).await;
    click(client, "tr:has(a[data-relation=customers]) a.button").await;
    wait_text(client, "h1", "SQL", Duration::from_secs(10)).await;
    let statement = client
        .find(Locator::Id("sql"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(statement.contains("JOIN"), "{statement}");
    let mut attempts = 0;
    let (shown, expected) = loop {
        let shown = client
            .execute(
                "return Array.from(document.querySelectorAll('table.sql-result tbody tr')).map(r =>
                   Array.from(r.cells).map(c => c.classList.contains('null') ? '' : c.textContent).join('\\t'))",
                vec![],
            )
            .await
            .unwrap();
        let mut shown: Vec<String> = serde_json::from_value(shown).unwrap();
        shown.sort();
        let expected = psql_rows(service, &statement);
        attempts += 1;
        if shown == expected || attempts == 5 {
            break (shown, expected);
        }
        // The pipeline wrote a row between the page's query and psql's (a late step): both
        // are read again.
        client.refresh().await.unwrap();
        wait_text(client, "h1", "SQL", Duration::from_secs(10)).await;
    };
    assert_eq!(
        expected.len(),
        5,
        "five invoices, each of a synced customer"
    );
    assert_eq!(shown, expected, "the page shows psql's rows");
    screenshot(client, "sql").await;
    let csv = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(document.querySelector('a[download]').href).then(r => r.text()).then(done)",
            vec![],
        )
        .await
        .unwrap();
    let csv = csv.as_str().unwrap_or_default();
    let mut reader = csv::ReaderBuilder::new().from_reader(csv.as_bytes());
    assert!(reader.headers().unwrap().iter().any(|h| h == "id"), "{csv}");
    assert_eq!(reader.records().count(), 5, "five rows: {csv}");
    assert_no_console_errors(driver, client, "running the join").await;

    let before = customer_rows(service);
    for (sql, said) in [
        ("delete from customers", "DELETE is not one"),
        ("update customers set email = null", "UPDATE is not one"),
        ("create table evil (a int)", "CREATE is not one"),
        (
            "select 1; delete from customers",
            "cannot insert multiple commands into a prepared statement",
        ),
    ] {
        run_sql(client, sql).await;
        wait_contains(client, "#sql-problem", said, Duration::from_secs(10)).await;
        assert_eq!(
            text_of(client, "#sql").await,
            sql,
            "the refused statement stays in the field"
        );
    }
    assert_eq!(customer_rows(service), before, "nothing was deleted");
    run_sql(client, "select pg_sleep(60)").await;
    wait_contains(
        client,
        "#sql-problem",
        "was cancelled",
        Duration::from_secs(30),
    )
    .await;
    // Each refusal above was answered 4xx or 504, which the browser reports; nothing else may be.
    let errors = console_errors(driver, client).await;
    assert!(
        errors.iter().all(|e| e["message"]
            .as_str()
            .unwrap_or("")
            .contains("/explorer/sql?")),
        "{errors:#?}"
    );
}

/// At a phone's width nothing overflows the page sideways.
async fn phone_width(client: &Client, service: &Service) {
    client.set_window_size(390, 844).await.unwrap();
    for path in [
        "/",
        "/explorer",
        "/explorer/tables/invoices",
        "/explorer/sql?sql=select+*+from+invoices+limit+5",
        "/console/pipelines/pl_console",
        "/console/pipelines/new",
        "/console/pipelines/pl_console/edit",
    ] {
        client.goto(&service.url(path)).await.unwrap();
        let overflow = client
            .execute("return document.documentElement.scrollWidth - document.documentElement.clientWidth", vec![])
            .await
            .unwrap();
        assert!(
            overflow.as_i64().unwrap_or(99) <= 0,
            "{path} overflows sideways by {overflow}px"
        );
    }
    screenshot(client, "phone").await;
    client.set_window_size(1280, 800).await.unwrap();
}

/// Delete asks first; cancelling keeps the pipeline.
async fn delete_with_confirmation(client: &Client, service: &Service) {
    client
        .goto(&service.url("/console/pipelines/pl_console"))
        .await
        .unwrap();
    click(client, "[data-action=delete]").await;
    let open = client
        .execute(
            "return document.getElementById('confirm-delete').open",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(open, json!(true));
    click(client, "#confirm-delete button[value=cancel]").await;
    let (_, shown) = api(service, "GET", "/pipelines/pl_console", None).await;
    assert_eq!(shown["desired_status"], "active", "cancel deletes nothing");
    click(client, "[data-action=delete]").await;
    click(client, "#confirm-delete-button").await;
    let started = Instant::now();
    while client.current_url().await.unwrap().path() != "/" {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "delete did not go back to the list"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Deleting (the workflow tears down) or already forgotten.
    let (code, shown) = api(service, "GET", "/pipelines/pl_console", None).await;
    assert!(
        (code == 200 && shown["desired_status"] == "deleted") || code == 404,
        "{code} {shown}"
    );
}
