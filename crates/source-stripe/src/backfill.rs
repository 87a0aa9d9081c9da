//! The backfill of one stream: every object that exists, read page by page with a state after
//! each page that points only at records already emitted.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use stripe_catalog::{Api, Resource};
use sync_connector::{Output, OutputClosed};
use sync_protocol::time::unix_to_rfc3339;
use sync_protocol::{JsonMap, Listing, ListingPhase, SourceState, StreamStatusKind, TimeRange};
use tokio::task::JoinSet;

use crate::children::children_of;
use crate::client::{Page, StripeClient};
use crate::error::{ReadError, StripeError};
use crate::events::CLOCK_SLACK_SECS;
use crate::pager::Pager;
use crate::ranges;
use crate::records::{Head, stamp};
use crate::state::{Generation, Range, Span, StreamCheckpoint};

const LIMIT: usize = 100;

/// Everything a stream's backfill needs.
pub(crate) struct StreamCtx {
    pub client: Arc<StripeClient>,
    pub output: Output,
    pub account_id: String,
    pub resource: &'static Resource,
    /// For a nested stream, the parent whose pages are walked.
    pub parent: Option<&'static Resource>,
    /// The backfill generation the stream's checkpoints carry.
    pub generation: Generation,
    pub backfill_limit: Option<u64>,
    pub max_concurrency: usize,
    /// Into how many ranges of equal time a stream not yet begun is cut before its first
    /// request: its share of what fills the account's rate, so the first round keeps the
    /// limit busy instead of waiting a round trip for each stream's density.
    pub first_pieces: usize,
    /// When a whole listing of this stream is to mark what it does not return: the rows it
    /// covers and those it cannot see (see `sync_protocol::Listing`).
    pub sweep: Option<Sweep>,
}

/// What a listing's fences say besides its id and phase.
#[derive(Debug, Clone)]
pub(crate) struct Sweep {
    pub scope: JsonMap,
    pub unlisted: JsonMap,
}

impl StreamCtx {
    fn stream(&self) -> &str {
        &self.resource.stream
    }

    /// The resource whose list is paged: the parent for a nested stream.
    fn listed(&self) -> &'static Resource {
        self.parent.unwrap_or(self.resource)
    }

    fn limit_reached(&self, emitted: u64) -> bool {
        self.backfill_limit.is_some_and(|l| emitted >= l)
    }

    async fn emit_state(&self, checkpoint: &StreamCheckpoint) -> Result<(), OutputClosed> {
        self.output
            .state(SourceState::stream(
                self.stream(),
                checkpoint.to_value(self.generation),
            ))
            .await
    }

    /// A state carrying a fence of listing `id`.
    async fn emit_fenced(
        &self,
        checkpoint: &StreamCheckpoint,
        sweep: &Sweep,
        id: &str,
        phase: ListingPhase,
    ) -> Result<(), OutputClosed> {
        let listing = Listing {
            id: id.to_owned(),
            phase,
            scope: sweep.scope.clone(),
            unlisted: sweep.unlisted.clone(),
        };
        self.output
            .state(SourceState::stream_with_listing(
                self.stream(),
                checkpoint.to_value(self.generation),
                listing,
            ))
            .await
    }

    async fn emit_records(&self, records: Vec<String>) -> Result<u64, ReadError> {
        let n = records.len() as u64;
        for data in records {
            self.output.raw_record(self.stream(), &data).await?;
        }
        Ok(n)
    }
}

/// Query parameters some lists need to return everything (subscriptions hide canceled ones).
fn base_params(resource: &Resource) -> Vec<(String, String)> {
    match resource.stream.as_str() {
        "subscriptions" => vec![("status".into(), "all".into())],
        _ => Vec::new(),
    }
}

/// The lists, one after another, that together return every object of a stream listed by
/// ranges, as each one's query parameters beyond [`base_params`]: prices are listed active ones
/// (all the list returns by default), then inactive ones.
fn passes(resource: &Resource) -> &'static [&'static [(&'static str, &'static str)]] {
    match resource.stream.as_str() {
        "prices" => &[&[], &[("active", "false")]],
        _ => &[&[]],
    }
}

/// The records of one listed page: the objects themselves, or for a nested stream every child
/// of every parent on the page.
async fn records_of_page(
    client: &StripeClient,
    account_id: &str,
    resource: &'static Resource,
    parent: Option<&'static Resource>,
    page: Page,
) -> Result<Vec<String>, StripeError> {
    let observed_at = page.server_time;
    if parent.is_none() {
        return Ok(page
            .data
            .iter()
            .map(|o| stamp(o, account_id, observed_at))
            .collect());
    }
    let fetches = page.data.iter().map(|p| children_of(client, resource, p));
    let children = futures_util::future::try_join_all(fetches).await?;
    Ok(children
        .iter()
        .flat_map(|c| {
            let observed = c.fetched_at.unwrap_or(observed_at);
            c.items
                .iter()
                .map(move |item| stamp(item, account_id, observed))
        })
        .collect())
}

/// What a finished backfill did.
pub(crate) struct Backfilled {
    /// Records emitted in this run.
    pub records: u64,
    /// See [`StreamCheckpoint::listed_until`].
    pub listed_until: Option<i64>,
}

/// Runs (or resumes) a stream's backfill to its end, then emits its complete checkpoint.
pub(crate) async fn run(
    ctx: Arc<StreamCtx>,
    checkpoint: StreamCheckpoint,
) -> Result<Backfilled, ReadError> {
    // A listing marks what it did not return only when this run may sweep too (its config may
    // have narrowed since the listing began).
    let fence = match (checkpoint.listing(), &ctx.sweep) {
        (Some(id), Some(sweep)) => Some((id.to_owned(), sweep.clone())),
        _ => None,
    };
    if let Some((id, sweep)) = &fence {
        ctx.emit_fenced(&checkpoint, sweep, id, ListingPhase::Started)
            .await?;
    }
    let listing = fence.as_ref().map(|(id, _)| id.clone());
    let (records, span) = match checkpoint {
        StreamCheckpoint::Complete { listed_until, .. } => {
            return Ok(Backfilled {
                records: 0,
                listed_until,
            });
        }
        StreamCheckpoint::Ranges {
            span,
            remaining,
            emitted,
            pass,
            ..
        } => (
            every_pass(&ctx, span, remaining, emitted, listing, pass).await?,
            Some(span),
        ),
        StreamCheckpoint::Sequential {
            cursor, emitted, ..
        } => (
            sequentially(ctx.clone(), cursor, emitted, listing).await?,
            None,
        ),
    };
    let listed_until = Some(ctx.client.server_now() + CLOCK_SLACK_SECS);
    let complete = StreamCheckpoint::Complete { span, listed_until };
    match &fence {
        // The listing reached its end (a listing that sweeps has no backfill_limit to stop it).
        Some((id, sweep)) => {
            ctx.emit_fenced(&complete, sweep, id, ListingPhase::Complete)
                .await?
        }
        None => ctx.emit_state(&complete).await?,
    }
    Ok(Backfilled {
        records,
        listed_until,
    })
}

/// Runs the ranges of `pass` and every later pass of the stream; the records emitted.
async fn every_pass(
    ctx: &Arc<StreamCtx>,
    span: Span,
    mut remaining: Vec<Range>,
    mut emitted: u64,
    listing: Option<String>,
    mut pass: u8,
) -> Result<u64, ReadError> {
    let mut records = 0;
    loop {
        let n = by_ranges(ctx.clone(), span, remaining, emitted, listing.clone(), pass).await?;
        records += n;
        emitted += n;
        let next = pass.saturating_add(1);
        if ctx.limit_reached(emitted) || usize::from(next) >= passes(ctx.listed()).len() {
            return Ok(records);
        }
        pass = next;
        remaining = vec![Range {
            gte: span.gte,
            lt: span.lt,
            cursor: None,
        }];
        // A run that stops from here on resumes with this pass, the previous one done.
        ctx.emit_state(&StreamCheckpoint::Ranges {
            span,
            remaining: remaining.clone(),
            emitted,
            listing: listing.clone(),
            pass,
        })
        .await?;
    }
}

/// The first checkpoint of a stream that has none; `listing` names it when what it does not
/// list is to be marked deleted.
pub(crate) fn fresh(
    resource: &Resource,
    parent: Option<&Resource>,
    span: Span,
    listing: Option<String>,
) -> StreamCheckpoint {
    let listed = parent.unwrap_or(resource);
    if listed.created_filter && listed.api == Api::V1 {
        StreamCheckpoint::Ranges {
            span,
            remaining: vec![Range {
                gte: span.gte,
                lt: span.lt,
                cursor: None,
            }],
            emitted: 0,
            listing,
            pass: 0,
        }
    } else {
        StreamCheckpoint::Sequential {
            cursor: None,
            emitted: 0,
            listing,
        }
    }
}

fn time_range(gte: i64, lt: i64) -> TimeRange {
    TimeRange {
        gte: unix_to_rfc3339(gte),
        lt: unix_to_rfc3339(lt),
    }
}

/// One fetched page of a range, its records ready to emit.
struct RangePage {
    range: Range,
    /// The pass it belongs to (see [`passes`]).
    pass: u8,
    /// `created` and id of the page's oldest (last) object.
    last: Option<(i64, String)>,
    has_more: bool,
    page_len: usize,
    records: Vec<String>,
}

async fn fetch_range(
    ctx: Arc<StreamCtx>,
    range: Range,
    pass: u8,
) -> Result<RangePage, StripeError> {
    let listed = ctx.listed();
    let mut params = base_params(listed);
    if let Some(extra) = passes(listed).get(usize::from(pass)) {
        params.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
    }
    params.push(("limit".into(), LIMIT.to_string()));
    params.push(("created[gte]".into(), range.gte.to_string()));
    params.push(("created[lt]".into(), range.lt.to_string()));
    if let Some(c) = &range.cursor {
        params.push(("starting_after".into(), c.clone()));
    }
    let page = ctx
        .client
        .list(&listed.list_path, &params, &listed.list_path)
        .await?;
    let last = page
        .data
        .last()
        .map(|o| Head::of(o))
        .and_then(|h| Some((h.created()?, h.id?.into_owned())));
    let (has_more, page_len) = (page.has_more, page.data.len());
    let records =
        records_of_page(&ctx.client, &ctx.account_id, ctx.resource, ctx.parent, page).await?;
    Ok(RangePage {
        range,
        pass,
        last,
        has_more,
        page_len,
        records,
    })
}

/// The ranges of a stream still to read, each with an id, in the order they are read.
#[derive(Default)]
struct RangeQueue {
    next_id: u64,
    outstanding: BTreeMap<u64, Range>,
    queue: VecDeque<u64>,
}

impl RangeQueue {
    fn push(&mut self, range: Range) {
        self.outstanding.insert(self.next_id, range);
        self.queue.push_back(self.next_id);
        self.next_id += 1;
    }

    /// The next range to fetch (it stays outstanding until [`RangeQueue::done`]).
    fn next(&mut self) -> Option<(u64, Range)> {
        let id = self.queue.pop_front()?;
        Some((id, self.outstanding[&id].clone()))
    }

    fn done(&mut self, id: u64) {
        self.outstanding.remove(&id);
    }

    fn remaining(&self) -> Vec<Range> {
        self.outstanding.values().cloned().collect()
    }
}

/// Backfill by `created` ranges, many pages in flight, ranges split by the density they show.
async fn by_ranges(
    ctx: Arc<StreamCtx>,
    span: Span,
    remaining: Vec<Range>,
    mut emitted: u64,
    listing: Option<String>,
    pass: u8,
) -> Result<u64, ReadError> {
    let mut ranges = RangeQueue::default();
    // A limited backfill reads newest first, from one range.
    let cut = emitted == 0 && pass == 0 && remaining.len() == 1 && ctx.backfill_limit.is_none();
    for range in remaining {
        if cut {
            ranges::even(&range, ctx.first_pieces)
                .into_iter()
                .for_each(|piece| ranges.push(piece));
        } else {
            ranges.push(range);
        }
    }
    let mut in_flight: JoinSet<(u64, Result<RangePage, StripeError>)> = JoinSet::new();
    let mut emitted_this_run = 0;
    loop {
        let concurrency = ctx
            .client
            .useful_concurrency()
            .min(ctx.max_concurrency)
            .max(1);
        while in_flight.len() < concurrency {
            let Some((id, range)) = ranges.next() else {
                break;
            };
            let task_ctx = ctx.clone();
            in_flight.spawn(async move { (id, fetch_range(task_ctx, range, pass).await) });
        }
        let Some(joined) = in_flight.join_next().await else {
            break;
        };
        let (id, result) = joined.map_err(|e| {
            StripeError::local(
                format!("a page task failed: {e}"),
                ctx.listed().list_path.clone(),
            )
        })?;
        let mut page = result?;
        ranges.done(id);
        let n = ctx.emit_records(std::mem::take(&mut page.records)).await?;
        emitted += n;
        emitted_this_run += n;
        follow_page(&ctx, &mut ranges, page, concurrency).await?;
        if ctx.limit_reached(emitted) {
            tracing::info!(stream = ctx.stream(), emitted, "backfill_limit reached");
            break;
        }
        let remaining = ranges.remaining();
        if !remaining.is_empty() {
            ctx.emit_state(&StreamCheckpoint::Ranges {
                span,
                remaining,
                emitted,
                listing: listing.clone(),
                pass,
            })
            .await?;
        }
    }
    in_flight.abort_all();
    Ok(emitted_this_run)
}

/// After a page: the rest of its range, cut by the density the page showed, is queued, and
/// what is known complete is reported.
async fn follow_page(
    ctx: &StreamCtx,
    ranges: &mut RangeQueue,
    page: RangePage,
    concurrency: usize,
) -> Result<(), ReadError> {
    let range = page.range;
    let complete = match (page.has_more, page.last) {
        (true, Some((oldest, cursor))) => {
            // Keep enough ranges queued to fill the pipe, no more.
            let room = (concurrency * 2).saturating_sub(ranges.outstanding.len());
            let pages = ranges::estimated_pages(&range, oldest, page.page_len.max(1), LIMIT).ceil()
                as usize;
            let pieces = ranges::remainder(&range, oldest, cursor, pages.clamp(1, room + 1));
            let rest_lt = pieces[pieces.len() - 1].lt;
            for piece in pieces {
                ranges.push(piece);
            }
            (rest_lt < range.lt).then(|| time_range(rest_lt, range.lt))
        }
        (true, None) => {
            // A page with more to come but no usable cursor: only re-reading would help.
            return Err(ReadError::Stripe(StripeError::local(
                "the list said has_more but its last object has no id or created time",
                format!("GET {}", ctx.listed().list_path),
            )));
        }
        (false, _) => Some(time_range(range.gte, range.lt)),
    };
    // Progress counts the stream's span once: by its first pass.
    if let Some(range_complete) = complete.filter(|_| page.pass == 0) {
        ctx.output
            .stream_status(
                ctx.stream(),
                StreamStatusKind::RangeComplete { range_complete },
            )
            .await?;
    }
    Ok(())
}

/// Backfill of a list without a time filter: one page after another.
async fn sequentially(
    ctx: Arc<StreamCtx>,
    cursor: Option<String>,
    mut emitted: u64,
    listing: Option<String>,
) -> Result<u64, ReadError> {
    let listed = ctx.listed();
    let mut pager = Pager::new(
        &ctx.client,
        listed.list_path.clone(),
        &listed.list_path,
        base_params(listed),
    );
    if listed.api == Api::V2 {
        pager = pager.v2();
    }
    let mut pager = pager.resume(cursor);
    let mut emitted_this_run = 0;
    while let Some(page) = pager.next().await? {
        let more = page.has_more;
        let records =
            records_of_page(&ctx.client, &ctx.account_id, ctx.resource, ctx.parent, page).await?;
        let n = ctx.emit_records(records).await?;
        emitted += n;
        emitted_this_run += n;
        if !more || ctx.limit_reached(emitted) {
            break;
        }
        ctx.emit_state(&StreamCheckpoint::Sequential {
            cursor: pager.cursor().cloned(),
            emitted,
            listing: listing.clone(),
        })
        .await?;
    }
    Ok(emitted_this_run)
}
