//! What the pages' buttons do to the stack: `up` (all or one service), stop, restart. Each runs
//! under the project's lock, as the CLI's commands do, through the same domain calls.

use crate::data::{self, Reporters, Stores};
use crate::lock::ProjectLock;
use crate::reconcile::{self, UpOptions};
use crate::runtime;

use super::{Shared, WebError};

/// Takes the project's lock for `command` (named as `vibedev ls`/a waiting CLI shows it).
pub async fn lock(state: &Shared, command: &str) -> Result<ProjectLock, WebError> {
    let waiting = |_: Option<&crate::lock::Holder>| {};
    Ok(crate::lock::acquire(
        &state.stack.project,
        &format!("ui ({command})"),
        crate::lock::timeout_from_env(),
        &waiting,
    )
    .await?)
}

/// `vibedev up [SERVICE]`: reconcile, wait until ready, then migrate and seed what this run
/// created, as the command does. Says what changed.
pub async fn up(state: &Shared, services: Vec<String>) -> Result<String, WebError> {
    let _lock = lock(state, "up").await?;
    up_locked(state, services).await
}

async fn up_locked(state: &Shared, services: Vec<String>) -> Result<String, WebError> {
    let stack = &state.stack;
    stack
        .check_names(&services)
        .map_err(|e| WebError::BadRequest {
            what: e.to_string(),
        })?;
    let options = UpOptions {
        services,
        ..UpOptions::default()
    };
    let report: reconcile::Reporter = std::sync::Arc::new(|_| {});
    let outcomes = reconcile::up(&state.engine, stack, &options, report).await?;
    let stores = Stores::observe(&state.engine, stack).await?;
    data::after_up(
        &state.project,
        &stores,
        &reconcile::touched(&outcomes),
        &Reporters::silent(),
    )
    .await?;
    let changed: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.action.changed())
        .map(|o| o.service.as_str())
        .collect();
    Ok(if changed.is_empty() {
        "up: nothing to change, every service is ready".to_string()
    } else {
        format!("up: {} ready", changed.join(", "))
    })
}

/// Stops one service's container (kept, for `up` or start to start again).
pub async fn stop(state: &Shared, service: &str) -> Result<String, WebError> {
    let _lock = lock(state, "stop").await?;
    stop_locked(state, service).await?;
    Ok(format!("{service} stopped"))
}

async fn stop_locked(state: &Shared, service: &str) -> Result<(), WebError> {
    let spec = state
        .stack
        .services
        .iter()
        .find(|s| s.name == service)
        .ok_or_else(|| WebError::NotFound {
            what: format!("service {service}"),
        })?;
    let runtimes = runtime::observe(&state.engine, &state.stack).await?;
    let container = runtimes
        .iter()
        .find(|rt| rt.name == service)
        .and_then(|rt| rt.container.as_ref());
    if let Some(c) = container {
        let grace = i32::try_from(spec.stop_grace_secs).unwrap_or(i32::MAX);
        state.engine.stop_container(&c.id, grace).await?;
    }
    Ok(())
}

/// Stops a service and brings it up again (ready, as `up` waits for it).
pub async fn restart(state: &Shared, service: &str) -> Result<String, WebError> {
    let _lock = lock(state, "restart").await?;
    stop_locked(state, service).await?;
    up_locked(state, vec![service.to_string()]).await?;
    Ok(format!("{service} restarted"))
}
