//! Incremental updates: `/v1/events` since the global events cursor, oldest first, each event's
//! object emitted with `_updated_at` set to the event's time; `*.deleted` events emit tombstones.
//!
//! Stripe lists events newest first and filters by `created` only to the second, so events are
//! read in time windows (all pages of a window, then reversed). The cursor stays a few seconds
//! behind the present, where events may still appear, and keeps the ids of the events already
//! processed at or after it: `created[gte]` plus those ids loses nothing that shares the cursor's
//! second and processes nothing twice.
//!
//! Same-second ties: an event's snapshot and a list read made in the same second cannot be
//! ordered (Stripe's times are whole seconds, and some changes emit no event at all). An event
//! created no later than the end of its stream's backfill ([`crate::state::StreamCheckpoint`]'s
//! `listed_until`), or no later than a refetch of its object in this run, is therefore not
//! trusted: the object is read again and that current version is emitted instead.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::value::RawValue;
use stripe_catalog::{Catalog, Resource};
use sync_connector::Output;
use sync_protocol::SourceState;
use sync_protocol::peek::top_level_fields;

use crate::children::{children_of, embedded_items};
use crate::client::StripeClient;
use crate::error::ReadError;
use crate::origin::{NotOurs, Origin, Owner};
use crate::pager::Pager;
use crate::recent::RecentIds;
use crate::records::{Head, stamp, tombstone};
use crate::state::{AccountMark, EventsCursor, Generation, GlobalCheckpoint};

/// Stripe keeps events for 30 days.
pub(crate) const RETENTION_SECS: i64 = 30 * 24 * 3600;
/// Events of the last few seconds may still be written; the cursor never passes them unseen.
const LATENESS_SECS: i64 = 5;
const FIRST_WINDOW_SECS: i64 = 3600;
const MAX_WINDOW_EVENTS: usize = 10_000;
/// Within a window, the cursor is saved after the events applied so far at most this often: a
/// run stopped mid-window (a step's time limit) resumes after them.
const MID_WINDOW_EVERY: Duration = Duration::from_millis(200);
/// How far a read's second may be off the second the server made it in (the clock offset is
/// learnt from whole-second `Date` headers).
pub(crate) const CLOCK_SLACK_SECS: i64 = 2;

pub(crate) struct EventsCtx {
    pub client: Arc<StripeClient>,
    pub output: Output,
    pub account_id: String,
    /// The account and mode, recorded with the cursor.
    pub account: AccountMark,
    /// Whose pushed events may be applied (stamped with `account_id`).
    pub owner: Owner,
    /// The selected streams and their backfill generations, recorded with the cursor.
    pub streams: BTreeMap<String, Generation>,
    /// Per stream, the last second its backfill listed objects in: events up to then may be
    /// older than what was listed.
    pub listed_until: HashMap<String, i64>,
    /// Pushed events (webhooks) up to this second may be late copies of events an earlier run
    /// applied with newer ones of the same second: their objects are read again. The server's
    /// time on its first answer to this process, which started after every earlier run ended.
    pub pushed_trusted_after: i64,
    /// Streams whose objects are read again for every event (`revalidate_objects`).
    pub revalidate: Vec<String>,
}

/// Records emitted per stream.
pub(crate) type Counts = HashMap<String, u64>;

/// The fields of an event the source reads; the rest stays text.
#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    created: i64,
    #[serde(rename = "type", borrow, default)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    data: Option<EventData<'a>>,
    /// A connected account's id; none on a platform's own event.
    #[serde(borrow, default)]
    account: Option<Cow<'a, str>>,
    #[serde(default)]
    livemode: Option<bool>,
}

#[derive(Deserialize)]
struct EventData<'a> {
    #[serde(borrow)]
    object: &'a RawValue,
    #[serde(borrow, default)]
    previous_attributes: Option<&'a RawValue>,
}

/// The fields of an event's object the source reads.
struct ObjectHead<'a> {
    object_type: Option<Cow<'a, str>>,
    id: Option<Cow<'a, str>>,
    deleted: bool,
}

impl<'a> ObjectHead<'a> {
    fn of(raw: &'a RawValue) -> ObjectHead<'a> {
        let fields = top_level_fields(raw.get(), &["object", "id", "deleted"]).unwrap_or_default();
        let text = |i: usize| {
            fields
                .get(i)
                .copied()
                .flatten()
                .and_then(|v| serde_json::from_str::<Cow<'a, str>>(v.get()).ok())
        };
        ObjectHead {
            object_type: text(0),
            id: text(1),
            deleted: fields
                .get(2)
                .copied()
                .flatten()
                .is_some_and(|v| v.get() == "true"),
        }
    }
}

/// Objects read again during this run, and objects whose pushed snapshot was emitted: an event
/// older than such a version is already reflected in it; one from the same second may or may
/// not be (webhooks arrive in any order), so its object is read again.
#[derive(Default)]
struct Refetched {
    by_id: HashMap<String, Emitted>,
}

/// The last version of an object this run emitted.
#[derive(Clone, Copy)]
struct Emitted {
    /// Its stamp.
    stamp: i64,
    /// The last second that may still tie with it.
    ties_until: i64,
    /// An event's snapshot from the events list, which is in order: later events of the list
    /// are newer, whatever their second.
    listed: bool,
}

/// Entries kept before the oldest seconds are forgotten.
const REFETCHED_CAPACITY: usize = 100_000;

impl Refetched {
    fn remember(&mut self, id: &str, emitted: Emitted) {
        if self.by_id.len() >= REFETCHED_CAPACITY && !self.by_id.contains_key(id) {
            // Same-second ties matter for events of the same second only: keep the last hour.
            let horizon = emitted.ties_until - 3600;
            self.by_id.retain(|_, e| e.ties_until >= horizon);
            if self.by_id.len() >= REFETCHED_CAPACITY {
                self.by_id.clear();
            }
        }
        self.by_id.insert(id.to_owned(), emitted);
    }
}

/// What this run applied already, shared by the events path and pushed events (webhooks): the
/// events, so each is applied once whichever path brings it first, and the object versions an
/// event must be compared with.
#[derive(Default)]
pub(crate) struct Applied {
    ids: RecentIds,
    refetched: Refetched,
    /// The newest second of the events listed by the last read that reached the present.
    newest_listed: Option<i64>,
}

/// Where an object's version comes from for one event.
enum Version {
    /// The event's snapshot, as of the event's time.
    Snapshot,
    /// A version read after the event: read it again.
    Refetch,
    /// A version already emitted in this run is newer than the event.
    AlreadyNewer,
}

impl EventsCtx {
    fn is_selected(&self, stream: &str) -> bool {
        self.streams.contains_key(stream)
    }

    async fn emit(&self, stream: &str, data: String, counts: &mut Counts) -> Result<(), ReadError> {
        self.output.raw_record(stream, &data).await?;
        *counts.entry(stream.to_owned()).or_default() += 1;
        Ok(())
    }

    /// Whether an event at `created` may predate what a list read of these streams saw.
    fn ties_a_listing(&self, streams: &[&str], created: i64) -> bool {
        streams
            .iter()
            .filter_map(|s| self.listed_until.get(*s))
            .any(|until| created <= *until)
    }
}

/// True when the cursor is older than Stripe's retention: events were lost.
pub(crate) fn expired(cursor: &EventsCursor, server_now: i64) -> bool {
    cursor.created < server_now - RETENTION_SECS
}

/// Whether an event means its object no longer exists. A subscription's `.deleted` event is a
/// cancellation: the subscription is still listed, now canceled.
fn is_deletion(event_type: &str, object: &ObjectHead<'_>) -> bool {
    if object.deleted {
        return true;
    }
    event_type.ends_with(".deleted") && object.object_type.as_deref() != Some("subscription")
}

/// Reads every event after the cursor and emits the records they carry, oldest first; emits
/// the global state after each window. Events in `applied` (by a webhook) are skipped; the ones
/// applied are added to it. Returns the advanced cursor.
///
/// When the window reaches the present and an earlier call listed events up to second `s`, the
/// seconds from `s` on (where new events appear) are read and applied before the older part of
/// the window, which is read again only for events written late: those are older by a whole
/// second than anything already applied, so the version gates order them.
pub(crate) async fn follow(
    ctx: &EventsCtx,
    mut cursor: EventsCursor,
    applied: &mut Applied,
) -> Result<(Counts, EventsCursor), ReadError> {
    let mut counts = Counts::new();
    let mut window = FIRST_WINDOW_SECS;
    loop {
        let read_at = ctx.client.server_now();
        if cursor.created > read_at {
            break;
        }
        // The server's clock is known to a second or two: ask up to a little past its now.
        let window_end = (cursor.created + window).min(read_at + 1 + CLOCK_SLACK_SECS);
        let reaches_present = window_end > read_at;
        let parts = match applied.newest_listed {
            Some(s) if reaches_present && s > cursor.created && s < window_end => {
                vec![(s, window_end), (cursor.created, s)]
            }
            _ => vec![(cursor.created, window_end)],
        };
        let mut read = WindowRead::new(&cursor);
        // Only a window read in one part is applied in time order, so only then does the cursor
        // move with the events applied.
        let in_order = parts.len() == 1;
        read.mid = in_order.then(|| MidWindow {
            from: cursor.clone(),
            read_at,
            saved_at: Instant::now(),
        });
        let mut complete = true;
        for (gte, lt) in parts {
            if !read.part(ctx, gte, lt, applied, &mut counts).await? {
                complete = false;
                break;
            }
        }
        if let Some(saved) = read.mid.take().map(|mid| mid.from) {
            cursor = saved;
        }
        if !complete {
            window = (window / 2).max(1);
            continue;
        }
        if reaches_present {
            applied.newest_listed = read.newest.or(applied.newest_listed);
        }
        // The cursor never passes the last few seconds, where events may still appear; the ids
        // of the events read at or after it are remembered instead.
        let created = cursor.created.max(window_end.min(read_at - LATENESS_SECS));
        let listed = read.listed;
        let advanced = EventsCursor {
            created,
            seen: read.seen_from(created),
        };
        if advanced != cursor {
            cursor = advanced;
            save_cursor(ctx, &cursor).await?;
        }
        if listed < MAX_WINDOW_EVENTS / 10 {
            window = (window * 2).min(RETENTION_SECS);
        }
        if reaches_present {
            break;
        }
    }
    Ok((counts, cursor))
}

async fn save_cursor(ctx: &EventsCtx, cursor: &EventsCursor) -> Result<(), ReadError> {
    let global = GlobalCheckpoint {
        account: Some(ctx.account.clone()),
        events_cursor: cursor.clone(),
        streams: ctx.streams.clone(),
    };
    ctx.output
        .state(SourceState::global(global.to_value()))
        .await?;
    Ok(())
}

/// The cursor of a window applied in time order, moved with the events applied.
struct MidWindow {
    /// The last cursor saved (the window's own at first).
    from: EventsCursor,
    /// The server's second the window was read at.
    read_at: i64,
    saved_at: Instant,
}

/// One window of events being read and applied, part by part.
struct WindowRead {
    /// The events processed at or after the cursor's second before this read.
    seen: HashSet<String>,
    /// Every event listed: its second and id.
    listed_ids: Vec<(i64, String)>,
    listed: usize,
    newest: Option<i64>,
    mid: Option<MidWindow>,
}

impl WindowRead {
    fn new(cursor: &EventsCursor) -> WindowRead {
        WindowRead {
            seen: cursor.seen.iter().cloned().collect(),
            listed_ids: Vec::new(),
            listed: 0,
            newest: None,
            mid: None,
        }
    }

    /// After the event of second `created` (and every event listed before it) was processed:
    /// saves the cursor past them when the last save is old enough. Events of the same second
    /// not yet processed are not among its seen ids, so a resumed run reads them.
    async fn save_mid_window(&mut self, ctx: &EventsCtx, created: i64) -> Result<(), ReadError> {
        let Some(mid) = &mut self.mid else {
            return Ok(());
        };
        if mid.saved_at.elapsed() < MID_WINDOW_EVERY {
            return Ok(());
        }
        let at = mid
            .from
            .created
            .max(created.min(mid.read_at - LATENESS_SECS));
        let mut seen: Vec<String> = self
            .listed_ids
            .iter()
            .filter(|(c, _)| *c >= at)
            .map(|(_, id)| id.clone())
            .collect();
        if at == mid.from.created {
            // Ids seen before at that second and not listed again yet stay seen.
            seen.extend(mid.from.seen.iter().cloned());
        }
        seen.sort();
        seen.dedup();
        let cursor = EventsCursor { created: at, seen };
        if cursor != mid.from {
            save_cursor(ctx, &cursor).await?;
            mid.from = cursor;
        }
        mid.saved_at = Instant::now();
        Ok(())
    }

    /// Reads the events created in `[gte, lt)` and applies them oldest first; false (nothing
    /// applied) when there are too many for one window.
    async fn part(
        &mut self,
        ctx: &EventsCtx,
        gte: i64,
        lt: i64,
        applied: &mut Applied,
        counts: &mut Counts,
    ) -> Result<bool, ReadError> {
        let Some(mut events) = read_window(&ctx.client, gte, lt).await? else {
            return Ok(false);
        };
        let catalog = stripe_catalog::catalog();
        // Newest first on the wire; oldest first to apply.
        events.reverse();
        self.listed += events.len();
        for raw in &events {
            let event = match serde_json::from_str::<Event<'_>>(raw.get()) {
                Ok(event) => event,
                Err(e) => {
                    // Listed by Stripe, so it is Stripe's shape that changed: said, then passed.
                    tracing::warn!("skipping {}", unreadable_event(raw.get(), &e));
                    continue;
                }
            };
            self.newest = self.newest.max(Some(event.created));
            self.listed_ids
                .push((event.created, event.id.clone().into_owned()));
            if self.seen.contains(event.id.as_ref())
                || !applied.ids.insert(&event.id, event.created)
            {
                continue;
            }
            let how = Apply {
                event: &event,
                raw_event: raw,
                pushed: false,
            };
            apply(ctx, catalog, how, counts, &mut applied.refetched).await?;
            self.save_mid_window(ctx, event.created).await?;
        }
        Ok(true)
    }

    /// The ids of the events listed at or after second `created`, sorted.
    fn seen_from(self, created: i64) -> Vec<String> {
        let mut seen: Vec<String> = self
            .listed_ids
            .into_iter()
            .filter(|(c, _)| *c >= created)
            .map(|(_, id)| id)
            .collect();
        seen.sort();
        seen.dedup();
        seen
    }
}

/// What became of one pushed event.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Taken {
    /// Its records were emitted.
    Applied,
    /// It was applied before (a redelivery).
    AlreadyApplied,
    /// It is not an event this source can read, and why (with its id when it has one).
    Unreadable(String),
    /// It is another account's or mode's event.
    NotOurs(NotOurs),
}

/// Why an event cannot be read, naming it by id when it has one.
fn unreadable_event(text: &str, e: &serde_json::Error) -> String {
    #[derive(serde::Deserialize)]
    struct Id {
        id: String,
    }
    match serde_json::from_str::<Id>(text) {
        Ok(Id { id }) => format!("event {id} is not readable: {e}"),
        Err(_) => format!("not a readable event: {e}"),
    }
}

/// Applies events pushed to the source (webhooks, given events) one at a time, exactly as the
/// events path applies the ones it lists.
#[derive(Default)]
pub(crate) struct Pushed {
    counts: Counts,
}

impl Pushed {
    /// Emits the records one event's JSON text carries, unless `applied` says it was applied
    /// already. An unreadable event is the caller's to refuse, so it is never lost unnoticed.
    pub(crate) async fn apply(
        &mut self,
        ctx: &EventsCtx,
        text: &str,
        applied: &mut Applied,
    ) -> Result<Taken, ReadError> {
        let raw: Box<RawValue> = match serde_json::from_str(text) {
            Ok(raw) => raw,
            Err(e) => return Ok(Taken::Unreadable(format!("not JSON: {e}"))),
        };
        let event = match serde_json::from_str::<Event<'_>>(raw.get()) {
            Ok(event) => event,
            Err(e) => return Ok(Taken::Unreadable(unreadable_event(raw.get(), &e))),
        };
        let origin = Origin {
            event: &event.id,
            account: event.account.as_deref(),
            livemode: event.livemode,
        };
        // Its records would be stamped with this source's account.
        if let Err(not_ours) = ctx.owner.admits(&origin) {
            return Ok(Taken::NotOurs(not_ours));
        }
        if !applied.ids.insert(&event.id, event.created) {
            return Ok(Taken::AlreadyApplied);
        }
        let how = Apply {
            event: &event,
            raw_event: &raw,
            pushed: true,
        };
        let catalog = stripe_catalog::catalog();
        apply(ctx, catalog, how, &mut self.counts, &mut applied.refetched).await?;
        Ok(Taken::Applied)
    }

    /// Records emitted per stream so far.
    pub(crate) fn counts(&self) -> &Counts {
        &self.counts
    }
}

/// All events created in `[gte, lt)`, newest first; `None` when there are too many for one window.
async fn read_window(
    client: &StripeClient,
    gte: i64,
    lt: i64,
) -> Result<Option<Vec<Box<RawValue>>>, ReadError> {
    let params = vec![
        ("created[gte]".to_owned(), gte.to_string()),
        ("created[lt]".to_owned(), lt.to_string()),
    ];
    let mut pager = Pager::new(client, "/v1/events".to_owned(), "/v1/events", params);
    let mut events = Vec::new();
    while let Some(page) = pager.next().await? {
        events.extend(page.data);
        if events.len() > MAX_WINDOW_EVENTS && lt - gte > 1 {
            return Ok(None);
        }
    }
    Ok(Some(events))
}

/// One event to apply.
struct Apply<'e, 'a> {
    event: &'e Event<'a>,
    raw_event: &'e RawValue,
    /// Pushed (a webhook): events may arrive in any order, so a later event of the same second
    /// for the same object cannot trust its snapshot.
    pushed: bool,
}

/// Emits the records one event carries: the event itself (`events` stream), its object, and the
/// object's nested lists, fetched in full when the payload truncates them.
async fn apply(
    ctx: &EventsCtx,
    catalog: &'static Catalog,
    how: Apply<'_, '_>,
    counts: &mut Counts,
    refetched: &mut Refetched,
) -> Result<(), ReadError> {
    let (event, raw_event) = (how.event, how.raw_event);
    if ctx.is_selected("events") {
        let data = stamp(raw_event, &ctx.account_id, event.created);
        ctx.emit("events", data, counts).await?;
    }
    let Some(data) = &event.data else {
        return Ok(());
    };
    let head = ObjectHead::of(data.object);
    let Some(object_type) = head.object_type.as_deref() else {
        return Ok(());
    };
    // Previews such as invoice.upcoming have no id: nothing to store.
    let Some(id) = head.id.as_deref() else {
        return Ok(());
    };
    let Some(resource) = catalog.by_object(object_type).filter(|r| !r.is_nested()) else {
        return Ok(());
    };
    let children: Vec<&'static Resource> = catalog
        .children_of(&resource.stream)
        .filter(|c| ctx.is_selected(&c.stream))
        .collect();
    let selected = ctx.is_selected(&resource.stream);
    if !selected && children.is_empty() {
        return Ok(());
    }
    if is_deletion(&event.kind, &head) {
        return apply_deletion(ctx, event, data.object, resource, &children, counts).await;
    }

    let mut streams: Vec<&str> = children.iter().map(|c| c.stream.as_str()).collect();
    streams.push(&resource.stream);
    let last = refetched.by_id.get(id).copied();
    let version = version_of(ctx, &how, last, &streams, &resource.stream);
    let current;
    let (object, observed_at): (&RawValue, i64) = match version {
        Version::AlreadyNewer => return Ok(()),
        Version::Snapshot => {
            let emitted = Emitted {
                stamp: event.created,
                ties_until: event.created,
                listed: !how.pushed,
            };
            refetched.remember(id, emitted);
            (data.object, event.created)
        }
        Version::Refetch => {
            match reread(ctx, resource, id, event.created, last, refetched).await? {
                Some((raw, read_at)) => {
                    current = raw;
                    if ObjectHead::of(&current).deleted {
                        // Gone since the event: its own deletion event follows.
                        if selected {
                            let data = tombstone(&current, &ctx.account_id, read_at);
                            ctx.emit(&resource.stream, data, counts).await?;
                        }
                        return Ok(());
                    }
                    (&*current, read_at)
                }
                None => (data.object, event.created),
            }
        }
    };
    if selected {
        let record = stamp(object, &ctx.account_id, observed_at);
        ctx.emit(&resource.stream, record, counts).await?;
    }
    for child in children {
        apply_to_children(ctx, event, data, object, observed_at, child, counts).await?;
    }
    Ok(())
}

/// Which version of the object one event stands for, given the last one this run emitted.
fn version_of(
    ctx: &EventsCtx,
    how: &Apply<'_, '_>,
    last: Option<Emitted>,
    streams: &[&str],
    stream: &str,
) -> Version {
    let created = how.event.created;
    match last {
        Some(last) if created < last.stamp => Version::AlreadyNewer,
        _ if ctx.revalidate.iter().any(|s| s == stream) => Version::Refetch,
        // The list's next event of the same second is newer than the list's last one.
        Some(last) if last.listed && !how.pushed => Version::Snapshot,
        Some(last) if created <= last.ties_until => Version::Refetch,
        _ if how.pushed && created <= ctx.pushed_trusted_after => Version::Refetch,
        _ if ctx.ties_a_listing(streams, created) => Version::Refetch,
        _ => Version::Snapshot,
    }
}

/// Reads an object again and remembers the version: read after the event arrived, it is at
/// least as new as the event and as what this run emitted before (`read_at` errs on the early
/// side by a second).
async fn reread(
    ctx: &EventsCtx,
    resource: &Resource,
    id: &str,
    created: i64,
    last: Option<Emitted>,
    refetched: &mut Refetched,
) -> Result<Option<(Box<RawValue>, i64)>, ReadError> {
    let Some((raw, read_at)) = refetch(ctx, resource, id).await? else {
        return Ok(None);
    };
    let stamp = read_at.max(created).max(last.map_or(i64::MIN, |l| l.stamp));
    let emitted = Emitted {
        stamp,
        ties_until: stamp + 1 + CLOCK_SLACK_SECS,
        listed: false,
    };
    refetched.remember(id, emitted);
    Ok(Some((raw, stamp)))
}

/// Reads an object again; `None` when it cannot be (no retrieve path, or gone: then the event's
/// snapshot stands until its deletion event).
async fn refetch(
    ctx: &EventsCtx,
    resource: &Resource,
    id: &str,
) -> Result<Option<(Box<RawValue>, i64)>, ReadError> {
    let Some(template) = &resource.retrieve_path else {
        return Ok(None);
    };
    let path = template.replace("{id}", id);
    match ctx.client.retrieve(&path, template).await {
        Ok(found) => Ok(Some(found)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Tombstones for a deleted object and for the items it embedded.
async fn apply_deletion(
    ctx: &EventsCtx,
    event: &Event<'_>,
    object: &RawValue,
    resource: &Resource,
    children: &[&'static Resource],
    counts: &mut Counts,
) -> Result<(), ReadError> {
    if ctx.is_selected(&resource.stream) {
        let data = tombstone(object, &ctx.account_id, event.created);
        ctx.emit(&resource.stream, data, counts).await?;
    }
    for child in children {
        let Some(link) = &child.parent else { continue };
        for item in embedded_items(object, &link.embedded_field) {
            let data = tombstone(&item, &ctx.account_id, event.created);
            ctx.emit(&child.stream, data, counts).await?;
        }
    }
    Ok(())
}

/// The current items of one nested stream of an object, and tombstones for the items the
/// event removed (Stripe lists the previous ones in `previous_attributes`).
async fn apply_to_children(
    ctx: &EventsCtx,
    event: &Event<'_>,
    data: &EventData<'_>,
    object: &RawValue,
    observed_at: i64,
    child: &'static Resource,
    counts: &mut Counts,
) -> Result<(), ReadError> {
    if child.parent.is_none() {
        return Ok(());
    }
    let current = children_of(&ctx.client, child, object).await?;
    let observed = current.fetched_at.unwrap_or(observed_at);
    let mut current_ids: HashSet<String> = HashSet::new();
    for item in &current.items {
        if let Some(id) = Head::of(item).id {
            current_ids.insert(id.into_owned());
        }
        let record = stamp(item, &ctx.account_id, observed);
        ctx.emit(&child.stream, record, counts).await?;
    }
    emit_removed(ctx, event, data, child, &current_ids, counts).await
}

/// Tombstones, stamped at the event, for the items the event's `previous_attributes` list that
/// `remaining` does not hold.
async fn emit_removed(
    ctx: &EventsCtx,
    event: &Event<'_>,
    data: &EventData<'_>,
    child: &'static Resource,
    remaining: &HashSet<String>,
    counts: &mut Counts,
) -> Result<(), ReadError> {
    let (Some(previous), Some(link)) = (data.previous_attributes, &child.parent) else {
        return Ok(());
    };
    for item in embedded_items(previous, &link.embedded_field) {
        let removed = Head::of(&item)
            .id
            .is_some_and(|id| !remaining.contains(id.as_ref()));
        if removed {
            let record = tombstone(&item, &ctx.account_id, event.created);
            ctx.emit(&child.stream, record, counts).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(json: &str) -> ObjectHead<'_> {
        let raw: &RawValue = serde_json::from_str(json).unwrap();
        ObjectHead::of(raw)
    }

    #[test]
    fn deletions() {
        assert!(is_deletion(
            "customer.deleted",
            &head(r#"{"object":"customer","id":"x"}"#)
        ));
        assert!(is_deletion(
            "customer.tax_id.deleted",
            &head(r#"{"object": "tax_id", "id": "x"}"#)
        ));
        assert!(
            !is_deletion(
                "customer.subscription.deleted",
                &head(r#"{"object":"subscription","id":"x"}"#)
            ),
            "a canceled subscription still exists"
        );
        assert!(!is_deletion(
            "customer.updated",
            &head(r#"{"object":"customer","id":"x"}"#)
        ));
        assert!(is_deletion(
            "product.updated",
            &head("{\n  \"object\": \"product\",\n  \"id\": \"x\",\n  \"deleted\": true\n}")
        ));
    }

    #[test]
    fn events_are_read_from_pretty_text() {
        let text = "{\n  \"id\": \"evt_1\",\n  \"object\": \"event\",\n  \"created\": 5,\n  \"data\": {\n    \"object\": {\n      \"id\": \"cus_1\"\n    },\n    \"previous_attributes\": null\n  },\n  \"type\": \"customer.updated\"\n}\n";
        let e: Event<'_> = serde_json::from_str(text).unwrap();
        assert_eq!(
            (e.id.as_ref(), e.created, e.kind.as_ref()),
            ("evt_1", 5, "customer.updated")
        );
        let data = e.data.unwrap();
        assert!(data.previous_attributes.is_none());
        assert_eq!(head(data.object.get()).id.as_deref(), Some("cus_1"));
    }

    #[test]
    fn cursor_expiry() {
        let c = EventsCursor {
            created: 1_000_000,
            seen: vec![],
        };
        assert!(!expired(&c, 1_000_000 + RETENTION_SECS));
        assert!(expired(&c, 1_000_001 + RETENTION_SECS));
    }
}
