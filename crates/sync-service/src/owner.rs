//! Whose a checkpoint is: what the pipeline's source reads and where its destination writes, as
//! text without secrets, with the same rule `sync-engine` derives a sync's identity by. A
//! checkpoint saved for one place is never resumed at another: a pipeline moved to another
//! account, key mode or API, or to another database or schema, starts over there.

use serde_json::{Map, Value};
use sync_engine_api::{ConnectorConfig, Engine, EngineError, PipelineRequest};
use sync_protocol::Role;

use crate::control::{Control, ControlError};
use crate::pipeline::Pipeline;
use sync_engine_client::AnyEngine;

pub use crate::checkpoint_owner::Owner;

impl Owner {
    /// The owner of the pipeline's checkpoint.
    pub async fn of(engine: &AnyEngine, p: &PipelineRequest) -> Result<Owner, EngineError> {
        Ok(Owner {
            source: side(engine, Role::Source, &p.source).await?,
            destination: side(engine, Role::Destination, &p.destination).await?,
        })
    }
}

/// A change of configs that leaves the checkpoint behind.
pub struct Move {
    /// Which side moved, from where to where.
    pub reason: String,
    /// The source moved: what waits in the webhook inbox is the old source's.
    pub source: bool,
}

/// Whether going from `before` to `after` moves the pipeline, and why.
pub async fn moved(
    engine: &AnyEngine,
    before: &PipelineRequest,
    after: &PipelineRequest,
) -> Result<Option<Move>, EngineError> {
    let source = side_moved(engine, Role::Source, &before.source, &after.source).await?;
    let destination = side_moved(
        engine,
        Role::Destination,
        &before.destination,
        &after.destination,
    )
    .await?;
    let moved_source = source.is_some();
    let reasons: Vec<String> = source.into_iter().chain(destination).collect();
    Ok((!reasons.is_empty()).then(|| Move {
        reason: reasons.join("; "),
        source: moved_source,
    }))
}

async fn side_moved(
    engine: &AnyEngine,
    role: Role,
    before: &ConnectorConfig,
    after: &ConnectorConfig,
) -> Result<Option<String>, EngineError> {
    let role_name = role.as_str();
    if before.name == after.name && before.config == after.config {
        // Unchanged (a PATCH of the status or streams): nothing to ask the engine.
        return Ok(None);
    }
    if before.name != after.name {
        return Ok(Some(format!(
            "the {role_name} changed from connector {} to {}",
            before.name, after.name
        )));
    }
    let (was, is) = (
        side(engine, role, before).await?,
        side(engine, role, after).await?,
    );
    Ok((was != is).then(|| format!("the {role_name} moved ({was} → {is})")))
}

/// What one side reads or where it writes, by `sync-engine`'s rule. Connectors other than
/// Stripe and Postgres say which of their settings change the data (their spec marks them
/// `x-sync-identity`), so their spec is asked of the engine.
async fn side(engine: &AnyEngine, role: Role, c: &ConnectorConfig) -> Result<String, EngineError> {
    let spec = match (role, c.name.as_str()) {
        (Role::Source, "stripe") | (Role::Destination, "postgres") => Value::Null,
        (_, name) => engine.spec(role, name).await?.config,
    };
    Ok(identity(role, &c.name, &c.config, &spec))
}

fn identity(role: Role, name: &str, config: &Map<String, Value>, spec: &Value) -> String {
    match role {
        Role::Source => sync_engine_runtime::source_identity(name, config, spec),
        Role::Destination => sync_engine_runtime::destination_identity(name, config, spec),
    }
}

impl Control {
    /// Records what a claimed checkpoint is written for, when that was not known (pipelines
    /// created before owners were kept, or never stepped).
    pub async fn adopt_owner(
        &self,
        id: &str,
        fence: i64,
        owner: &Owner,
    ) -> Result<(), ControlError> {
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "UPDATE sync_service.pipeline_state SET owner = $3
                 WHERE pipeline_id = $1 AND fence = $2",
                &[&id, &fence, &owner_json(Some(owner))],
            )
            .await?;
        fenced(id, n)
    }

    /// Records why streams of a claimed checkpoint start over (their tables were recreated,
    /// moved or emptied), as a reset of the checkpoint shows it.
    pub async fn note_table_resets(
        &self,
        id: &str,
        fence: i64,
        reason: &str,
    ) -> Result<(), ControlError> {
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "UPDATE sync_service.pipeline_state SET reset_at = now(), reset_reason = $3
                 WHERE pipeline_id = $1 AND fence = $2",
                &[&id, &fence, &reason],
            )
            .await?;
        fenced(id, n)
    }

    /// Empties a claimed checkpoint that was written for another place, saying why.
    pub async fn reset_for_owner(
        &self,
        id: &str,
        fence: i64,
        owner: &Owner,
        reason: &str,
    ) -> Result<(), ControlError> {
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "UPDATE sync_service.pipeline_state
                 SET state = '{}', owner = $3, reset_at = now(), reset_reason = $4,
                     updated_at = now()
                 WHERE pipeline_id = $1 AND fence = $2",
                &[&id, &fence, &owner_json(Some(owner)), &reason],
            )
            .await?;
        fenced(id, n)
    }

    /// Stores an update that moved the pipeline, in one transaction: the new configs, an empty
    /// checkpoint for the new place (claimed, so a step still running for the old place is
    /// fenced off at its next save), why; a ready pipeline is backfilling again. When the source
    /// moved, the webhook events still waiting are the old source's and are dropped. Returns
    /// the reason as recorded.
    pub async fn update_moved(
        &self,
        p: &Pipeline,
        owner: Option<&Owner>,
        moved: &Move,
    ) -> Result<String, ControlError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        if crate::control::write_pipeline(&*tx, p).await? == 0 {
            return Err(ControlError::NotFound(p.id.clone()));
        }
        tx.execute(
            "UPDATE sync_service.pipelines SET status = 'backfilling', updated_at = now()
             WHERE id = $1 AND status = 'ready'",
            &[&p.id],
        )
        .await?;
        let mut reason = format!(
            "{}: the checkpoint was reset, the next step reads everything into the new place",
            moved.reason
        );
        if moved.source {
            let dropped = tx
                .execute(
                    "DELETE FROM sync_service.webhook_inbox
                     WHERE pipeline_id = $1 AND applied_at IS NULL",
                    &[&p.id],
                )
                .await?;
            if dropped > 0 {
                reason.push_str(&format!(
                    "; {dropped} webhook event(s) of the old source, not applied yet, were dropped"
                ));
            }
        }
        tx.execute(
            "UPDATE sync_service.pipeline_state
             SET state = '{}', fence = fence + 1, owner = $2, reset_at = now(),
                 reset_reason = $3, updated_at = now()
             WHERE pipeline_id = $1",
            &[&p.id, &owner_json(owner), &reason],
        )
        .await?;
        tx.commit().await?;
        Ok(reason)
    }
}

fn owner_json(owner: Option<&Owner>) -> Option<Value> {
    owner.and_then(|o| serde_json::to_value(o).ok())
}

fn fenced(id: &str, changed: u64) -> Result<(), ControlError> {
    if changed == 0 {
        return Err(ControlError::Fenced(id.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_rotated_key_stays_and_another_mode_account_or_schema_moves() {
        let owner = |source: Value, destination: Value| Owner {
            source: identity(Role::Source, "stripe", &map(source), &Value::Null),
            destination: identity(
                Role::Destination,
                "postgres",
                &map(destination),
                &Value::Null,
            ),
        };
        let db = "postgres://app:pw1@db:5432/x";
        let first = owner(json!({"api_key": "sk_test_a"}), json!({"url": db}));
        let rotated = owner(
            json!({"api_key": "rk_test_b", "rate_limit": 5}),
            json!({"url": "postgres://app:pw2@db:5432/x", "schema": "stripe"}),
        );
        assert_eq!(first.moved_to(&rotated), None);
        for (moved, side) in [
            (
                owner(json!({"api_key": "sk_live_a"}), json!({"url": db})),
                "source",
            ),
            (
                owner(
                    json!({"api_key": "sk_test_a", "account_id": "acct_1"}),
                    json!({"url": db}),
                ),
                "source",
            ),
            (
                owner(
                    json!({"api_key": "sk_test_a"}),
                    json!({"url": db, "schema": "s2"}),
                ),
                "destination",
            ),
            (
                owner(
                    json!({"api_key": "sk_test_a"}),
                    json!({"url": "postgres://app@db/y"}),
                ),
                "destination",
            ),
        ] {
            let why = first.moved_to(&moved).unwrap_or_default();
            assert!(why.contains(&format!("the {side} moved")), "{why}");
            assert!(!why.contains("pw1") && !why.contains("sk_"), "{why}");
        }
    }
}
