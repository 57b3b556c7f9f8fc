//! `up` and `down` as a reconcile: compare the desired stack with what the engine has, act only on
//! the difference (create, recreate, start), pull what is missing first, bring services up in
//! parallel (ordered by `depends_on`), and wait until each is really usable from the host.
//! Progress goes out through a reporter callback; nothing here prints. This file decides and
//! orders; its steps live beside it (`images`, `preflight`, `create`, `wait`, `down`), its error
//! in `error`, and everything said to the engine goes through `engine/`.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tokio::sync::watch;

use crate::engine::containers::ContainerInfo;
use crate::engine::{Engine, EngineError};
use crate::stack::{Action, Mount, Observed, ServiceSpec, Stack, Step, Why, plan, start_order};

mod cancel;
mod create;
mod down;
mod error;
mod events;
mod images;
mod preflight;
mod wait;

pub use cancel::Cancel;
use create::create_and_start;
pub use down::{DownSummary, down};
pub use error::UpError;
pub use events::{Event, Reporter};
use images::{build_images, pull_missing, recreate_on_new_images};
pub use preflight::port_in_use;
use preflight::{preflight_mounts, preflight_ports};
use wait::{wait_completed, wait_ready};

/// What `up` did with a service.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub service: String,
    pub action: Step,
    pub ready_in: Duration,
    /// What was made inside the service once ready (`role vibesdk_app`, `bucket x`, ...).
    pub prepared: Vec<String>,
}

/// Whether `up` touched a service in this run: `Some(true)` when its container was created,
/// recreated or started, `Some(false)` when it was kept, `None` when it was not part of the run.
pub fn touched(outcomes: &[Outcome]) -> impl Fn(&str) -> Option<bool> + Sync {
    let steps: Vec<(String, bool)> = outcomes
        .iter()
        .map(|o| (o.service.clone(), o.action.changed()))
        .collect();
    move |service: &str| {
        steps
            .iter()
            .find(|(s, _)| s == service)
            .map(|(_, changed)| *changed)
    }
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
    let http = crate::ready::http_client();
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
            // The checkout is labelled on new volumes, so `vibedev ls` and `prune` can tell
            // where a stack that is down came from.
            let mut labels = vol.labels.clone();
            labels
                .entry(crate::engine::LABEL_CHECKOUT.to_string())
                .or_insert_with(|| stack.checkout.to_string_lossy().into_owned());
            let created = engine
                .ensure_volume(
                    &vol.name,
                    vol.driver.as_deref(),
                    &stack.project,
                    &vol.key,
                    &labels,
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
            match engine.start_container(&id).await {
                Ok(()) => id,
                // Gone since it was listed: the create of an interrupted run that the engine
                // was still undoing. Made anew.
                Err(e) if e.is_not_found() => {
                    create_and_start(engine, stack, spec, &mut turn, cancel).await?
                }
                Err(e) => return Err(failed("start")(e)),
            }
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
