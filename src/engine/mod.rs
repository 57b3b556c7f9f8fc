//! Everything that speaks to the Docker engine, through bollard: finding and connecting to the
//! engine (default socket, `DOCKER_HOST`, the current Docker context), images, containers,
//! container bodies, networks, volumes, logs and who holds a host port. Nothing here prints;
//! progress goes through callbacks.

pub mod body;
pub mod build;
pub mod containers;
pub mod exec;
pub mod images;
pub mod ports;
pub mod relay;
pub mod resources;
pub mod ssh;
pub mod stacks;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;

/// Labels vibedev puts on everything it creates; nothing without them is ever touched.
pub const LABEL_PROJECT: &str = "dev.vibedev.project";
pub const LABEL_SERVICE: &str = "dev.vibedev.service";
pub const LABEL_HASH: &str = "dev.vibedev.config-hash";
pub const LABEL_KIND: &str = "dev.vibedev.kind";
pub const LABEL_VOLUME: &str = "dev.vibedev.volume";
/// vibedev's cache volume (see [`Engine::ensure_cache_volume`]) and its label.
pub const CACHE_VOLUME: &str = "vibedev-cache";
pub const LABEL_CACHE: &str = "dev.vibedev.cache";
/// The checkout (project folder) a stack was brought up from, on its containers and volumes.
pub const LABEL_CHECKOUT: &str = "dev.vibedev.checkout";

const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How the engine's address was chosen.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointSource {
    DefaultSocket,
    DockerHost,
    Context(String),
}

/// The engine's address and where it came from.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Endpoint {
    pub url: String,
    pub source: EndpointSource,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            EndpointSource::DefaultSocket => write!(f, "{} (default socket)", self.url),
            EndpointSource::DockerHost => write!(f, "{} (from DOCKER_HOST)", self.url),
            EndpointSource::Context(name) => write!(f, "{} (Docker context {name:?})", self.url),
        }
    }
}

/// Errors talking to the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no Docker engine answers at {endpoint}")]
    Unreachable {
        endpoint: Endpoint,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("the Docker engine at {endpoint} did not answer within {secs} s")]
    Timeout { endpoint: Endpoint, secs: u64 },
    #[error("unsupported Docker endpoint {url:?}")]
    BadEndpoint {
        url: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// The SSH connection to an `ssh://` engine could not be made.
    #[error("cannot reach the Docker engine at {endpoint} over SSH")]
    Ssh {
        endpoint: Endpoint,
        #[source]
        source: Box<ssh::SshError>,
    },
    /// The relay of a `tcp://` engine's published ports to 127.0.0.1 failed.
    #[error("cannot relay the ports of the Docker engine at {endpoint}")]
    Relay {
        endpoint: Endpoint,
        #[source]
        source: Box<relay::RelayError>,
    },
    #[error("cannot pull image {image}: {message}")]
    Pull { image: String, message: String },
    /// A network or volume with the project's name that vibedev did not create for it.
    #[error("{kind} {name} exists but was not created by vibedev for project {project}")]
    Foreign {
        kind: &'static str,
        name: String,
        project: String,
    },
    /// A `build:` that failed: the engine's message and the failing step's last output lines.
    #[error("cannot build image {image}: {message}")]
    Build {
        image: String,
        message: String,
        output: Vec<String>,
    },
    /// A `build:` context that could not be read.
    #[error(transparent)]
    Context(#[from] build::ContextError),
    #[error("cannot {action}")]
    Api {
        action: String,
        #[source]
        source: bollard::errors::Error,
    },
}

impl EngineError {
    pub fn hint(&self) -> Option<String> {
        match self {
            EngineError::Unreachable { endpoint, .. } | EngineError::Timeout { endpoint, .. } => {
                Some(match endpoint.source {
                    EndpointSource::DockerHost => format!(
                        "start the Docker engine at {}, or unset DOCKER_HOST to use the default socket",
                        endpoint.url
                    ),
                    EndpointSource::Context(ref name) => format!(
                        "start the engine of Docker context {name:?}, or pick another with `docker context use`"
                    ),
                    EndpointSource::DefaultSocket => "start the Docker engine (`sudo systemctl start docker`, or Docker Desktop / Colima / OrbStack), or set DOCKER_HOST to where it listens".to_string(),
                })
            }
            EngineError::BadEndpoint { .. } => Some(
                "DOCKER_HOST must look like unix:///path/docker.sock, tcp://host:port or ssh://user@host[:port]"
                    .into(),
            ),
            EngineError::Ssh { source, .. } => Some(match source.as_ref() {
                ssh::SshError::BadUrl(_) => {
                    "write the endpoint as ssh://[user@]host[:port][/path/to/docker.sock]".into()
                }
                ssh::SshError::Spawn { .. } => {
                    "install OpenSSH's client (`ssh`), or point VIBEDEV_SSH_COMMAND at one".into()
                }
                ssh::SshError::State { .. } => {
                    "check that the temporary folder is writable by you".into()
                }
                _ => {
                    "check that `ssh HOST docker version` works from this shell (host name, key or agent, known_hosts), then run the command again"
                        .into()
                }
            }),
            EngineError::Relay { source, .. } => Some(match source.as_ref() {
                relay::RelayError::State { .. } => {
                    "check that the temporary folder is writable by you".into()
                }
                relay::RelayError::Unreachable { .. } => {
                    "the engine must publish the ports on an address this machine reaches (`bind` in vibedev.toml), or set `[engine] forward = false`".into()
                }
                _ => "run `vibedev up` again; `vibedev down` ends the relay".into(),
            }),
            EngineError::Pull { .. } => Some(
                "check the image name and that its registry is reachable; `vibedev.toml` can point [services.NAME] image elsewhere"
                    .into(),
            ),
            EngineError::Foreign { kind, name, .. } => Some(match *kind {
                "volume" => format!(
                    "to use its data, declare it in the compose file's top-level volumes as `external: true` with `name: {name}`; otherwise remove it (`docker volume rm {name}`) or give this project another name (`project = \"...\"` in vibedev.toml)"
                ),
                _ => format!(
                    "remove it (`docker network rm {name}`) or give this project another name (`project = \"...\"` in vibedev.toml)"
                ),
            }),
            EngineError::Build { image, .. } => Some(format!(
                "the output of the failing step is above; fix the Dockerfile or the build context, then run `vibedev up` (or `vibedev up --build`) again to rebuild {image}"
            )),
            EngineError::Context(_) => Some(
                "fix `build:` in the compose file: `context` is a folder relative to the compose file, `dockerfile` a file in it".into(),
            ),
            EngineError::Api { .. } if self.is_connection_lost() => Some(
                "the Docker engine stopped answering: start it again (`docker info` tells whether it runs), then run the command again".into(),
            ),
            EngineError::Api { .. } => None,
        }
    }

    /// True when the engine answered that the object (a container) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, EngineError::Api { source, .. } if is_not_found(source))
    }

    /// True when the engine stopped answering (connection refused, reset, timed out): the
    /// engine went away, which is not the request's fault.
    pub fn is_connection_lost(&self) -> bool {
        match self {
            EngineError::Unreachable { .. }
            | EngineError::Timeout { .. }
            | EngineError::Ssh { .. } => true,
            EngineError::Api { source, .. } => matches!(
                source,
                bollard::errors::Error::HyperLegacyError { .. }
                    | bollard::errors::Error::HyperResponseError { .. }
                    | bollard::errors::Error::IOError { .. }
                    | bollard::errors::Error::RequestTimeoutError
                    | bollard::errors::Error::SocketNotFoundError(_)
            ),
            _ => false,
        }
    }

    /// The engine's own words for a refused request (its error message), else the error itself.
    pub fn reason(&self) -> String {
        match self {
            EngineError::Api {
                source: bollard::errors::Error::DockerResponseServerError { message, .. },
                ..
            } => message.clone(),
            EngineError::Api { .. } if self.is_connection_lost() => {
                "the Docker engine stopped answering".to_string()
            }
            EngineError::Api { source, .. } => source.to_string(),
            other => other.to_string(),
        }
    }

    pub(crate) fn api(action: impl Into<String>, source: bollard::errors::Error) -> EngineError {
        EngineError::Api {
            action: action.into(),
            source,
        }
    }
}

/// A connected engine.
#[derive(Debug, Clone)]
pub struct Engine {
    pub docker: Docker,
    pub endpoint: Endpoint,
    /// The SSH connection carrying the API and the published ports, for an `ssh://` engine.
    pub tunnel: Option<Arc<ssh::Tunnel>>,
    /// For a `tcp://` engine on another host: the project relays of its published ports (used
    /// when `forward` is on; what they recorded is shown and ended either way).
    pub relay: Option<Arc<relay::Relay>>,
    /// Whether a `tcp://` engine's published ports are relayed to 127.0.0.1 of this machine.
    pub forward: bool,
}

/// Finds the engine's address: `DOCKER_HOST`, then the current Docker context, then the default socket.
pub fn endpoint() -> Endpoint {
    if let Ok(url) = std::env::var("DOCKER_HOST")
        && !url.is_empty()
    {
        return Endpoint {
            url,
            source: EndpointSource::DockerHost,
        };
    }
    if let Some((name, url)) = current_context() {
        return Endpoint {
            url,
            source: EndpointSource::Context(name),
        };
    }
    Endpoint {
        url: DEFAULT_HOST.to_string(),
        source: EndpointSource::DefaultSocket,
    }
}

/// The current Docker context's endpoint, when one other than `default` is selected
/// (`DOCKER_CONTEXT`, else `currentContext` in the Docker CLI config).
fn current_context() -> Option<(String, String)> {
    let config_dir = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))?;
    let name = match std::env::var("DOCKER_CONTEXT") {
        Ok(name) if !name.is_empty() => name,
        _ => {
            let text = std::fs::read_to_string(config_dir.join("config.json")).ok()?;
            let json: serde_json::Value = serde_json::from_str(&text).ok()?;
            json.get("currentContext")?.as_str()?.to_string()
        }
    };
    if name == "default" {
        return None;
    }
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(name.as_bytes()));
    let meta = config_dir
        .join("contexts/meta")
        .join(digest)
        .join("meta.json");
    let text = std::fs::read_to_string(meta).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let host = json
        .pointer("/Endpoints/docker/Host")?
        .as_str()?
        .to_string();
    Some((name, host))
}

impl Engine {
    /// Connects and negotiates the API version (an old engine, such as Debian's Docker 20.10 at
    /// API 1.41, must not be sent a newer API).
    pub async fn connect() -> Result<Engine, EngineError> {
        let endpoint = endpoint();
        let (url, tunnel) = if endpoint.url.starts_with("ssh://") {
            let ssh_error = |source| EngineError::Ssh {
                endpoint: endpoint.clone(),
                source: Box::new(source),
            };
            let tunnel = ssh::Tunnel::new(&endpoint.url).map_err(ssh_error)?;
            tunnel.ensure().await.map_err(ssh_error)?;
            let url = format!("unix://{}", tunnel.engine_socket().display());
            (url, Some(Arc::new(tunnel)))
        } else {
            (endpoint.url.clone(), None)
        };
        let docker = match Docker::connect_with_host(&url) {
            Ok(docker) => docker,
            // A socket path that does not exist is an engine that is not running, not a typo.
            Err(source @ bollard::errors::Error::SocketNotFoundError(_)) => {
                return Err(EngineError::Unreachable { endpoint, source });
            }
            Err(source) => {
                return Err(EngineError::BadEndpoint {
                    url: endpoint.url.clone(),
                    source,
                });
            }
        };
        let docker = match tokio::time::timeout(CONNECT_TIMEOUT, docker.negotiate_version()).await {
            Err(_) => {
                return Err(EngineError::Timeout {
                    endpoint,
                    secs: CONNECT_TIMEOUT.as_secs(),
                });
            }
            Ok(Err(source)) => return Err(EngineError::Unreachable { endpoint, source }),
            Ok(Ok(docker)) => docker,
        };
        let relay = relay::Relay::for_url(&endpoint.url).map(Arc::new);
        Ok(Engine {
            docker,
            endpoint,
            tunnel,
            relay,
            forward: false,
        })
    }

    /// The engine with the relay of its published ports to 127.0.0.1 turned on or off (it only
    /// exists for a `tcp://` engine on another host).
    pub fn with_forwarding(mut self, on: bool) -> Engine {
        self.forward = on;
        self
    }

    /// The relay that carries the published ports, when it is in use.
    pub fn relaying(&self) -> Option<&relay::Relay> {
        self.relay.as_deref().filter(|_| self.forward)
    }

    /// True when the engine runs on this machine (a local socket), so that host paths in bind
    /// mounts are this machine's paths.
    pub fn is_local(&self) -> bool {
        self.endpoint.url.starts_with("unix://")
    }

    /// The address a client on this machine uses to reach a port published on `host_ip`.
    pub fn client_host(&self, host_ip: &str) -> String {
        // Over SSH, or with the relay of a tcp:// engine, every published port is forwarded to
        // the same port on this machine.
        if self.tunnel.is_some() || self.relaying().is_some() {
            return "127.0.0.1".to_string();
        }
        if let Some(host) = relay::remote_tcp_host(&self.endpoint.url) {
            return host;
        }
        match host_ip {
            "" | "0.0.0.0" => "127.0.0.1".to_string(),
            "::" => "::1".to_string(),
            other => other.to_string(),
        }
    }
}

/// True when the engine answered 404.
pub fn is_not_found(err: &bollard::errors::Error) -> bool {
    matches!(
        err,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// True when the engine answered 409 (name in use, removal in progress).
pub fn is_conflict(err: &bollard::errors::Error) -> bool {
    matches!(
        err,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 409,
            ..
        }
    )
}

/// True when the engine answered 304 (already started / already stopped).
pub fn is_not_modified(err: &bollard::errors::Error) -> bool {
    matches!(
        err,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 304,
            ..
        }
    )
}
