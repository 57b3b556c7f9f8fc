//! `up` and `down` as a reconcile: compare the desired stack with what the engine has, act only on
//! the difference (create, recreate, start), pull what is missing first, bring services up in
//! parallel (ordered by `depends_on`), and wait until each is really usable from the host.
//! Progress goes out through a reporter callback; nothing here prints. This file decides and
//! orders; its steps live beside it (`images`, `preflight`, `create`, `down`), and everything
//! said to the engine goes through `engine/`.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tokio::sync::watch;

use crate::engine::containers::ContainerInfo;
use crate::engine::{Engine, EngineError};
use crate::ready;
use crate::runtime::{self, Published};
use crate::services;
use crate::stack::{
    Action, Mount, Observed, ServiceSpec, Stack, Step, UnknownService, Why, plan, start_order,
};

mod cancel;
mod create;
mod down;
mod events;
mod images;
mod preflight;

pub use cancel::Cancel;
use create::create_and_start;
pub use down::{DownSummary, down};
pub use events::{Event, Reporter};
use images::{build_images, pull_missing, recreate_on_new_images};
pub use preflight::port_in_use;
use preflight::{preflight_mounts, preflight_ports};

/// Why `up` failed.
#[derive(Debug, thiserror::Error)]
pub enum UpError {
    #[error(transparent)]
    UnknownService(#[from] UnknownService),
    #[error("port {port} for service {service} is already in use on {host_ip}{}", holder.as_ref().map(|h| format!(" by {h}")).unwrap_or_default())]
    PortInUse {
        service: String,
        host_ip: String,
        port: u16,
        holder: Option<String>,
    },
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("{service} did not become ready within {secs} s: {last}")]
    NotReady {
        service: String,
        secs: u64,
        last: String,
        logs: Vec<String>,
    },
    #[error("{service} exited during startup (exit code {code})")]
    Exited {
        service: String,
        code: i64,
        logs: Vec<String>,
    },
    #[error("{service}, a one-shot job others wait for, exited with code {code}")]
    JobFailed {
        service: String,
        code: i64,
        logs: Vec<String>,
    },
    #[error("{service} was not started because {dependency} failed")]
    DependencyFailed { service: String, dependency: String },
    /// The engine refused to create or start a service's container; its reason, verbatim.
    #[error("cannot {action} {service}: {reason}")]
    Service {
        service: String,
        action: &'static str,
        reason: String,
        #[source]
        source: Box<EngineError>,
    },
    #[error("service {service}: cannot mount {source_path} at {target}: {problem}")]
    Mount {
        service: String,
        source_path: std::path::PathBuf,
        target: String,
        problem: String,
    },
    #[error("interrupted")]
    Interrupted,
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Several(Vec<UpError>),
}

impl UpError {
    pub fn hint(&self) -> Option<String> {
        match self {
            UpError::UnknownService(u) => {
                Some(format!("services of this stack: {}", u.known.join(", ")))
            }
            UpError::PortInUse { service, port, .. } => Some(format!(
                "stop what holds port {port}, or give {service} another host port in vibedev.toml: [services.{service}] ports = [\"<free port>:<container port>\"]"
            )),
            UpError::Engine(e) => e.hint(),
            UpError::JobFailed { service, .. } => Some(format!(
                "its log is above; fix what {service} runs, then `vibedev up` runs it again (a job that completed successfully is not run again until its settings change)"
            )),
            UpError::NotReady { service, .. } | UpError::Exited { service, .. } => Some(format!(
                "see the log lines above, or `vibedev logs {service}`; fix the service's settings and run `vibedev up` again"
            )),
            UpError::DependencyFailed { .. } | UpError::Interrupted => None,
            UpError::Service {
                service,
                reason,
                source,
                ..
            } => {
                if source.is_connection_lost() {
                    return source.hint();
                }
                Some(service_hint(service, reason))
            }
            UpError::Mount { service, .. } => Some(format!(
                "fix the mount under {service}'s `volumes:` in the compose file: mount a folder onto a folder, a file onto a file path"
            )),
            UpError::Several(errs) => errs.iter().find_map(|e| e.hint()),
        }
    }

    /// True when the engine itself went away (not a problem of one service).
    pub fn is_connection_lost(&self) -> bool {
        match self {
            UpError::Engine(e) => e.is_connection_lost(),
            UpError::Service { source, .. } => source.is_connection_lost(),
            UpError::Several(errs) => errs.iter().any(UpError::is_connection_lost),
            _ => false,
        }
    }

    /// Container log lines that explain the failure.
    pub fn log_lines(&self) -> Vec<(String, Vec<String>)> {
        match self {
            UpError::NotReady { service, logs, .. }
            | UpError::Exited { service, logs, .. }
            | UpError::JobFailed { service, logs, .. } => {
                vec![(service.clone(), logs.clone())]
            }
            UpError::Several(errs) => errs.iter().flat_map(|e| e.log_lines()).collect(),
            UpError::Engine(EngineError::Build { image, output, .. }) => {
                vec![(format!("the build of {image}"), output.clone())]
            }
            _ => Vec::new(),
        }
    }
}

/// The next step for a container the engine would not create or start, from its reason.
fn service_hint(service: &str, reason: &str) -> String {
    let r = reason.to_ascii_lowercase();
    if r.contains("port is already allocated") || r.contains("address already in use") {
        format!(
            "another process took one of {service}'s host ports meanwhile: stop it, or give {service} another host port ([services.{service}] ports in vibedev.toml)"
        )
    } else if r.contains("mount") || r.contains("not a directory") {
        format!(
            "check {service}'s `volumes:` in the compose file: a bind-mount source must exist and be a folder where the image has a folder, a file where it has a file"
        )
    } else if r.contains("no such image") {
        "the image disappeared meanwhile: run `vibedev up` again to pull it".to_string()
    } else {
        format!(
            "fix {service}'s settings in the compose file or vibedev.toml as the engine's reason says, then run `vibedev up` again"
        )
    }
}

/// What `up` did with a service.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub service: String,
    pub action: Step,
    pub ready_in: Duration,
    /// What was made inside the service once ready (`role vibesdk_app`, `bucket x`, ...).
    pub prepared: Vec<String>,
}

/// Options of one `up`.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// Only these services (and what they depend on); all when empty.
    pub services: Vec<String>,
    /// Remove the containers of services that left the stack (otherwise they are kept and
    /// reported).
    pub remove_orphans: bool,
    /// Set when the user interrupts: nothing new is sent to the engine, what it is doing is
    /// waited out.
    pub cancel: Cancel,
    /// Build every `build:` image again, changed or not (`up --build`).
    pub build: bool,
}

/// Brings the stack (or the named services) to the desired state and waits until it is ready.
pub async fn up(
    engine: &Engine,
    stack: &Stack,
    options: &UpOptions,
    report: Reporter,
) -> Result<Vec<Outcome>, UpError> {
    let cancel = &options.cancel;
    let selected: Vec<ServiceSpec> = stack
        .select(&options.services)?
        .into_iter()
        .cloned()
        .collect();
    cancel
        .or_interrupted(build_images(engine, &selected, options.build, &report))
        .await?;
    let containers = engine.project_containers(&stack.project).await?;
    // Duplicates left by concurrent runs are reduced to one here; their containers are then
    // planned for recreation on the network that is kept.
    let network = engine.find_network(&stack.network, &stack.project).await?;
    let plans: Vec<(ServiceSpec, Action)> = selected
        .into_iter()
        .map(|spec| {
            let observed = containers
                .iter()
                .find(|c| c.service == spec.name)
                .map(|c| Observed {
                    id: c.id.clone(),
                    hash: c.hash.clone(),
                    state: c.state.clone(),
                    networks: c.networks.clone(),
                    exit_code: c.exit_code,
                });
            let action = plan(
                &spec.config_hash(),
                observed.as_ref(),
                network.as_deref(),
                spec.job,
            );
            (spec, action)
        })
        .collect();
    let plans = recreate_on_new_images(engine, plans, &containers).await?;
    let cut_off: Vec<&str> = plans
        .iter()
        .filter(|(_, a)| {
            matches!(
                a,
                Action::Recreate {
                    why: Why::Network,
                    ..
                }
            )
        })
        .map(|(s, _)| s.name.as_str())
        .collect();
    if !cut_off.is_empty() {
        report(Event::NetworkRepaired {
            what: format!(
                "{} lost the project network {}: recreating {} on it",
                cut_off.join(", "),
                stack.network,
                if cut_off.len() == 1 { "it" } else { "them" }
            ),
        });
    }

    preflight_ports(engine, &plans, &containers).await?;
    preflight_mounts(engine, &plans, &report).await?;
    cancel
        .or_interrupted(pull_missing(engine, &plans, &report))
        .await?;
    cancel.check()?;

    let mut fresh_volumes = BTreeSet::new();
    let mut network_id = network.clone();
    if network.is_none() || plans.iter().any(|(_, a)| !matches!(a, Action::Keep { .. })) {
        // Independent of each other: one round of engine calls rather than one after another.
        let (network, volumes) = tokio::join!(
            engine.ensure_network(&stack.network, &stack.project),
            ensure_volumes(engine, stack, &plans)
        );
        network_id = Some(network?);
        fresh_volumes = volumes?;
    }
    // Containers join the network by its id: a duplicate name (an interrupted run's create landing
    // late) can never make their start ambiguous.
    let by_id;
    let stack = match network_id {
        Some(id) => {
            by_id = Stack {
                network: id,
                ..stack.clone()
            };
            &by_id
        }
        None => stack,
    };
    if options.services.is_empty() {
        orphans(engine, stack, &containers, options.remove_orphans, &report).await?;
    }

    // One readiness channel per service, so dependants start once what they need is ready.
    let mut senders = HashMap::new();
    let mut receivers = HashMap::new();
    for (spec, _) in &plans {
        let (tx, rx) = watch::channel(DepState::Pending);
        senders.insert(spec.name.clone(), tx);
        receivers.insert(spec.name.clone(), rx);
    }
    // Containers not started yet, per rank of the start order.
    let order = start_order(&plans, &fresh_volumes);
    let mut pending = vec![0usize; order.values().max().map_or(0, |r| r + 1)];
    for rank in order.values() {
        pending[*rank] += 1;
    }
    let (gate, _) = watch::channel(pending);
    let gate = &gate;
    let http = ready::http_client();
    let tasks = plans.into_iter().map(|(spec, action)| {
        let deps: Vec<(String, watch::Receiver<DepState>)> = spec
            .depends_on
            .iter()
            .filter_map(|d| receivers.get(d).map(|rx| (d.clone(), rx.clone())))
            .collect();
        let tx = senders.remove(&spec.name);
        let report = report.clone();
        let http = http.clone();
        let turn = StartTurn {
            rank: order.get(&spec.name).copied(),
            gate,
        };
        async move {
            let result = bring_up(
                engine, stack, &spec, action, deps, turn, &report, &http, cancel,
            )
            .await;
            if let Some(tx) = tx {
                let _ = tx.send(if result.is_ok() {
                    DepState::Ready
                } else {
                    DepState::Failed
                });
            }
            result
        }
    });
    let results = join_all(tasks).await;
    let mut outcomes = Vec::new();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(o) => outcomes.push(o),
            Err(UpError::DependencyFailed { .. }) if !errors.is_empty() => {}
            Err(UpError::Interrupted) => {}
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() && cancel.is_cancelled() {
        return Err(UpError::Interrupted);
    }
    match errors.len() {
        0 => Ok(outcomes),
        1 => Err(errors.remove(0)),
        _ => Err(UpError::Several(errors)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DepState {
    Pending,
    Ready,
    Failed,
}

/// A service's turn in the start order (see [`start_order`]).
struct StartTurn<'a> {
    /// None: the service starts when it is ready to (it waits for dependencies instead).
    rank: Option<usize>,
    /// Containers not started yet, per rank.
    gate: &'a watch::Sender<Vec<usize>>,
}

impl StartTurn<'_> {
    /// Waits until every service of a lower rank has started (or failed).
    async fn before_start(&mut self) {
        if let Some(rank) = self.rank {
            let mut rx = self.gate.subscribe();
            // An error means the gate is gone with `up` itself: nothing left to wait for.
            let _ = rx.wait_for(|p| p[..rank].iter().all(|n| *n == 0)).await;
        }
    }

    /// This service's container started: the next rank may go once its own have too.
    fn started(&mut self) {
        if let Some(rank) = self.rank.take() {
            self.gate.send_modify(|p| p[rank] -= 1);
        }
    }
}

impl Drop for StartTurn<'_> {
    /// A service that failed or was cancelled before starting frees its turn.
    fn drop(&mut self) {
        self.started();
    }
}

/// Creates the volumes the planned services mount; returns those created now.
async fn ensure_volumes(
    engine: &Engine,
    stack: &Stack,
    plans: &[(ServiceSpec, Action)],
) -> Result<BTreeSet<String>, UpError> {
    let used: BTreeSet<&str> = plans
        .iter()
        .flat_map(|(s, _)| &s.mounts)
        .filter_map(|m| match m {
            Mount::Volume { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let creates = stack
        .volumes
        .iter()
        .filter(|v| used.contains(v.name.as_str()) && !v.external)
        .map(|vol| async move {
            let created = engine
                .ensure_volume(
                    &vol.name,
                    vol.driver.as_deref(),
                    &stack.project,
                    &vol.key,
                    &vol.labels,
                )
                .await?;
            Ok::<_, EngineError>(created.then(|| vol.name.clone()))
        });
    let mut fresh = BTreeSet::new();
    for r in join_all(creates).await {
        fresh.extend(r?);
    }
    Ok(fresh)
}

/// Containers of this project whose service left the stack: kept and reported, or removed when
/// asked. Compose never removes them unasked either: a half-saved compose file must not cost data.
async fn orphans(
    engine: &Engine,
    stack: &Stack,
    containers: &[ContainerInfo],
    remove: bool,
    report: &Reporter,
) -> Result<(), UpError> {
    for c in containers {
        if stack.service(&c.service).is_some() {
            continue;
        }
        if remove {
            engine.remove_container(&c.id, 10).await?;
            report(Event::OrphanRemoved {
                service: c.service.clone(),
            });
        } else {
            report(Event::OrphanKept {
                service: c.service.clone(),
            });
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn bring_up(
    engine: &Engine,
    stack: &Stack,
    spec: &ServiceSpec,
    action: Action,
    deps: Vec<(String, watch::Receiver<DepState>)>,
    mut turn: StartTurn<'_>,
    report: &Reporter,
    http: &reqwest::Client,
    cancel: &Cancel,
) -> Result<Outcome, UpError> {
    for (dep, mut rx) in deps {
        let state = cancel
            .or_interrupted(async {
                Ok(rx
                    .wait_for(|s| *s != DepState::Pending)
                    .await
                    .map(|s| *s)
                    .unwrap_or(DepState::Failed))
            })
            .await?;
        if state == DepState::Failed {
            return Err(UpError::DependencyFailed {
                service: spec.name.clone(),
                dependency: dep,
            });
        }
    }
    cancel.check()?;
    let name = action.name();
    let action_step = action.step();
    report(Event::Planned {
        service: spec.name.clone(),
        action: name,
    });
    let start = Instant::now();
    let failed = |action: &'static str| {
        let service = spec.name.clone();
        move |source: EngineError| UpError::Service {
            service,
            action,
            reason: source.reason(),
            source: Box::new(source),
        }
    };
    let id = match action {
        Action::Keep { id } => id,
        Action::Unpause { id } => {
            engine
                .unpause_container(&id)
                .await
                .map_err(failed("unpause"))?;
            id
        }
        Action::Start { id } => {
            cancel
                .or_interrupted(async {
                    turn.before_start().await;
                    Ok(())
                })
                .await?;
            engine.start_container(&id).await.map_err(failed("start"))?;
            id
        }
        Action::Recreate { id, .. } => {
            engine
                .remove_container(&id, spec.stop_grace_secs as i32)
                .await
                .map_err(failed("remove the old container of"))?;
            create_and_start(engine, stack, spec, &mut turn, cancel).await?
        }
        Action::Create => create_and_start(engine, stack, spec, &mut turn, cancel).await?,
    };
    turn.started();
    report(Event::Waiting {
        service: spec.name.clone(),
    });
    let prepared = if spec.job {
        cancel
            .or_interrupted(wait_completed(engine, spec, &id))
            .await?;
        Vec::new()
    } else {
        cancel
            .or_interrupted(wait_ready(engine, stack, spec, &id, report, http))
            .await?
    };
    let elapsed = start.elapsed();
    report(Event::Ready {
        service: spec.name.clone(),
        action: name,
        elapsed,
    });
    Ok(Outcome {
        service: spec.name.clone(),
        action: action_step,
        ready_in: elapsed,
        prepared,
    })
}

/// Waits until the service is usable from the host (and prepared), failing fast when its
/// container exits, and with its last log lines when the deadline passes.
async fn wait_ready(
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
async fn wait_completed(engine: &Engine, spec: &ServiceSpec, id: &str) -> Result<(), UpError> {
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
    let made = match (spec.kind, &spec.wait, addr) {
        (Some(kind), Some(wait), Some((host, port))) => {
            let store = services::Store {
                service: &spec.name,
                host,
                port,
                settings: &spec.settings,
                gcp_project: &stack.gcp_project,
            };
            services::wait::until_ready(kind, wait, &store, deadline, http).await?
        }
        (Some(kind), _, None) => {
            return Err(format!(
                "{} has no published port to probe: add one under `ports:`",
                kind.as_str()
            ));
        }
        // A service of no known kind: its declared HTTP check, else its health check, else
        // a TCP connect to its probe port.
        (None, Some(wait), Some((host, port))) => {
            let settings = services::Settings::default();
            let store = services::Store {
                service: &spec.name,
                host,
                port,
                settings: &settings,
                gcp_project: &stack.gcp_project,
            };
            ready::retry_until(deadline, || async {
                services::wait::check(wait, &store, http)
                    .await
                    .map_err(|e| e.message)
            })
            .await?;
            Vec::new()
        }
        (None, _, _) if has_healthcheck => {
            wait_healthy(engine, id, deadline).await?;
            Vec::new()
        }
        (None, _, Some((host, port))) => {
            ready::retry_until(deadline, || ready::tcp_open(&host, port)).await?;
            Vec::new()
        }
        (None, _, None) => Vec::new(),
        (Some(_), None, Some(_)) => Vec::new(),
    };
    for what in &made {
        report(Event::Prepared {
            service: spec.name.clone(),
            what: what.clone(),
        });
    }
    Ok(made)
}
