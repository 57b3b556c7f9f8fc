//! `up` and `down` as a reconcile: compare the desired stack with what the engine has, act only on
//! the difference (create, recreate, start), pull what is missing first, bring services up in
//! parallel (ordered by `depends_on`), and wait until each is really usable from the host.
//! Progress goes out through a reporter callback; nothing here prints.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HostConfig, Mount as DockerMount,
    MountType, NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use futures_util::future::join_all;
use tokio::sync::watch;

use crate::engine::build::{BuildEvent, ContextError};
use crate::engine::containers::{ContainerFile, ContainerInfo};
use crate::engine::images::PullEvent;
use crate::engine::{
    Engine, EngineError, LABEL_HASH, LABEL_KIND, LABEL_PROJECT, LABEL_SERVICE, LABEL_VOLUME,
};
use crate::ports;
use crate::ready;
use crate::runtime::{self, Published};
use crate::services;
use crate::stack::{
    Action, Mount, Observed, ServiceSpec, Stack, Step, UnknownService, Why, plan, start_order,
};

/// What happened, as it happens.
#[derive(Debug, Clone)]
pub enum Event {
    PullStarted {
        image: String,
    },
    PullProgress {
        image: String,
        current: u64,
        total: u64,
    },
    PullStatus {
        image: String,
        status: String,
    },
    PullDone {
        image: String,
        elapsed: Duration,
    },
    /// The action chosen for a service (create, recreate, start, keep).
    Planned {
        service: String,
        action: &'static str,
    },
    Waiting {
        service: String,
    },
    /// Ready, after `action` (`keep` when nothing was changed).
    Ready {
        service: String,
        action: &'static str,
        elapsed: Duration,
    },
    /// Something prepared on a ready service (a role, a database, a bucket).
    Prepared {
        service: String,
        what: String,
    },
    OrphanRemoved {
        service: String,
    },
    /// A container of the project whose service left the stack, kept (`--remove-orphans`).
    OrphanKept {
        service: String,
    },
    /// Duplicate project networks were reduced to one, or a missing network is made again.
    NetworkRepaired {
        what: String,
    },
    /// A service's image is being built (`build:`).
    BuildStarted {
        service: String,
        image: String,
    },
    /// A line of a build's output.
    BuildOutput {
        service: String,
        line: String,
    },
    BuildDone {
        service: String,
        image: String,
        elapsed: Duration,
    },
    /// A missing bind-mount source folder was created, as Compose does.
    MountSourceCreated {
        service: String,
        path: std::path::PathBuf,
    },
    Removed {
        name: String,
    },
}

/// The reporter: called from many tasks, so it must be cheap and thread-safe.
pub type Reporter = Arc<dyn Fn(Event) + Send + Sync>;

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

/// What `up` did with a service.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub service: String,
    pub action: Step,
    pub ready_in: Duration,
    /// What was made inside the service once ready (`role vibesdk_app`, `bucket x`, ...).
    pub prepared: Vec<String>,
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

/// A cancellation signal for `up` (Ctrl-C): requests already sent to the engine finish, nothing
/// new starts, and waits end.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Option<watch::Receiver<bool>>);

impl Cancel {
    /// A signal and the sender that raises it.
    pub fn new() -> (watch::Sender<bool>, Cancel) {
        let (tx, rx) = watch::channel(false);
        (tx, Cancel(Some(rx)))
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.as_ref().is_some_and(|rx| *rx.borrow())
    }

    /// Resolves once cancelled (never, for the default signal).
    pub async fn cancelled(&self) {
        match &self.0 {
            Some(rx) => {
                let mut rx = rx.clone();
                if rx.wait_for(|c| *c).await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending().await,
        }
    }

    /// Fails with `Interrupted` when cancelled: called before each new request to the engine.
    fn check(&self) -> Result<(), UpError> {
        if self.is_cancelled() {
            Err(UpError::Interrupted)
        } else {
            Ok(())
        }
    }

    /// Runs `fut` unless cancelled first.
    async fn or_interrupted<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, UpError>>,
    ) -> Result<T, UpError> {
        tokio::select! {
            r = fut => r,
            _ = self.cancelled() => Err(UpError::Interrupted),
        }
    }
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
            engine.ensure_network(&stack.network, project_labels(&stack.project)),
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

/// Every host port a new or restarted container will bind must be free, or held by this
/// project's own container for that service. Checked before anything is created.
async fn preflight_ports(
    engine: &Engine,
    plans: &[(ServiceSpec, Action)],
    containers: &[ContainerInfo],
) -> Result<(), UpError> {
    let mut others: Option<Vec<bollard::models::ContainerSummary>> = None;
    let mut seen = BTreeSet::new();
    for (spec, action) in plans {
        if matches!(action, Action::Keep { .. }) {
            continue;
        }
        let own = containers.iter().find(|c| c.service == spec.name);
        for p in &spec.ports {
            let Some(port) = p.host_port.filter(|p| *p != 0) else {
                continue;
            };
            let host_ip = p.host_ip.clone().unwrap_or_default();
            if !seen.insert((host_ip.clone(), port, p.protocol.clone())) {
                return Err(UpError::PortInUse {
                    service: spec.name.clone(),
                    host_ip,
                    port,
                    holder: Some("another service of this stack".into()),
                });
            }
            if p.protocol != "tcp" || own.is_some_and(|c| c.public_ports.contains(&port)) {
                continue;
            }
            if ports::is_free(&host_ip, port) {
                continue;
            }
            if others.is_none() {
                others = Some(engine.all_containers().await.unwrap_or_default());
            }
            let holder = container_holding(others.as_deref().unwrap_or_default(), port)
                .or_else(|| ports::holder(port));
            return Err(UpError::PortInUse {
                service: spec.name.clone(),
                host_ip,
                port,
                holder,
            });
        }
    }
    Ok(())
}

/// Names the container publishing `port`, with its project when it has one.
pub fn container_holding(
    containers: &[bollard::models::ContainerSummary],
    port: u16,
) -> Option<String> {
    containers.iter().find_map(|c| {
        let publishes = c
            .ports
            .as_ref()?
            .iter()
            .any(|p| p.public_port == Some(port));
        if !publishes {
            return None;
        }
        let name = c
            .names
            .as_ref()?
            .first()?
            .trim_start_matches('/')
            .to_string();
        let labels = c.labels.clone().unwrap_or_default();
        let project = labels
            .get(LABEL_PROJECT)
            .map(|p| format!("vibedev project {p}"))
            .or_else(|| {
                labels
                    .get("com.docker.compose.project")
                    .map(|p| format!("compose project {p}"))
            });
        Some(match project {
            Some(p) => format!("container {name} ({p})"),
            None => format!("container {name}"),
        })
    })
}

/// Builds the images of the services with `build:` that need it: missing, built from other
/// files or settings than now (the hash label on the image), or `force`. A service that also
/// names `image:` is built only when that image is missing (or forced), as Compose does.
async fn build_images(
    engine: &Engine,
    services: &[ServiceSpec],
    force: bool,
    report: &Reporter,
) -> Result<(), UpError> {
    let mut built = BTreeSet::new();
    for spec in services {
        let Some(plan) = &spec.build else { continue };
        if !built.insert(plan.request.tag.clone()) {
            continue;
        }
        let existing = engine.image_build_hash(&plan.request.tag).await?;
        let present = existing.is_some() || engine.has_image(&plan.request.tag).await?;
        if plan.only_if_missing && present && !force {
            continue;
        }
        let request = plan.request.clone();
        let context = tokio::task::spawn_blocking(move || request.context())
            .await
            .map_err(|e| {
                UpError::Engine(EngineError::Context(ContextError::Read {
                    path: plan.request.context.clone(),
                    source: std::io::Error::other(e.to_string()),
                }))
            })?
            .map_err(|e| UpError::Engine(EngineError::Context(e)))?;
        if !force && existing.as_deref() == Some(context.hash.as_str()) {
            continue;
        }
        let start = Instant::now();
        report(Event::BuildStarted {
            service: spec.name.clone(),
            image: plan.request.tag.clone(),
        });
        let r = report.clone();
        let service = spec.name.clone();
        engine
            .build(&plan.request, context, &move |ev| match ev {
                BuildEvent::Output(line) => r(Event::BuildOutput {
                    service: service.clone(),
                    line,
                }),
            })
            .await?;
        report(Event::BuildDone {
            service: spec.name.clone(),
            image: plan.request.tag.clone(),
            elapsed: start.elapsed(),
        });
    }
    Ok(())
}

/// A container of a built service made from another image than the one its tag names now
/// (the image was rebuilt) is recreated.
async fn recreate_on_new_images(
    engine: &Engine,
    plans: Vec<(ServiceSpec, Action)>,
    containers: &[ContainerInfo],
) -> Result<Vec<(ServiceSpec, Action)>, UpError> {
    let mut out = Vec::with_capacity(plans.len());
    for (spec, action) in plans {
        let id = match &action {
            Action::Keep { id } | Action::Start { id } | Action::Unpause { id }
                if spec.build.is_some() =>
            {
                id.clone()
            }
            _ => {
                out.push((spec, action));
                continue;
            }
        };
        let current = engine.image_id(&spec.image).await?;
        let used = containers
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.image_id.clone());
        let action = match (current, used) {
            (Some(now), Some(then)) if now != then => Action::Recreate {
                id,
                why: Why::Image,
            },
            _ => action,
        };
        out.push((spec, action));
    }
    Ok(out)
}

/// Pulls every image a new container needs and the engine lacks, in parallel, before anything
/// is created: a pull that fails leaves the stack as it was.
async fn pull_missing(
    engine: &Engine,
    plans: &[(ServiceSpec, Action)],
    report: &Reporter,
) -> Result<(), UpError> {
    let images: BTreeSet<String> = plans
        .iter()
        .filter(|(s, _)| s.build.is_none())
        .filter(|(_, a)| matches!(a, Action::Create | Action::Recreate { .. }))
        .map(|(s, _)| s.image.clone())
        .collect();
    let pulls = images.into_iter().map(|image| async move {
        if engine.has_image(&image).await? {
            return Ok::<(), EngineError>(());
        }
        let start = Instant::now();
        report(Event::PullStarted {
            image: image.clone(),
        });
        let img = image.clone();
        let r = report.clone();
        engine
            .pull(&image, &move |ev| match ev {
                PullEvent::Progress { current, total } => r(Event::PullProgress {
                    image: img.clone(),
                    current,
                    total,
                }),
                PullEvent::Status(status) => r(Event::PullStatus {
                    image: img.clone(),
                    status,
                }),
            })
            .await?;
        report(Event::PullDone {
            image,
            elapsed: start.elapsed(),
        });
        Ok(())
    });
    for r in join_all(pulls).await {
        r?;
    }
    Ok(())
}

fn project_labels(project: &str) -> HashMap<String, String> {
    HashMap::from([(LABEL_PROJECT.to_string(), project.to_string())])
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
        .map(|vol| {
            let mut labels = project_labels(&stack.project);
            labels.insert(LABEL_VOLUME.to_string(), vol.key.clone());
            labels.extend(vol.labels.clone());
            async move {
                let created = engine
                    .ensure_volume(&vol.name, vol.driver.as_deref(), labels)
                    .await?;
                Ok::<_, EngineError>(created.then(|| vol.name.clone()))
            }
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

/// Bind-mount sources are checked before anything is created, where the engine runs on this
/// machine (a remote engine's paths are its own): a missing source folder is created, as Compose
/// does; a file mounted where the image declares a volume folder is refused.
async fn preflight_mounts(
    engine: &Engine,
    plans: &[(ServiceSpec, Action)],
    report: &Reporter,
) -> Result<(), UpError> {
    if !engine.is_local() {
        return Ok(());
    }
    for (spec, action) in plans {
        if !matches!(action, Action::Create | Action::Recreate { .. }) {
            continue;
        }
        let mut image_volumes: Option<Vec<String>> = None;
        for mount in &spec.mounts {
            let Mount::Bind { source, target, .. } = mount else {
                continue;
            };
            let mount_error = |problem: &str| UpError::Mount {
                service: spec.name.clone(),
                source_path: source.clone(),
                target: target.clone(),
                problem: problem.to_string(),
            };
            match std::fs::metadata(source) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::create_dir_all(source)
                        .map_err(|e| mount_error(&format!("cannot create the folder: {e}")))?;
                    report(Event::MountSourceCreated {
                        service: spec.name.clone(),
                        path: source.clone(),
                    });
                }
                Err(e) => return Err(mount_error(&e.to_string())),
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    if image_volumes.is_none() {
                        image_volumes = Some(engine.image_volumes(&spec.image).await);
                    }
                    let folder_in_image = target.ends_with('/')
                        || image_volumes
                            .as_deref()
                            .unwrap_or_default()
                            .iter()
                            .any(|v| v.trim_end_matches('/') == target.trim_end_matches('/'));
                    if folder_in_image {
                        return Err(mount_error(&format!(
                            "{} is a file, and {target} is a folder in image {}",
                            source.display(),
                            spec.image
                        )));
                    }
                }
            }
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

/// Creates the service's container and starts it when its turn comes. A container of that name
/// that appeared meanwhile (a concurrent or interrupted run) is reused when its spec matches. A
/// container created here that the engine will not start is removed again, so that no
/// half-made container is left behind.
async fn create_and_start(
    engine: &Engine,
    stack: &Stack,
    spec: &ServiceSpec,
    turn: &mut StartTurn<'_>,
    cancel: &Cancel,
) -> Result<String, UpError> {
    let hash = spec.config_hash();
    let failed = |action: &'static str, source: EngineError| UpError::Service {
        service: spec.name.clone(),
        action,
        reason: source.reason(),
        source: Box::new(source),
    };
    let name_in_use = |what: &str| {
        let source = EngineError::Api {
            action: format!("create container {}: {what}", spec.container_name),
            source: bollard::errors::Error::DockerResponseServerError {
                status_code: 409,
                message: "name in use".into(),
            },
        };
        UpError::Service {
            service: spec.name.clone(),
            action: "create",
            reason: format!(
                "the container name {} is in use: {what}",
                spec.container_name
            ),
            source: Box::new(source),
        }
    };
    // An interrupted run's create may still be finishing inside the engine: the name is then
    // reserved but the container not yet visible. Wait for it rather than fail.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut backoff = ready::Backoff::default();
    loop {
        cancel.check()?;
        if let Some(id) = engine
            .create_container(&spec.container_name, container_body(stack, spec, &hash))
            .await
            .map_err(|e| failed("create", e))?
        {
            // Interrupted while waiting for its turn: the container is removed, not left created.
            let turn_came = tokio::select! {
                _ = turn.before_start() => true,
                _ = cancel.cancelled() => false,
            };
            if !turn_came {
                let _ = engine.remove_container(&id, 0).await;
                return Err(UpError::Interrupted);
            }
            if let Err(e) = engine.put_files(&id, &container_files(spec)).await {
                let _ = engine.remove_container(&id, 0).await;
                return Err(failed("create", e));
            }
            if let Err(e) = engine.start_container(&id).await {
                if !e.is_connection_lost() {
                    let _ = engine.remove_container(&id, 0).await;
                }
                return Err(failed("start", e));
            }
            return Ok(id);
        }
        // The name is taken: by our own container (same spec: use it; older: replace it),
        // or by something vibedev did not create (never touched).
        if let Some(existing) = engine
            .inspect_container(&spec.container_name)
            .await
            .map_err(|e| failed("create", e))?
        {
            let labels = existing
                .config
                .as_ref()
                .and_then(|c| c.labels.clone())
                .unwrap_or_default();
            let id = existing.id.clone().unwrap_or_default();
            let ours =
                labels.get(LABEL_PROJECT).map(String::as_str) == Some(stack.project.as_str());
            if !ours {
                return Err(name_in_use(
                    "a container of that name exists without vibedev's labels; remove or rename it",
                ));
            }
            if labels.get(LABEL_HASH) == Some(&hash) {
                turn.before_start().await;
                engine
                    .start_container(&id)
                    .await
                    .map_err(|e| failed("start", e))?;
                return Ok(id);
            }
            engine
                .remove_container(&id, spec.stop_grace_secs as i32)
                .await
                .map_err(|e| failed("create", e))?;
            continue;
        }
        let delay = backoff.next_delay();
        if Instant::now() + delay >= deadline {
            return Err(name_in_use("the name stays reserved by the engine"));
        }
        tokio::time::sleep(delay).await;
    }
}

/// The secrets and configs written into the service's container before it starts.
fn container_files(spec: &ServiceSpec) -> Vec<ContainerFile> {
    spec.files
        .iter()
        .map(|f| ContainerFile {
            path: f.target.clone(),
            data: f.data.clone(),
            mode: f.mode,
            uid: f.uid,
            gid: f.gid,
        })
        .collect()
}

/// Compose's `restart:` as the engine's policy.
fn restart_policy(restart: Option<&str>) -> Option<RestartPolicy> {
    let (name, count) = match restart? {
        "always" => (RestartPolicyNameEnum::ALWAYS, None),
        "unless-stopped" => (RestartPolicyNameEnum::UNLESS_STOPPED, None),
        other => match other.strip_prefix("on-failure") {
            Some(rest) => (
                RestartPolicyNameEnum::ON_FAILURE,
                rest.strip_prefix(':').and_then(|n| n.parse().ok()),
            ),
            None => return None,
        },
    };
    Some(RestartPolicy {
        name: Some(name),
        maximum_retry_count: count,
    })
}

/// The engine's view of a service spec.
pub fn container_body(stack: &Stack, spec: &ServiceSpec, hash: &str) -> ContainerCreateBody {
    let mut labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
    labels.insert(LABEL_PROJECT.into(), stack.project.clone());
    labels.insert(LABEL_SERVICE.into(), spec.name.clone());
    labels.insert(LABEL_HASH.into(), hash.to_string());
    if let Some(kind) = spec.kind {
        labels.insert(LABEL_KIND.into(), kind.as_str().into());
    }
    let mut port_bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for p in &spec.ports {
        port_bindings
            .entry(format!("{}/{}", p.container_port, p.protocol))
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: p.host_ip.clone(),
                host_port: Some(p.host_port.unwrap_or(0).to_string()).filter(|h| h != "0"),
            });
    }
    let mounts = spec
        .mounts
        .iter()
        .map(|m| match m {
            Mount::Volume {
                name,
                target,
                read_only,
            } => DockerMount {
                target: Some(target.clone()),
                source: Some(name.clone()),
                typ: Some(MountType::VOLUME),
                read_only: Some(*read_only),
                ..Default::default()
            },
            Mount::Bind {
                source,
                target,
                read_only,
            } => DockerMount {
                target: Some(target.clone()),
                source: Some(source.to_string_lossy().into_owned()),
                typ: Some(MountType::BIND),
                read_only: Some(*read_only),
                ..Default::default()
            },
            Mount::Anonymous { target } => DockerMount {
                target: Some(target.clone()),
                typ: Some(MountType::VOLUME),
                ..Default::default()
            },
        })
        .collect();
    let tmpfs: HashMap<String, String> = spec
        .tmpfs
        .iter()
        .map(|t| match t.split_once(':') {
            Some((path, opts)) => (path.to_string(), opts.to_string()),
            None => (t.clone(), String::new()),
        })
        .collect();
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: spec.command.clone(),
        entrypoint: spec.entrypoint.clone(),
        env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(labels),
        hostname: Some(spec.name.clone()),
        user: spec.user.clone(),
        working_dir: spec.working_dir.clone(),
        stop_signal: spec.stop_signal.clone(),
        stop_timeout: Some(spec.stop_grace_secs as i64),
        exposed_ports: Some(port_bindings.keys().cloned().collect()),
        healthcheck: spec.healthcheck.as_ref().map(|h| HealthConfig {
            test: Some(h.test.clone()),
            interval: h.interval,
            timeout: h.timeout,
            retries: h.retries,
            start_period: h.start_period,
            start_interval: None,
        }),
        host_config: Some(HostConfig {
            port_bindings: Some(port_bindings),
            mounts: Some(mounts),
            tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
            network_mode: Some(stack.network.clone()),
            restart_policy: restart_policy(spec.restart.as_deref()),
            init: None,
            ..Default::default()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                stack.network.clone(),
                EndpointSettings {
                    aliases: Some(vec![spec.name.clone()]),
                    ..Default::default()
                },
            )])),
        }),
        ..Default::default()
    }
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
    let exited = watch_exit(engine, id);
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
        match engine.inspect_container(id).await? {
            Some(c) => {
                let state = c.state.unwrap_or_default();
                if state.running != Some(true) && state.restarting != Some(true) {
                    if state.status.map(|s| s.to_string()).as_deref() == Some("created") {
                        // Not started yet: nothing to wait for but the start.
                    } else {
                        break state.exit_code.unwrap_or(-1);
                    }
                }
            }
            None => break -1,
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

/// Resolves with the exit code once the container stops running, or with the error once the
/// engine has stopped answering (three checks in a row).
async fn watch_exit(engine: &Engine, id: &str) -> Result<i64, EngineError> {
    let mut lost = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        match engine.inspect_container(id).await {
            Ok(Some(c)) => {
                lost = 0;
                let state = c.state.unwrap_or_default();
                if state.running != Some(true) && state.restarting != Some(true) {
                    return Ok(state.exit_code.unwrap_or(-1));
                }
            }
            Ok(None) => return Ok(-1),
            Err(e) if e.is_connection_lost() => {
                lost += 1;
                if lost >= 3 {
                    return Err(e);
                }
            }
            // Other engine trouble: the probe's deadline still bounds the wait.
            Err(_) => {}
        }
    }
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

/// Until the container's health check reports healthy (one without a health check cannot be
/// waited for: a clear error, as Compose gives).
async fn wait_healthy(engine: &Engine, id: &str, deadline: Instant) -> Result<(), String> {
    ready::retry_until(deadline, || async {
        let c = engine
            .inspect_container(id)
            .await
            .map_err(|e| e.to_string())?;
        let has_check = c
            .as_ref()
            .and_then(|c| c.config.as_ref())
            .and_then(|c| c.healthcheck.as_ref())
            .and_then(|h| h.test.as_ref())
            .is_some_and(|t| t.first().map(String::as_str) != Some("NONE"));
        if !has_check {
            return Err(
                "another service waits for it to be healthy (service_healthy), but it has no healthcheck: add one under `healthcheck:`"
                    .to_string(),
            );
        }
        let health = c
            .and_then(|c| c.state)
            .and_then(|s| s.health)
            .and_then(|h| h.status)
            .map(|s| s.to_string())
            .unwrap_or_default();
        if health == "healthy" {
            Ok(())
        } else {
            Err(format!("health check says {health:?}"))
        }
    })
    .await
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

/// What `down` removed.
#[derive(Debug, Default)]
pub struct DownSummary {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
}

/// Stops and removes this project's containers and network (found by label only); with
/// `volumes`, also its volumes.
pub async fn down(
    engine: &Engine,
    project: &str,
    volumes: bool,
    report: Reporter,
) -> Result<DownSummary, EngineError> {
    let mut summary = DownSummary::default();
    let containers = engine.project_containers(project).await?;
    let removals = containers.iter().map(|c| {
        let report = report.clone();
        async move {
            engine.remove_container(&c.id, 10).await?;
            report(Event::Removed {
                name: c.name.clone(),
            });
            Ok::<_, EngineError>(c.name.clone())
        }
    });
    for r in join_all(removals).await {
        summary.containers.push(r?);
    }
    for net in engine.project_networks(project).await? {
        engine.remove_network(&net).await?;
        report(Event::Removed { name: net.clone() });
        summary.networks.push(net);
    }
    if volumes {
        for vol in engine.project_volumes(project).await? {
            engine.remove_volume(&vol.name).await?;
            report(Event::Removed {
                name: vol.name.clone(),
            });
            summary.volumes.push(vol.name);
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Project;
    use std::path::PathBuf;

    fn stack() -> Stack {
        let project = Project {
            root: PathBuf::from("/w"),
            config_path: None,
            file: Default::default(),
            name: "demo".into(),
        };
        Stack::resolve(&project).unwrap()
    }

    #[test]
    fn container_body_carries_labels_ports_and_volumes() {
        let s = stack();
        let pg = s.service("postgres").unwrap();
        let body = container_body(&s, pg, "abc");
        let labels = body.labels.clone().unwrap();
        assert_eq!(labels[LABEL_PROJECT], "demo");
        assert_eq!(labels[LABEL_SERVICE], "postgres");
        assert_eq!(labels[LABEL_HASH], "abc");
        assert!(
            labels
                .values()
                .all(|v| !v.contains("vibesdk-local") && !v.contains("postgres:postgres"))
        );
        let host = body.host_config.unwrap();
        let binding = &host.port_bindings.unwrap()["5432/tcp"].clone().unwrap()[0];
        assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(binding.host_port.as_deref(), Some("5432"));
        let mount = &host.mounts.unwrap()[0];
        assert_eq!(mount.source.as_deref(), Some("demo_pgdata"));
        assert_eq!(host.network_mode.as_deref(), Some("demo_default"));
    }

    #[test]
    fn engine_chosen_port_leaves_host_port_empty() {
        let mut s = stack();
        s.services[0].ports[0].host_port = None;
        let body = container_body(&s, &s.services[0], "h");
        let binding = &body.host_config.unwrap().port_bindings.unwrap()["5432/tcp"]
            .clone()
            .unwrap()[0];
        assert_eq!(binding.host_port, None);
    }
}
