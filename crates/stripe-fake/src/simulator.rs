//! The simulated Stripe account tree in memory (platform, connected accounts, each with a test
//! and a live data set), the faults and counters in force, and the Rust API tests use directly.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use serde_json::{Map, Value};
use stripe_catalog::{Resource, catalog};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};

use crate::accounts;
use crate::auth::Mode;
use crate::body::Body;
use crate::clock::Clock;
use crate::config::{Config, Faults, WebhookConfig};
use crate::error::FakeError;
use crate::events::RETENTION_SECS;
use crate::faults::ActiveFaults;
use crate::generate::{self, DataSetSpec};
use crate::ids::stable_hash;
use crate::listed::Listed;
use crate::mutate::{self, Mutation, MutationContext};
use crate::routes::RouteTable;
use crate::stats::{Stats, StatsRecorder};
use crate::store::DataSet;

/// Which data set a library call addresses: an account (`None` = the platform) in a mode.
/// `Option<&str>` and `&str` convert to a test-mode scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// The account; `None` is the platform.
    pub account: Option<String>,
    /// Test or live data.
    pub mode: Mode,
}

impl Scope {
    /// `account`'s test-mode data (`None` = the platform).
    pub fn test(account: Option<&str>) -> Scope {
        Scope {
            account: account.map(str::to_string),
            mode: Mode::Test,
        }
    }

    /// `account`'s live-mode data (`None` = the platform).
    pub fn live(account: Option<&str>) -> Scope {
        Scope {
            account: account.map(str::to_string),
            mode: Mode::Live,
        }
    }
}

impl From<Option<&str>> for Scope {
    fn from(account: Option<&str>) -> Scope {
        Scope::test(account)
    }
}

impl From<&str> for Scope {
    fn from(account: &str) -> Scope {
        Scope::test(Some(account))
    }
}

impl From<&String> for Scope {
    fn from(account: &String) -> Scope {
        Scope::test(Some(account))
    }
}

impl From<Mode> for Scope {
    fn from(mode: Mode) -> Scope {
        Scope {
            account: None,
            mode,
        }
    }
}

pub(crate) struct AccountSlot {
    pub id: String,
    /// `None` for the platform, else the connected account's position.
    pub index: Option<usize>,
    pub json: Bytes,
    test: OnceLock<RwLock<DataSet>>,
    live: OnceLock<RwLock<DataSet>>,
}

impl AccountSlot {
    fn cell(&self, mode: Mode) -> &OnceLock<RwLock<DataSet>> {
        match mode {
            Mode::Test => &self.test,
            Mode::Live => &self.live,
        }
    }
}

/// The in-memory Stripe. Serve it over HTTP with [`Simulator::serve`], or use
/// [`crate::FakeStripe`], which does so on its own thread.
pub struct Simulator {
    seed: u64,
    clock: Clock,
    pub(crate) api_version: &'static str,
    counts: Vec<(&'static Resource, usize)>,
    pub(crate) accounts: Vec<AccountSlot>,
    account_index: HashMap<String, usize>,
    connected_objects: Vec<Value>,
    keys: HashMap<String, Mode>,
    pub(crate) routes: RouteTable,
    faults: RwLock<Arc<ActiveFaults>>,
    pub(crate) stats: Arc<StatsRecorder>,
    webhook_queue: UnboundedSender<QueuedEvent>,
    webhook_worker: Mutex<Option<UnboundedReceiver<QueuedEvent>>>,
    /// The configured endpoint every event also goes to (`--webhook-url`).
    pub(crate) webhook: Option<WebhookConfig>,
    /// Signing secrets of the webhook endpoints created through the API, by endpoint id
    /// (Stripe shows a secret once, when the endpoint is created).
    pub(crate) endpoint_secrets: Mutex<HashMap<String, String>>,
    /// The platform's Connect endpoints (made with `connect=true`), by id: Stripe's object does
    /// not say so, the simulator remembers.
    pub(crate) connect_endpoints: Mutex<HashSet<String>>,
    /// The running load, if any ([`crate::load`]).
    pub(crate) load: Mutex<Option<crate::running_load::Load>>,
    /// Answer compact JSON instead of api.stripe.com's pretty-printed layout.
    compact_json: bool,
    /// Lay out every object when its data set is generated ([`crate::Config::prerender`]).
    prerender: bool,
    /// Connected accounts whose access the platform lost ([`Simulator::set_connected`]).
    disconnected: RwLock<HashSet<String>>,
}

/// An event waiting for webhook delivery, with the data set it belongs to.
pub(crate) struct QueuedEvent {
    pub slot: usize,
    pub mode: Mode,
    pub json: Bytes,
}

fn resource(stream: &str) -> Result<&'static Resource, FakeError> {
    catalog()
        .resource(stream)
        .ok_or_else(|| FakeError::UnknownStream(stream.to_string()))
}

fn fields_map(fields: Value) -> Result<Map<String, Value>, FakeError> {
    match fields {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        other => Err(FakeError::InvalidFields(format!(
            "fields must be a JSON object, got {other}"
        ))),
    }
}

impl Simulator {
    /// Validates the configuration and generates the platform's test-mode data. The other
    /// data sets (connected accounts, live mode) are generated on first use, or all at once by
    /// [`Simulator::generate_all`].
    pub fn new(config: Config) -> Result<Simulator, FakeError> {
        config.validate()?;
        let clock = Clock::new(config.now);
        let platform_id = accounts::account_id(config.seed, None);
        let mut slots = Vec::with_capacity(config.accounts + 1);
        let mut connected_objects = Vec::with_capacity(config.accounts);
        for index in std::iter::once(None).chain((0..config.accounts).map(Some)) {
            let id = match index {
                None => platform_id.clone(),
                Some(_) => accounts::account_id(config.seed, index),
            };
            let object = accounts::account_object(config.seed, &id, index);
            if index.is_some() {
                connected_objects.push(object.clone());
            }
            slots.push(AccountSlot {
                id,
                index,
                json: Bytes::from(object.to_string()),
                test: OnceLock::new(),
                live: OnceLock::new(),
            });
        }
        let account_index = slots
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i))
            .collect();
        let keys = config
            .keys
            .iter()
            .map(|k| (k.clone(), Mode::of_key(k)))
            .collect();
        let (webhook_queue, webhook_worker) = mpsc::unbounded_channel();
        let simulator = Simulator {
            seed: config.seed,
            clock,
            api_version: catalog().api_version.as_str(),
            counts: generate::counts(config.scale, &config.objects),
            accounts: slots,
            account_index,
            connected_objects,
            keys,
            routes: RouteTable::new(),
            faults: RwLock::new(Arc::new(ActiveFaults::new(config.faults))),
            stats: Arc::new(StatsRecorder::default()),
            webhook_queue,
            webhook_worker: Mutex::new(Some(webhook_worker)),
            webhook: config.webhook.clone(),
            endpoint_secrets: Mutex::new(HashMap::new()),
            connect_endpoints: Mutex::new(HashSet::new()),
            load: Mutex::new(None),
            disconnected: RwLock::new(HashSet::new()),
            compact_json: config.compact_json,
            prerender: config.prerender,
        };
        simulator.data(0, Mode::Test);
        Ok(simulator)
    }

    /// Generates every account's test-mode data now, on all cores, so no first request waits.
    pub fn generate_all(&self) {
        let threads = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .min(self.accounts.len())
            .max(1);
        std::thread::scope(|scope| {
            for worker in 0..threads {
                scope.spawn(move || {
                    for slot in (worker..self.accounts.len()).step_by(threads) {
                        self.data(slot, Mode::Test);
                    }
                });
            }
        });
    }

    /// The data set of an account slot in a mode, generated on first use.
    pub(crate) fn data(&self, slot: usize, mode: Mode) -> &RwLock<DataSet> {
        let account = &self.accounts[slot];
        account.cell(mode).get_or_init(|| {
            let started = std::time::Instant::now();
            let mode_name: &[u8] = if mode.livemode() { b"live" } else { b"test" };
            let spec = DataSetSpec {
                seed: stable_hash(&[&self.seed.to_le_bytes(), account.id.as_bytes(), mode_name]),
                account_id: &account.id,
                is_platform: account.index.is_none(),
                livemode: mode.livemode(),
                now: self.clock.anchor(),
                counts: &self.counts,
                connected_accounts: &self.connected_objects,
                api_version: self.api_version,
            };
            let data = generate::generate(&spec);
            if self.prerender && !self.compact_json {
                for entry in data.collections.values().flat_map(|c| &c.entries) {
                    entry.in_list();
                }
            }
            tracing::debug!(
                account = %account.id,
                ?mode,
                objects = data.collections.values().map(|c| c.entries.len()).sum::<usize>(),
                events = data.events.entries.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "generated data set"
            );
            RwLock::new(data)
        })
    }

    pub(crate) fn is_generated(&self, slot: usize, mode: Mode) -> bool {
        self.accounts[slot].cell(mode).get().is_some()
    }

    pub(crate) fn read(&self, slot: usize, mode: Mode) -> RwLockReadGuard<'_, DataSet> {
        self.data(slot, mode)
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn write(&self, slot: usize, mode: Mode) -> RwLockWriteGuard<'_, DataSet> {
        self.data(slot, mode)
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The slot of an account id (`None` = platform).
    pub(crate) fn slot(&self, account: Option<&str>) -> Option<usize> {
        match account {
            None => Some(0),
            Some(id) => self.account_index.get(id).copied(),
        }
    }

    fn scope_slot(&self, scope: &Scope) -> Result<usize, FakeError> {
        self.slot(scope.account.as_deref())
            .ok_or_else(|| FakeError::UnknownAccount(scope.account.clone().unwrap_or_default()))
    }

    pub(crate) fn key_mode(&self, key: &str) -> Option<Mode> {
        self.keys.get(key).copied()
    }

    pub(crate) fn active_faults(&self) -> Arc<ActiveFaults> {
        self.faults
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A response body in the layout the simulator answers with.
    pub(crate) fn render(&self, body: impl Into<Body>) -> Bytes {
        match body.into() {
            Body::Final(body) => body,
            Body::Compact(body) if self.compact_json => body,
            Body::Compact(body) => crate::pretty::pretty(&body),
        }
    }

    /// Whether answers are pretty-printed (as api.stripe.com's are).
    pub(crate) fn pretty(&self) -> bool {
        !self.compact_json
    }

    /// Stops the simulated clock at the current second, so that what follows happens within
    /// one second (as it can on api.stripe.com); returns that second.
    pub fn stop_clock(&self) -> i64 {
        self.clock.stop()
    }

    /// Lets a stopped clock run again from the second it shows; returns the time.
    pub fn resume_clock(&self) -> i64 {
        self.clock.resume()
    }

    /// Moves the simulated clock forward; returns the time.
    pub fn advance_clock(&self, secs: i64) -> i64 {
        self.clock.advance(secs)
    }

    /// The simulated clock (unix seconds): new objects and events are created at this time.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The API version events carry and responses echo by default.
    pub fn api_version(&self) -> &str {
        self.api_version
    }

    /// The platform account's id (`acct_…`, derived from the seed).
    pub fn platform_account(&self) -> &str {
        &self.accounts[0].id
    }

    /// The ids of the connected accounts (`Config::accounts` of them), disconnected ones
    /// included.
    pub fn connected_accounts(&self) -> Vec<String> {
        self.accounts[1..].iter().map(|a| a.id.clone()).collect()
    }

    /// Connects (`true`) or disconnects one of the connected accounts, as a user authorizing
    /// the platform's application, or revoking it, would. Disconnected, the account answers
    /// `Stripe-Account` requests 403 and leaves the platform's `/v1/accounts`; its data is
    /// kept. The platform's test-mode data records `account.application.authorized` or
    /// `…deauthorized` with `account` set (nothing when it already was so).
    pub fn set_connected(&self, account: &str, connected: bool) -> Result<Value, FakeError> {
        if !matches!(self.slot(Some(account)), Some(slot) if slot > 0) {
            return Err(FakeError::UnknownAccount(account.to_owned()));
        }
        {
            let mut disconnected = self
                .disconnected
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            if connected {
                disconnected.remove(account);
            } else {
                disconnected.insert(account.to_owned());
            }
        }
        self.mutate(&Scope::test(None), None, |data, ctx| {
            crate::connect::set_connected(data, account, connected, ctx)
        })
    }

    /// Whether a connected account was disconnected ([`Simulator::set_connected`]).
    pub(crate) fn is_disconnected(&self, account: &str) -> bool {
        self.disconnected
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(account)
    }

    /// The disconnected accounts, sorted.
    pub fn disconnected_accounts(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .disconnected
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect();
        ids.sort();
        ids
    }

    /// The current objects of a stream, newest first, deleted ones excluded. Nested streams
    /// give the items of live parents (parents newest first, items in their order); `events`
    /// gives every stored event, including those past the 30-day retention.
    pub fn objects(&self, scope: impl Into<Scope>, stream: &str) -> Result<Vec<Value>, FakeError> {
        let scope = scope.into();
        let resource = resource(stream)?;
        let slot = self.scope_slot(&scope)?;
        Ok(self.read(slot, scope.mode).objects(resource))
    }

    /// The same objects by id, for comparing with what a sync wrote.
    pub fn objects_by_id(
        &self,
        scope: impl Into<Scope>,
        stream: &str,
    ) -> Result<std::collections::BTreeMap<String, Value>, FakeError> {
        Ok(self
            .objects(scope, stream)?
            .into_iter()
            .filter_map(|o| Some((o.get("id")?.as_str()?.to_owned(), o)))
            .collect())
    }

    /// One object by id (deleted ones are not found).
    pub fn retrieve(
        &self,
        scope: impl Into<Scope>,
        stream: &str,
        id: &str,
    ) -> Result<Value, FakeError> {
        let scope = scope.into();
        let resource = resource(stream)?;
        let slot = self.scope_slot(&scope)?;
        let data = self.read(slot, scope.mode);
        data.collection(resource)
            .and_then(|c| c.live(id))
            .and_then(|e| serde_json::from_slice(e.json()).ok())
            .ok_or_else(|| FakeError::NotFound {
                object: resource.object.clone(),
                id: id.to_string(),
            })
    }

    /// The events `/v1/events` lists (the last 30 days), newest first.
    pub fn events(&self, scope: impl Into<Scope>) -> Result<Vec<Value>, FakeError> {
        let scope = scope.into();
        let slot = self.scope_slot(&scope)?;
        let oldest = self.now() - RETENTION_SECS;
        let data = self.read(slot, scope.mode);
        Ok(data
            .events
            .entries
            .iter()
            .rev()
            .take_while(|e| e.key.0 >= oldest)
            .filter_map(|e| serde_json::from_slice(&e.json).ok())
            .collect())
    }

    /// Creates an object from the stream's template merged with `fields` (a JSON object; `id`
    /// and `created` may be given; a parent's item list, e.g. `items: [{price: "price_…"}]`,
    /// creates its items) and records the creation event.
    pub fn create(
        &self,
        scope: impl Into<Scope>,
        stream: &str,
        fields: Value,
    ) -> Result<Value, FakeError> {
        let resource = resource(stream)?;
        let fields = fields_map(fields)?;
        self.mutate(&scope.into(), None, |data, ctx| {
            mutate::create(data, resource, fields, ctx)
        })
    }

    /// Merges `fields` into an object (metadata key by key; null clears) and records the
    /// update event with `previous_attributes`.
    pub fn update(
        &self,
        scope: impl Into<Scope>,
        stream: &str,
        id: &str,
        fields: Value,
    ) -> Result<Value, FakeError> {
        self.update_announced(
            scope.into(),
            stream,
            id,
            fields,
            mutate::Announce::WithEvent,
        )
    }

    /// Changes an object the way Stripe sometimes does without an event about it (a balance
    /// moved by another object, an embedded list in older API versions): no event, no webhook.
    pub fn change_silently(
        &self,
        scope: impl Into<Scope>,
        stream: &str,
        id: &str,
        fields: Value,
    ) -> Result<Value, FakeError> {
        self.update_announced(scope.into(), stream, id, fields, mutate::Announce::Silently)
    }

    fn update_announced(
        &self,
        scope: Scope,
        stream: &str,
        id: &str,
        fields: Value,
        announce: mutate::Announce,
    ) -> Result<Value, FakeError> {
        let resource = resource(stream)?;
        let fields = fields_map(fields)?;
        self.mutate(&scope, None, |data, ctx| {
            mutate::update(data, resource, id, fields, ctx, announce)
        })
    }

    /// Deletes an object of a deletable stream; returns `{id, object, deleted: true}`.
    pub fn delete(
        &self,
        scope: impl Into<Scope>,
        stream: &str,
        id: &str,
    ) -> Result<Value, FakeError> {
        self.delete_announced(scope.into(), stream, id, mutate::Announce::WithEvent)
    }

    /// Deletes an object without an event about it (an object deleted while a sync was
    /// offline longer than Stripe keeps events looks the same, and so does a lost event): gone
    /// from lists, a retrieve answers as for any deleted object, and nothing says so. A
    /// subscription is removed, not canceled.
    pub fn delete_silently(
        &self,
        scope: impl Into<Scope>,
        stream: &str,
        id: &str,
    ) -> Result<Value, FakeError> {
        self.delete_announced(scope.into(), stream, id, mutate::Announce::Silently)
    }

    fn delete_announced(
        &self,
        scope: Scope,
        stream: &str,
        id: &str,
        announce: mutate::Announce,
    ) -> Result<Value, FakeError> {
        let resource = resource(stream)?;
        self.mutate(&scope, None, |data, ctx| {
            mutate::delete(data, resource, id, ctx, announce)
        })
    }

    /// Runs a mutation under the data set's write lock and queues its events for webhook
    /// delivery before releasing it, so deliveries follow creation order.
    pub(crate) fn mutate(
        &self,
        scope: &Scope,
        request_id: Option<&str>,
        apply: impl FnOnce(&mut DataSet, &MutationContext<'_>) -> Result<Mutation, FakeError>,
    ) -> Result<Value, FakeError> {
        let slot = self.scope_slot(scope)?;
        let ctx = MutationContext {
            now: self.now(),
            api_version: self.api_version,
            request_id,
        };
        let mut data = self.write(slot, scope.mode);
        let mutation = apply(&mut data, &ctx)?;
        for event in mutation.events {
            // The receiver only goes away with the runtime; then nobody is listening anyway.
            let _ = self.webhook_queue.send(QueuedEvent {
                slot,
                mode: scope.mode,
                json: event,
            });
        }
        Ok(mutation.object)
    }

    /// Replaces the injected faults (rate-limit buckets start afresh); refuses an invalid set.
    pub fn set_faults(&self, faults: Faults) -> Result<(), FakeError> {
        faults.validate()?;
        *self.faults.write().unwrap_or_else(PoisonError::into_inner) =
            Arc::new(ActiveFaults::new(faults));
        Ok(())
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        self.active_faults().faults.clone()
    }

    /// The counters since start or the last [`Simulator::reset_stats`].
    pub fn stats(&self) -> Stats {
        self.stats.snapshot()
    }

    /// Sets every counter back to zero.
    pub fn reset_stats(&self) {
        self.stats.reset();
    }

    /// Hands the webhook queue to the task that delivers it (once).
    pub(crate) fn take_webhook_worker(&self) -> Option<UnboundedReceiver<QueuedEvent>> {
        self.webhook_worker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}
