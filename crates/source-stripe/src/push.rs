//! `read --input`: events pushed to the source (`source_input` messages: Stripe events, or raw
//! webhooks verified first) become records, exactly as the events path makes them; nothing is
//! listed and no cursor moves.

use std::collections::HashMap;
use std::sync::Arc;

use sync_connector::{ConnectorError, InputLines, Output};
use sync_protocol::{ConfiguredCatalog, Message, SourceStateSet};

use crate::account::Account;
use crate::client::StripeClient;
use crate::config::Config;
use crate::events::{Applied, Counts, EventsCtx, Pushed, Taken};
use crate::plan::Plan;
use crate::webhook::Verifier;

/// Where pushed events are applied: one account, or a platform's accounts each event names.
pub(crate) trait Applier {
    /// Applies one verified event's JSON text.
    async fn apply(&mut self, text: &str) -> Result<Taken, ConnectorError>;
    /// Records emitted per stream so far.
    fn counts(&self) -> &Counts;
}

/// One account's pushed events.
pub(crate) struct OneAccount {
    ctx: EventsCtx,
    pushed: Pushed,
    applied: Applied,
}

impl Applier for OneAccount {
    async fn apply(&mut self, text: &str) -> Result<Taken, ConnectorError> {
        self.pushed
            .apply(&self.ctx, text, &mut self.applied)
            .await
            .map_err(|e| e.ending("applying a pushed event"))
    }

    fn counts(&self) -> &Counts {
        self.pushed.counts()
    }
}

/// The context pushed events of `account` (the one `client` acts on) are applied in: its
/// streams and their generations as `state` holds them.
pub(crate) async fn pushed_ctx(
    client: Arc<StripeClient>,
    config: &Config,
    account: Account,
    catalog: &ConfiguredCatalog,
    state: &SourceStateSet,
    output: &Output,
) -> Result<EventsCtx, ConnectorError> {
    let plan = Plan::make(&client, config, account, catalog, state, output).await?;
    Ok(EventsCtx {
        output: output.clone(),
        account_id: plan.account.id.clone(),
        account: plan.mark.clone(),
        owner: plan.owner(config),
        streams: plan.generations.clone(),
        listed_until: HashMap::new(),
        pushed_trusted_after: client.first_answer_at(),
        revalidate: config.revalidate_objects.clone(),
        client,
    })
}

/// `read --input` of one account.
pub(crate) async fn read_input(
    config: Config,
    catalog: ConfiguredCatalog,
    state: SourceStateSet,
    input: InputLines,
    output: Output,
) -> Result<(), ConnectorError> {
    let client = Arc::new(StripeClient::new(&config).map_err(ConnectorError::config)?);
    let (catalog, state, account) =
        crate::platform::one_account(&config, &client, catalog, state, &output).await?;
    let ctx = pushed_ctx(client.clone(), &config, account, &catalog, &state, &output).await?;
    let mut one = OneAccount {
        ctx,
        pushed: Pushed::default(),
        applied: Applied::default(),
    };
    apply_input(&config, &client, input, &mut one).await
}

/// Applies every `source_input` line of `input` through `applier`: a raw webhook is verified
/// first; one refused is logged by line and skipped, never applied.
pub(crate) async fn apply_input(
    config: &Config,
    client: &StripeClient,
    mut input: InputLines,
    applier: &mut impl Applier,
) -> Result<(), ConnectorError> {
    let (mut taken, mut refused) = (0u64, 0u64);
    let secrets = config.webhook_secrets();
    while let Some(line) = input.next().await {
        let line = line.map_err(|e| ConnectorError::Usage(format!("--input: {e}")))?;
        let payload = match Message::from_slice(&line.bytes) {
            Ok(Message::SourceInput(payload)) => payload,
            Ok(other) => {
                tracing::warn!(
                    "--input line {}: a {} message, not source_input; skipped",
                    line.number,
                    other.message_type()
                );
                continue;
            }
            Err(e) => {
                return Err(ConnectorError::Usage(format!(
                    "--input line {}: {e}",
                    line.number
                )));
            }
        };
        let verifier = Verifier {
            secrets: &secrets,
            tolerance_secs: config.webhook_tolerance_secs,
            now: client.server_now(),
        };
        let text = match verifier.event_text(&payload) {
            Ok(text) => text,
            Err(e) => {
                refused += 1;
                tracing::warn!("--input line {}: refused: {e}", line.number);
                continue;
            }
        };
        match applier.apply(&text).await {
            Ok(Taken::Applied) => taken += 1,
            Ok(Taken::AlreadyApplied) => {}
            Ok(Taken::Unreadable(why)) => {
                refused += 1;
                tracing::warn!("--input line {}: refused: {why}", line.number);
            }
            Ok(Taken::NotOurs(why)) => {
                refused += 1;
                tracing::warn!("--input line {}: refused: {why}", line.number);
            }
            Err(e) => return Err(e),
        }
    }
    for (stream, n) in applier.counts() {
        tracing::info!(stream = %stream, records = n, "applied pushed events");
    }
    tracing::info!(events = taken, refused, "input done");
    Ok(())
}
