//! `read --input`: events pushed to the source (`source_input` messages: Stripe events, or raw
//! webhooks verified first) become records, exactly as the events path makes them; nothing is
//! listed and no cursor moves.

use std::collections::HashMap;
use std::sync::Arc;

use sync_connector::{ConnectorError, InputLines, Output};
use sync_protocol::{ConfiguredCatalog, Message, SourceStateSet};

use crate::client::StripeClient;
use crate::config::Config;
use crate::events::{Applied, EventsCtx, Pushed, Taken};
use crate::plan::Plan;
use crate::webhook::Verifier;

pub(crate) async fn read_input(
    config: Config,
    catalog: ConfiguredCatalog,
    state: SourceStateSet,
    mut input: InputLines,
    output: Output,
) -> Result<(), ConnectorError> {
    let client = Arc::new(StripeClient::new(&config).map_err(ConnectorError::config)?);
    let (catalog, state, account) =
        crate::platform::one_account(&config, &client, catalog, state, &output).await?;
    let plan = Plan::make(&client, &config, account, &catalog, &state, &output).await?;
    let ctx = EventsCtx {
        client: client.clone(),
        output: output.clone(),
        account_id: plan.account.id.clone(),
        account: plan.mark.clone(),
        owner: plan.owner(&config),
        streams: plan.generations.clone(),
        listed_until: HashMap::new(),
        pushed_trusted_after: client.first_answer_at(),
        revalidate: config.revalidate_objects.clone(),
    };
    let mut pushed = Pushed::default();
    let mut applied = Applied::default();
    let (mut taken, mut refused) = (0u64, 0u64);
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
            secret: config.webhook_secret.as_deref(),
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
        match pushed.apply(&ctx, &text, &mut applied).await {
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
            Err(e) => return Err(e.ending("applying a pushed event")),
        }
    }
    for (stream, n) in pushed.counts() {
        tracing::info!(stream = %stream, records = n, "applied pushed events");
    }
    tracing::info!(events = taken, refused, "input done");
    Ok(())
}
