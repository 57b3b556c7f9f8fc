//! The running stack as the engine reports it: each service's container, state, published ports,
//! and the connection facts derived from them (URLs, the variables `vibedev env` prints).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::engine::containers::{ContainerInfo, published_port};
use crate::engine::{Engine, EngineError};
use crate::ready;
use crate::stack::{Kind, ServiceSpec, Stack};

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

    /// The connection URL; for Postgres the password is included only when asked for.
    pub fn url(&self, spec: &ServiceSpec, with_password: bool) -> Option<String> {
        let (host, port) = self.probe_address(spec)?;
        let host = bracket(&host);
        Some(match spec.kind {
            Some(Kind::Postgres) => {
                let app = spec.postgres.as_ref()?;
                let auth = if with_password {
                    format!("{}:{}", encode(&app.user), encode(&app.password))
                } else {
                    encode(&app.user)
                };
                format!("postgres://{auth}@{host}:{port}/{}", encode(&app.database))
            }
            Some(Kind::Redis) => format!("redis://{host}:{port}"),
            Some(Kind::Firestore) | Some(Kind::Gcs) => format!("http://{host}:{port}"),
            None => format!("{host}:{port}"),
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

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Percent-encodes the characters that would break a URL's userinfo or path.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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
            })
        })
        .collect()
}

/// One quick readiness check (no retries), for `status`.
pub async fn probe_once(spec: &ServiceSpec, rt: &ServiceRuntime, http: &reqwest::Client) -> bool {
    if !rt.running() {
        return false;
    }
    // Ports the spec publishes but the engine does not (the container lost its network): not
    // reachable, whatever runs inside.
    if rt.published.len() < spec.ports.len() {
        return false;
    }
    let Some((host, port)) = rt.probe_address(spec) else {
        // Nothing published to probe: running is all that can be said.
        return true;
    };
    let check = async {
        match spec.kind {
            Some(Kind::Postgres) => match &spec.postgres {
                Some(app) => {
                    ready::postgres_select1(&host, port, &app.user, &app.password, &app.database)
                        .await
                        .is_ok()
                }
                None => false,
            },
            Some(Kind::Redis) => ready::redis_ping(&host, port).await.is_ok(),
            Some(Kind::Firestore) => ready::http_ok(
                http,
                &format!("http://{}:{port}/", bracket(&host)),
                Some("Ok"),
            )
            .await
            .is_ok(),
            Some(Kind::Gcs) => ready::http_ok(
                http,
                &format!("http://{}:{port}/storage/v1/b", bracket(&host)),
                None,
            )
            .await
            .is_ok(),
            None => ready::tcp_open(&host, port).await.is_ok(),
        }
    };
    tokio::time::timeout(Duration::from_secs(3), check)
        .await
        .unwrap_or(false)
}

/// The connection variables for the app, from the running services (in a stable order).
pub fn connection_env(stack: &Stack, runtimes: &[ServiceRuntime]) -> Vec<(String, String)> {
    let find = |kind: Kind| {
        stack
            .services
            .iter()
            .zip(runtimes)
            .find(|(s, rt)| s.kind == Some(kind) && rt.running())
    };
    let mut env = Vec::new();
    if let Some((spec, rt)) = find(Kind::Postgres)
        && let Some(url) = rt.url(spec, true)
    {
        env.push(("DATABASE_URL".to_string(), url));
    }
    if let Some((spec, rt)) = find(Kind::Redis)
        && let Some(url) = rt.url(spec, false)
    {
        env.push(("REDIS_URL".to_string(), url));
    }
    if let Some((spec, rt)) = find(Kind::Firestore)
        && let Some((host, port)) = rt.probe_address(spec)
    {
        env.push((
            "FIRESTORE_EMULATOR_HOST".to_string(),
            format!("{}:{port}", bracket(&host)),
        ));
    }
    env.push((
        "GOOGLE_CLOUD_PROJECT".to_string(),
        stack.gcp_project.clone(),
    ));
    if let Some((spec, rt)) = find(Kind::Gcs) {
        if let Some(url) = rt.url(spec, false) {
            env.push(("STORAGE_EMULATOR_HOST".to_string(), url));
        }
        if let Some(bucket) = spec.buckets.first() {
            env.push(("TEMPLATES_BUCKET".to_string(), bucket.clone()));
        }
    }
    env
}

/// A deadline `d` from now.
pub fn deadline(d: Duration) -> Instant {
    Instant::now() + d
}

#[cfg(test)]
mod tests {
    use super::encode;

    #[test]
    fn userinfo_is_percent_encoded() {
        assert_eq!(encode("p@ss:w/rd"), "p%40ss%3Aw%2Frd");
        assert_eq!(encode("vibesdk_app"), "vibesdk_app");
    }
}
