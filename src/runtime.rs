//! The running stack as the engine reports it: each service's container, state, published ports,
//! and the connection facts derived from them (URLs, the variables `vibedev env` prints).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::engine::containers::{ContainerInfo, published_port};
use crate::engine::{Engine, EngineError, relay, ssh};
use crate::services::{self, Kind, Store};
use crate::stack::{ServiceSpec, Stack};

/// One service's container, as observed.
#[derive(Debug, Clone)]
pub struct ServiceRuntime {
    pub name: String,
    pub kind: Option<Kind>,
    pub container: Option<ContainerInfo>,
    /// The container's state, or `missing`.
    pub state: String,
    pub started_at: Option<DateTime<Utc>>,
    /// Published ports: (container port/protocol, client host, host port).
    pub published: Vec<Published>,
    /// True when the running container was built from the current spec.
    pub up_to_date: bool,
}

/// One published port.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Published {
    pub container_port: u16,
    pub protocol: String,
    pub host: String,
    pub host_port: u16,
    /// The address the engine bound on its own machine (differs from `host` when the engine is
    /// reached through forwards).
    #[serde(skip)]
    pub engine_host: String,
}

impl ServiceRuntime {
    pub fn running(&self) -> bool {
        self.state == "running"
    }

    /// Where a client reaches the service's probe port.
    pub fn probe_address(&self, spec: &ServiceSpec) -> Option<(String, u16)> {
        let port = spec.probe_port?;
        self.published
            .iter()
            .find(|p| p.container_port == port)
            .or_else(|| self.published.first())
            .map(|p| (p.host.clone(), p.host_port))
    }

    /// The service as a client reaches it from the host, when it publishes its probe port.
    pub fn store<'a>(&self, stack: &'a Stack, spec: &'a ServiceSpec) -> Option<Store<'a>> {
        let (host, port) = self.probe_address(spec)?;
        Some(Store {
            service: &spec.name,
            host,
            port,
            settings: &spec.settings,
            gcp_project: &stack.gcp_project,
        })
    }

    /// The connection URL (the kind's; `host:port` for others); a password only when asked.
    pub fn url(&self, stack: &Stack, spec: &ServiceSpec, with_password: bool) -> Option<String> {
        let store = self.store(stack, spec)?;
        Some(match spec.kind {
            Some(kind) => kind.url(&store, with_password),
            None => format!("{}:{}", store.url_host(), store.port),
        })
    }

    /// Seconds since the container started, when running.
    pub fn uptime(&self) -> Option<Duration> {
        if !self.running() {
            return None;
        }
        let started = self.started_at?;
        (Utc::now() - started).to_std().ok()
    }
}

/// One service's status; the JSON output is an array of these (a stable shape for scripts).
#[derive(Debug, Clone, serde::Serialize)]
pub struct StatusRow {
    pub service: String,
    pub kind: Option<String>,
    pub state: String,
    pub ready: bool,
    pub ports: Vec<Published>,
    /// The connection URL (Postgres without its password; `vibedev env` has the full one).
    pub url: Option<String>,
    pub uptime_seconds: Option<u64>,
    pub image: String,
    pub container: Option<String>,
    /// False when the container was built from older settings (`vibedev up` recreates it).
    pub up_to_date: bool,
}

/// Status rows from observed runtimes and readiness results.
pub fn status_rows(stack: &Stack, runtimes: &[ServiceRuntime], ready: &[bool]) -> Vec<StatusRow> {
    stack
        .services
        .iter()
        .zip(runtimes)
        .zip(ready)
        // A service whose profiles are all off, and that has no container, is not part of the
        // running stack.
        .filter(|((spec, rt), _)| stack.enabled(spec) || rt.container.is_some())
        .map(|((spec, rt), ready)| StatusRow {
            service: spec.name.clone(),
            kind: spec.kind.map(|k| k.as_str().to_string()),
            state: rt.state.clone(),
            // A one-shot job is ready once it has completed successfully.
            ready: if spec.job {
                rt.state == "exited" && rt.container.as_ref().and_then(|c| c.exit_code) == Some(0)
            } else {
                *ready && rt.running()
            },
            ports: rt.published.clone(),
            url: rt.running().then(|| rt.url(stack, spec, false)).flatten(),
            uptime_seconds: rt.uptime().map(|d| d.as_secs()),
            image: spec.image.clone(),
            container: rt.container.as_ref().map(|c| c.name.clone()),
            up_to_date: rt.up_to_date,
        })
        .collect()
}

/// Observes every service of the stack.
pub async fn observe(engine: &Engine, stack: &Stack) -> Result<Vec<ServiceRuntime>, EngineError> {
    let containers = engine.project_containers(&stack.project).await?;
    let mut out = Vec::new();
    for spec in &stack.services {
        let container = containers.iter().find(|c| c.service == spec.name).cloned();
        let mut rt = ServiceRuntime {
            name: spec.name.clone(),
            kind: spec.kind,
            state: container
                .as_ref()
                .map_or_else(|| "missing".to_string(), |c| c.state.clone()),
            up_to_date: container
                .as_ref()
                .is_some_and(|c| c.hash == spec.config_hash()),
            container,
            started_at: None,
            published: Vec::new(),
        };
        if let Some(c) = &rt.container
            && let Some(inspect) = engine.inspect_container(&c.id).await?
        {
            rt.started_at = inspect
                .state
                .as_ref()
                .and_then(|s| s.started_at.as_deref())
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|d| d.with_timezone(&Utc));
            rt.published = published_ports(engine, &inspect, spec);
        }
        out.push(rt);
    }
    Ok(out)
}

/// The spec's ports as the engine published them.
pub fn published_ports(
    engine: &Engine,
    inspect: &bollard::models::ContainerInspectResponse,
    spec: &ServiceSpec,
) -> Vec<Published> {
    spec.ports
        .iter()
        .filter_map(|p| {
            let (ip, port) = published_port(inspect, p.container_port, &p.protocol)?;
            Some(Published {
                container_port: p.container_port,
                protocol: p.protocol.clone(),
                host: engine.client_host(&ip),
                host_port: port,
                engine_host: ip,
            })
        })
        .collect()
}

/// For an engine reached over SSH, or a `tcp://` engine on another host whose ports are relayed
/// (opt-in): forwards the service's published TCP ports to the same ports on 127.0.0.1 of this
/// machine (nothing to do otherwise). Over SSH the engine keeps binding where the stack says (its
/// own 127.0.0.1 by default); the relay needs an address of the engine's host this machine reaches.
pub async fn forward_published(
    engine: &Engine,
    project: &str,
    service: &str,
    published: &[Published],
) -> Result<(), EngineError> {
    let tcp = published.iter().filter(|p| p.protocol == "tcp");
    if let Some(tunnel) = &engine.tunnel {
        let forwards: Vec<ssh::Forward> = tcp
            .map(|p| ssh::Forward {
                service: service.to_string(),
                port: p.host_port,
                remote_host: match p.engine_host.as_str() {
                    "" | "0.0.0.0" => "127.0.0.1".to_string(),
                    "::" => "::1".to_string(),
                    ip => ip.to_string(),
                },
            })
            .collect();
        if forwards.is_empty() {
            return Ok(());
        }
        return tunnel
            .forward(project, &forwards)
            .await
            .map_err(|source| EngineError::Ssh {
                endpoint: engine.endpoint.clone(),
                source: Box::new(source),
            });
    }
    let Some(relay) = engine.relaying() else {
        return Ok(());
    };
    let relay_error = |source| EngineError::Relay {
        endpoint: engine.endpoint.clone(),
        source: Box::new(source),
    };
    let forwards = tcp
        .map(|p| {
            Ok(ssh::Forward {
                service: service.to_string(),
                port: p.host_port,
                remote_host: relay.target(service, &p.engine_host, p.host_port)?,
            })
        })
        .collect::<Result<Vec<_>, relay::RelayError>>()
        .map_err(relay_error)?;
    if forwards.is_empty() {
        return Ok(());
    }
    relay.forward(project, &forwards).await.map_err(relay_error)
}

/// The project's forwards on an engine reached over SSH, or relayed from a `tcp://` engine
/// (`None` for any other engine, and for a `tcp://` engine that relays nothing and is not asked to).
pub async fn forwards_state(engine: &Engine, project: &str) -> Option<ssh::ForwardsState> {
    if let Some(tunnel) = &engine.tunnel {
        return Some(tunnel.state(project).await);
    }
    let state = engine.relay.as_ref()?.state(project).await;
    (engine.forward || state != ssh::ForwardsState::None).then_some(state)
}

/// Ends the project's forwards on an engine reached over SSH, and the connection itself when
/// no other project uses it (true when the connection was ended); ends the project's relay of
/// a `tcp://` engine's ports, whether or not forwarding is still asked for.
pub async fn end_forwards(engine: &Engine, project: &str) -> Result<bool, EngineError> {
    if let Some(relay) = &engine.relay {
        relay
            .end(project)
            .await
            .map_err(|source| EngineError::Relay {
                endpoint: engine.endpoint.clone(),
                source: Box::new(source),
            })?;
        return Ok(false);
    }
    let Some(tunnel) = &engine.tunnel else {
        return Ok(false);
    };
    tunnel
        .end(project)
        .await
        .map_err(|source| EngineError::Ssh {
            endpoint: engine.endpoint.clone(),
            source: Box::new(source),
        })
}

/// A line on the project's forwards for `status` and `env`, and whether they are down.
pub fn describe_forwards(engine: &Engine, state: &ssh::ForwardsState) -> Option<(String, bool)> {
    let ports = |forwards: &[ssh::Forward]| {
        forwards
            .iter()
            .map(|f| format!("{} {}", f.service, f.port))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(tunnel) = &engine.tunnel {
        let target = tunnel.target.display();
        return Some(match state {
            ssh::ForwardsState::None => (
                format!("no ports forwarded from {target} (`vibedev up` forwards them)"),
                false,
            ),
            ssh::ForwardsState::Up { pid, forwards } => (
                format!(
                    "forwarded to 127.0.0.1 over ssh to {target} (ssh PID {pid}): {}",
                    ports(forwards)
                ),
                false,
            ),
            ssh::ForwardsState::Down { forwards } => (
                format!(
                    "the SSH connection to {target} that forwarded {} dropped: run `vibedev up` to forward them again",
                    ports(forwards)
                ),
                true,
            ),
        });
    }
    let host = &engine.relay.as_ref()?.host;
    Some(match state {
        ssh::ForwardsState::None => (
            format!("no ports relayed from {host} (`vibedev up` relays them)"),
            false,
        ),
        ssh::ForwardsState::Up { pid, forwards } => (
            format!(
                "relayed to 127.0.0.1 from {host} (relay PID {pid}): {}",
                ports(forwards)
            ),
            false,
        ),
        ssh::ForwardsState::Down { forwards } => (
            format!(
                "the relay of {} from {host} is not running: run `vibedev up` to start it again",
                ports(forwards)
            ),
            true,
        ),
    })
}

/// One quick readiness check (no retries), for `status`: the same check `up` waits on.
pub async fn probe_once(
    stack: &Stack,
    spec: &ServiceSpec,
    rt: &ServiceRuntime,
    http: &reqwest::Client,
) -> bool {
    if !rt.running() {
        return false;
    }
    // Ports the spec publishes but the engine does not (the container lost its network): not
    // reachable, whatever runs inside.
    if rt.published.len() < spec.ports.len() {
        return false;
    }
    let Some(store) = rt.store(stack, spec) else {
        // Nothing published to probe: running is all that can be said.
        return true;
    };
    let wait = spec.wait.clone().unwrap_or(services::WaitFor::Tcp);
    services::wait::is_ready(&wait, &store, http).await
}

/// The connection variables for the app, from the running services (each kind's variables from
/// the first running service of that kind) and `GOOGLE_CLOUD_PROJECT`, sorted by name.
pub fn connection_env(stack: &Stack, runtimes: &[ServiceRuntime]) -> Vec<(String, String)> {
    let mut env = vec![(
        "GOOGLE_CLOUD_PROJECT".to_string(),
        stack.gcp_project.clone(),
    )];
    let mut seen: Vec<Kind> = Vec::new();
    for (spec, rt) in stack.services.iter().zip(runtimes) {
        let Some(kind) = spec.kind else { continue };
        if !rt.running() || seen.contains(&kind) {
            continue;
        }
        if let Some(store) = rt.store(stack, spec) {
            seen.push(kind);
            env.extend(kind.connection_env(&store));
        }
    }
    env.sort();
    env
}

/// A deadline `d` from now.
pub fn deadline(d: Duration) -> Instant {
    Instant::now() + d
}
