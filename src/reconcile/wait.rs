//! Waiting for a service: until its check passes from the host (and it is prepared), its health
//! check when a dependant needs it healthy, or a one-shot job's end; failing fast when the
//! container exits, with its last log lines.

use std::time::{Duration, Instant};

use super::{Event, Reporter, UpError};
use crate::engine::Engine;
use crate::ready;
use crate::runtime::{self, Published};
use crate::services;
use crate::stack::{ServiceSpec, Stack};

/// Waits until the service is usable from the host (and prepared), failing fast when its
/// container exits, and with its last log lines when the deadline passes.
pub(super) async fn wait_ready(
    engine: &Engine,
    stack: &Stack,
    spec: &ServiceSpec,
    id: &str,
    report: &Reporter,
    http: &reqwest::Client,
) -> Result<Vec<String>, UpError> {
    let deadline = Instant::now() + spec.ready_timeout;
    let probe = async {
        let published = published_when_running(engine, spec, id, deadline).await?;
        runtime::forward_published(engine, &stack.project, &spec.name, &published)
            .await
            .map_err(|e| match std::error::Error::source(&e) {
                Some(cause) => format!("{e}: {cause}"),
                None => e.to_string(),
            })?;
        probe_until_ready(engine, stack, spec, id, &published, deadline, report, http).await
    };
    let exited = engine.watch_exit(id);
    let result = tokio::select! {
        r = probe => r.map_err(Failure::NotReady),
        end = exited => Err(match end {
            Ok(code) => Failure::Exited(code),
            // The engine went away: no log to fetch, nothing to wait for.
            Err(e) => return Err(UpError::Engine(e)),
        }),
    };
    match result {
        Ok(prepared) => Ok(prepared),
        Err(failure) => {
            let logs = engine.log_tail(id, 20).await;
            Err(match failure {
                Failure::NotReady(last) => UpError::NotReady {
                    service: spec.name.clone(),
                    secs: spec.ready_timeout.as_secs(),
                    last,
                    logs,
                },
                Failure::Exited(code) => UpError::Exited {
                    service: spec.name.clone(),
                    code,
                    logs,
                },
            })
        }
    }
}

enum Failure {
    NotReady(String),
    Exited(i64),
}

/// Waits until a one-shot job's container has exited: exit code 0 is success; anything else
/// fails `up` with the job's log. The service's ready timeout bounds the wait.
pub(super) async fn wait_completed(
    engine: &Engine,
    spec: &ServiceSpec,
    id: &str,
) -> Result<(), UpError> {
    let deadline = Instant::now() + spec.ready_timeout;
    let code = loop {
        if Instant::now() >= deadline {
            return Err(UpError::NotReady {
                service: spec.name.clone(),
                secs: spec.ready_timeout.as_secs(),
                last: "the job was still running (x-vibedev ready_timeout gives it longer)".into(),
                logs: engine.log_tail(id, 20).await,
            });
        }
        if let Some(code) = engine.completed(id).await? {
            break code;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    if code == 0 {
        return Ok(());
    }
    Err(UpError::JobFailed {
        service: spec.name.clone(),
        code,
        logs: engine.log_tail(id, 20).await,
    })
}

/// The container's published ports, once the engine reports them (only a running container
/// has them; an exited one is caught by the exit watcher racing this).
async fn published_when_running(
    engine: &Engine,
    spec: &ServiceSpec,
    id: &str,
    deadline: Instant,
) -> Result<Vec<Published>, String> {
    ready::retry_until(deadline, || async {
        let inspect = engine
            .inspect_container(id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "the container disappeared".to_string())?;
        let published = runtime::published_ports(engine, &inspect, spec);
        if published.len() < spec.ports.len() {
            return Err("the engine has not published the ports yet".to_string());
        }
        Ok(published)
    })
    .await
}

/// The service's own readiness, then its container's health check when a dependant waits for
/// it to be healthy.
#[allow(clippy::too_many_arguments)]
async fn probe_until_ready(
    engine: &Engine,
    stack: &Stack,
    spec: &ServiceSpec,
    id: &str,
    published: &[Published],
    deadline: Instant,
    report: &Reporter,
    http: &reqwest::Client,
) -> Result<Vec<String>, String> {
    let made = probe_service(engine, stack, spec, id, published, deadline, report, http).await?;
    if spec.wait_healthy {
        wait_healthy(engine, id, deadline).await?;
    }
    Ok(made)
}

/// Until the container's health check reports healthy.
async fn wait_healthy(engine: &Engine, id: &str, deadline: Instant) -> Result<(), String> {
    ready::retry_until(deadline, || engine.healthy(id)).await
}

#[allow(clippy::too_many_arguments)]
async fn probe_service(
    engine: &Engine,
    stack: &Stack,
    spec: &ServiceSpec,
    id: &str,
    published: &[Published],
    deadline: Instant,
    report: &Reporter,
    http: &reqwest::Client,
) -> Result<Vec<String>, String> {
    let addr = spec
        .probe_port
        .and_then(|port| published.iter().find(|p| p.container_port == port))
        .or_else(|| published.first())
        .map(|p| (p.host.clone(), p.host_port));
    let has_healthcheck = spec
        .healthcheck
        .as_ref()
        .is_some_and(|h| h.test.first().map(String::as_str) != Some("NONE"));
    // A kind's check (or a service's declared `x-vibedev` http check), else its container's
    // health check, else a TCP connect to its probe port.
    let made = match (&spec.wait, addr) {
        (Some(wait), Some((host, port))) => {
            let store = services::Store {
                service: &spec.name,
                host,
                port,
                settings: &spec.settings,
                gcp_project: &stack.gcp_project,
            };
            services::wait::until_ready(spec.kind, wait, &store, deadline, http).await?
        }
        (_, None) if spec.kind.is_some() => {
            return Err(format!(
                "{} has no published port to probe: add one under `ports:`",
                spec.name
            ));
        }
        _ if has_healthcheck => {
            wait_healthy(engine, id, deadline).await?;
            Vec::new()
        }
        (_, Some((host, port))) => {
            ready::retry_until(deadline, || ready::tcp_open(&host, port)).await?;
            Vec::new()
        }
        (_, None) => Vec::new(),
    };
    for what in &made {
        report(Event::Prepared {
            service: spec.name.clone(),
            what: what.clone(),
        });
    }
    Ok(made)
}
