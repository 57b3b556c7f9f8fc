//! The desired state: the compose file plus `vibedev.toml` overrides, resolved into one spec per
//! service with deterministic Docker names and a hash of everything that shapes its container.
//! Also the reconcile plan (desired vs. what the engine has), which is pure and unit-tested.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::branches::{BranchError, OnBranch};
use crate::compose::{self, ComposeFile, ComposeSource, Healthcheck, PortSpec};
use crate::config::{ConfigError, Project};
use crate::engine::build::BuildRequest;
use crate::pg::BranchOf;
use crate::services::{Kind, LaunchInput, Settings, SettingsInput, WaitFor};

const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// What a dependant waits for (Compose's `depends_on` conditions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// `service_started`: vibedev waits until the dependency is ready (a real client can use
    /// it), which is more than started.
    Started,
    /// `service_healthy`: ready, and its container's health check passes.
    Healthy,
    /// `service_completed_successfully`: a one-shot job that ran to completion with exit code 0.
    CompletedSuccessfully,
}

impl Condition {
    pub fn parse(s: &str) -> Option<Condition> {
        match s {
            "service_started" => Some(Condition::Started),
            "service_healthy" => Some(Condition::Healthy),
            "service_completed_successfully" => Some(Condition::CompletedSuccessfully),
            _ => None,
        }
    }
}

/// A secret or config written into a container. Its value never leaves the process: only its
/// hash shapes the container's config hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceFile {
    pub target: String,
    #[serde(serialize_with = "digest")]
    pub data: Vec<u8>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

fn digest<S: serde::Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(Sha256::digest(data)))
}

/// How a service's image is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    pub request: BuildRequest,
    /// The service also names `image:`: built only when that image is missing (as Compose does).
    pub only_if_missing: bool,
}

/// A mount as the engine will get it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Mount {
    /// A named volume (its Docker name).
    Volume {
        name: String,
        target: String,
        read_only: bool,
    },
    /// A host path.
    Bind {
        source: PathBuf,
        target: String,
        read_only: bool,
        /// A file vibedev reads itself and hands to the container (a `secrets:`/`configs:`
        /// `file:`), rather than a path the user shares with it: on an engine on another machine
        /// it is copied in through the API instead. Not hashed: the path is.
        #[serde(skip)]
        owned: bool,
    },
    /// An anonymous volume (dropped with the container).
    Anonymous { target: String },
}

/// One service, fully resolved.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceSpec {
    pub name: String,
    pub container_name: String,
    #[serde(skip)]
    pub kind: Option<Kind>,
    pub image: String,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub env: BTreeMap<String, String>,
    pub ports: Vec<PortSpec>,
    pub mounts: Vec<Mount>,
    pub labels: BTreeMap<String, String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub healthcheck: Option<Healthcheck>,
    pub stop_signal: Option<String>,
    pub tmpfs: Vec<String>,
    #[serde(skip)]
    pub depends_on: Vec<String>,
    /// What each dependency must reach before this service starts (Compose's `condition:`).
    #[serde(skip)]
    pub conditions: BTreeMap<String, Condition>,
    /// A one-shot job (another service waits for it to complete successfully): run to its end,
    /// not probed for readiness.
    #[serde(skip)]
    pub job: bool,
    /// Another service waits for it to be healthy: its container health check must pass too.
    #[serde(skip)]
    pub wait_healthy: bool,
    /// The service's `profiles:`; it starts only when one is active (or when named).
    #[serde(skip)]
    pub profiles: Vec<String>,
    #[serde(skip)]
    pub stop_grace_secs: u64,
    /// The container port readiness probes use.
    #[serde(skip)]
    pub probe_port: Option<u16>,
    #[serde(skip)]
    pub ready_timeout: Duration,
    /// What the kind read from `x-vibedev` and the environment (the Postgres accounts, buckets).
    #[serde(skip)]
    pub settings: Settings,
    /// How readiness is checked from the host; `None`: running is all that is checked (or the
    /// container's health check, when it has one).
    #[serde(skip)]
    pub wait: Option<WaitFor>,
    /// Secrets and configs whose value is not a host file: written into the container before
    /// it starts (host files are read-only bind mounts among `mounts`).
    pub files: Vec<ServiceFile>,
    /// `build:`: the image is built from a context rather than pulled.
    #[serde(skip)]
    pub build: Option<BuildPlan>,
    /// Compose's `restart:` policy (`always`, `on-failure[:N]`, `unless-stopped`); none for `no`.
    pub restart: Option<String>,
}

impl ServiceSpec {
    /// A hash of everything that shapes the container: change any of it and the container is
    /// recreated; change nothing and it is left alone. Secrets never leave the process: only
    /// this digest is stored (in a label).
    pub fn config_hash(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(&json))[..16].to_string()
    }

    /// The service's own start, as a kind reads it to choose a faster one.
    pub fn launch_input(&self) -> LaunchInput<'_> {
        LaunchInput {
            entrypoint: self.entrypoint.as_deref(),
            command: self.command.as_deref(),
            env: &self.env,
            mount_targets: self
                .mounts
                .iter()
                .map(|m| match m {
                    Mount::Volume { target, .. }
                    | Mount::Bind { target, .. }
                    | Mount::Anonymous { target } => target.as_str(),
                })
                .chain(self.files.iter().map(|f| f.target.as_str()))
                .collect(),
        }
    }

    /// The published port of the probe (container) port, as written in the spec.
    pub fn probe_port_spec(&self) -> Option<&PortSpec> {
        let port = self.probe_port?;
        self.ports.iter().find(|p| p.container_port == port)
    }
}

/// A named volume of the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSpec {
    pub key: String,
    pub name: String,
    pub external: bool,
    pub driver: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// The whole desired state of a project.
#[derive(Debug, Clone)]
pub struct Stack {
    pub project: String,
    pub network: String,
    pub services: Vec<ServiceSpec>,
    pub volumes: Vec<VolumeSpec>,
    pub gcp_project: String,
    /// Compose keys vibedev accepted but does not act on (`service.key`).
    pub ignored_keys: Vec<String>,
    /// What compose would warn about while reading the file (unset variables).
    pub warnings: Vec<String>,
    /// Active profiles: `profiles` in vibedev.toml, `COMPOSE_PROFILES` (environment or `.env`),
    /// `up --profile`.
    pub profiles: BTreeSet<String>,
    pub source: ComposeSource,
    /// The checkout the stack comes from (the project's root), labelled on what `up` creates.
    pub checkout: PathBuf,
}

/// A service name on the command line that the stack does not have.
#[derive(Debug, thiserror::Error)]
#[error("unknown service {name:?}")]
pub struct UnknownService {
    pub name: String,
    pub known: Vec<String>,
}

impl Stack {
    /// Resolves the project's stack: its compose file (or the built-in one) and its overrides.
    pub fn resolve(project: &Project) -> Result<Stack, ConfigError> {
        let source = match &project.file.compose {
            Some(p) => ComposeSource::File(project.resolve(p)),
            None => ComposeSource::Builtin,
        };
        let compose = source.load()?;
        let base = match &source {
            ComposeSource::File(p) => p.parent().map(Path::to_path_buf).unwrap_or_default(),
            ComposeSource::Builtin => project.root.clone(),
        };
        resolve_compose(project, compose, source, &base)
    }

    pub fn service(&self, name: &str) -> Option<&ServiceSpec> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The first service of a kind.
    pub fn of_kind(&self, kind: Kind) -> Option<&ServiceSpec> {
        self.services.iter().find(|s| s.kind == Some(kind))
    }

    /// Points the stack's services at the branch's own data (see [`crate::branches::current`]): the Postgres
    /// services at its database, and each kind whose data follows at its own names (the project id
    /// the stack serves included); returns the branch, when there is one.
    pub fn follow_branch(&mut self, project: &Project) -> Result<Option<OnBranch>, BranchError> {
        let Some(on) = crate::branches::current(project)? else {
            return Ok(None);
        };
        let config = &project.file.branches;
        let default_project = self.gcp_project.clone();
        for spec in &mut self.services {
            if let Some(kind) = spec.kind
                && let Some(project_id) =
                    kind.follow_branch(config, &mut spec.settings, &default_project, &on)
            {
                self.gcp_project = project_id;
            }
            if !config.database {
                continue;
            }
            if let Some(app) = &mut spec.settings.postgres {
                let default_database = app.database.clone();
                app.database = crate::branches::database_name(&default_database, &on.slug);
                app.branch = Some(BranchOf {
                    branch: on.branch.clone(),
                    default_database,
                });
            }
        }
        Ok(Some(on))
    }

    /// Adds active profiles (`up --profile NAME`).
    pub fn activate_profiles(&mut self, names: &[String]) {
        self.profiles.extend(names.iter().cloned());
    }

    /// True when the service has no profile or one of its profiles is active (`*`: all are).
    pub fn enabled(&self, spec: &ServiceSpec) -> bool {
        spec.profiles.is_empty()
            || self.profiles.contains("*")
            || spec.profiles.iter().any(|p| self.profiles.contains(p))
    }

    /// The services named (all enabled ones when `names` is empty) plus everything they depend
    /// on, in stack order. A named service starts even when its profiles are not active, as
    /// with compose.
    pub fn select(&self, names: &[String]) -> Result<Vec<&ServiceSpec>, UnknownService> {
        let mut wanted = BTreeSet::new();
        let mut todo: Vec<String> = if names.is_empty() {
            self.services
                .iter()
                .filter(|s| self.enabled(s))
                .map(|s| s.name.clone())
                .collect()
        } else {
            names.to_vec()
        };
        while let Some(name) = todo.pop() {
            let svc = self.service(&name).ok_or_else(|| UnknownService {
                name: name.clone(),
                known: self.services.iter().map(|s| s.name.clone()).collect(),
            })?;
            if wanted.insert(name) {
                todo.extend(svc.depends_on.iter().cloned());
            }
        }
        Ok(self
            .services
            .iter()
            .filter(|s| wanted.contains(&s.name))
            .collect())
    }

    /// Checks that every name is a service, without expanding dependencies.
    pub fn check_names(&self, names: &[String]) -> Result<(), UnknownService> {
        for name in names {
            if self.service(name).is_none() {
                return Err(UnknownService {
                    name: name.clone(),
                    known: self.services.iter().map(|s| s.name.clone()).collect(),
                });
            }
        }
        Ok(())
    }
}

fn invalid(project: &Project, message: String) -> ConfigError {
    ConfigError::Invalid {
        path: project
            .config_path
            .clone()
            .unwrap_or_else(|| PathBuf::from("vibedev.toml")),
        message,
    }
}

fn resolve_compose(
    project: &Project,
    compose: ComposeFile,
    source: ComposeSource,
    base: &Path,
) -> Result<Stack, ConfigError> {
    // Variables for secrets and configs with an `environment:` source, as for interpolation.
    let vars = compose::Vars::for_dir(base);
    let shared_secrets = compose.secrets.clone();
    let shared_configs = compose.configs.clone();
    if compose.services.is_empty() {
        let path = match &source {
            ComposeSource::File(p) => p.clone(),
            ComposeSource::Builtin => PathBuf::from("<built-in>/compose/docker-compose.yml"),
        };
        return Err(ConfigError::Invalid {
            path,
            message: "defines no services (an empty or half-saved file?): nothing was changed"
                .into(),
        });
    }
    for name in project.file.services.keys() {
        if !compose.services.contains_key(name) {
            return Err(invalid(
                project,
                format!(
                    "[services.{name}] matches no service of the stack (services: {})",
                    compose
                        .services
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    // The compose file's `name:` names the project unless vibedev.toml sets `project`.
    let compose_path = match &source {
        ComposeSource::File(p) => p.clone(),
        ComposeSource::Builtin => PathBuf::from("<built-in>/compose/docker-compose.yml"),
    };
    let project_name = match (&project.file.project, &compose.name) {
        (None, Some(name)) => {
            crate::config::validate_project_name(name).map_err(|message| ConfigError::Invalid {
                path: compose_path.clone(),
                message: format!("name: {message}"),
            })?;
            name.clone()
        }
        _ => project.name.clone(),
    };
    let volumes: Vec<VolumeSpec> = compose
        .volumes
        .iter()
        .map(|(key, def)| VolumeSpec {
            key: key.clone(),
            name: def
                .name
                .clone()
                .unwrap_or_else(|| format!("{project_name}_{key}")),
            external: def.external,
            driver: def.driver.clone(),
            labels: def
                .labels
                .0
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
        .collect();
    let bind_override = project.file.bind.clone();
    let mut services = Vec::new();
    for (name, svc) in compose.services {
        let ov = project
            .file
            .services
            .get(&name)
            .cloned()
            .unwrap_or_default();
        let x = svc.x_vibedev.clone().unwrap_or_default();
        let kind = match x.kind.as_deref().or(svc
            .labels
            .get(crate::engine::LABEL_KIND)
            .map(String::as_str))
        {
            Some("none") => None,
            Some(k) => Some(Kind::parse(k).ok_or_else(|| {
                invalid(
                    project,
                    format!(
                        "service {name:?}: unknown kind {k:?} (use {} or none)",
                        Kind::names()
                    ),
                )
            })?),
            None => Kind::by_service_name(&name),
        };
        // A service built from `build:` without `image:` gets compose's image name.
        let image = match ov.image.clone().or(svc.image.clone()) {
            Some(image) => image,
            None if svc.build.is_some() => format!("{project_name}-{name}"),
            None => {
                return Err(ConfigError::Invalid {
                    path: compose_path.clone(),
                    message: format!(
                        "service {name:?} has neither `image:` nor `build:` (or set [services.{name}] image in vibedev.toml)"
                    ),
                });
            }
        };
        let mut env: BTreeMap<String, String> = svc.environment.into_iter().collect();
        for (k, v) in &ov.env {
            env.insert(k.clone(), v.clone());
        }
        let port_strings = ov.ports.clone();
        let mut ports = match port_strings {
            Some(list) => list
                .iter()
                .map(|p| compose::parse_port(p))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|m| invalid(project, format!("[services.{name}] ports: {m}")))?,
            None => svc.ports,
        };
        for p in &mut ports {
            match (&bind_override, &p.host_ip) {
                (Some(bind), _) => p.host_ip = Some(bind.clone()),
                (None, None) => p.host_ip = Some(project.bind_address().to_string()),
                (None, Some(_)) => {}
            }
        }
        let mut mounts: Vec<Mount> = svc
            .volumes
            .iter()
            .map(|m| match &m.source {
                None => Mount::Anonymous {
                    target: m.target.clone(),
                },
                Some(src) if m.is_bind() => Mount::Bind {
                    source: base.join(src),
                    target: m.target.clone(),
                    read_only: m.read_only,
                    owned: false,
                },
                Some(src) => Mount::Volume {
                    name: volumes
                        .iter()
                        .find(|v| &v.key == src)
                        .map(|v| v.name.clone())
                        .unwrap_or_else(|| format!("{project_name}_{src}")),
                    target: m.target.clone(),
                    read_only: m.read_only,
                },
            })
            .collect();
        let shared = SharedFiles {
            secrets: &shared_secrets,
            configs: &shared_configs,
            vars: &vars,
            path: &compose_path,
        };
        let mut files = Vec::new();
        for (what, refs) in [("secret", &svc.secrets), ("config", &svc.configs)] {
            for r in refs {
                match shared.resolve(&name, what, r)? {
                    Shared::Host { path, target } => mounts.push(Mount::Bind {
                        source: path,
                        target,
                        read_only: true,
                        owned: true,
                    }),
                    Shared::Value(file) => files.push(file),
                }
            }
        }
        let probe_port = x.port.or_else(|| ports.first().map(|p| p.container_port));
        let build = svc.build.as_ref().map(|b| BuildPlan {
            request: BuildRequest {
                context: PathBuf::from(&b.context),
                dockerfile: b.dockerfile.clone(),
                dockerfile_inline: b.dockerfile_inline.clone(),
                args: b.args.clone().into_iter().collect(),
                target: b.target.clone(),
                labels: b.labels.clone().into_iter().collect(),
                tag: image.clone(),
            },
            only_if_missing: svc.image.is_some() || ov.image.is_some(),
        });
        let restart = svc.restart.clone().filter(|r| r != "no");
        let settings = match kind {
            Some(kind) => kind
                .settings(&SettingsInput {
                    env: &with_file_values(&env, &mounts, &files),
                    x: &x,
                })
                .map_err(|m| invalid(project, format!("service {name:?}: {m}")))?,
            None => Settings::default(),
        };
        let wait = match (kind, &x.http) {
            (Some(kind), _) => Some(kind.wait()),
            (None, Some(compose::XHttpWait::Path(path))) => Some(WaitFor::Http {
                paths: vec![path.clone()],
                body: None,
            }),
            (None, Some(compose::XHttpWait::Full { path, body })) => Some(WaitFor::Http {
                paths: vec![path.clone()],
                body: body.clone(),
            }),
            (None, None) => None,
        };
        let command = ov.command.clone().or(svc.command);
        services.push(ServiceSpec {
            container_name: format!("{project_name}-{name}"),
            name: name.clone(),
            kind,
            image,
            command,
            entrypoint: svc.entrypoint,
            env,
            ports,
            mounts,
            labels: svc.labels.into_iter().collect(),
            user: svc.user,
            working_dir: svc.working_dir,
            healthcheck: svc.healthcheck,
            stop_signal: svc.stop_signal,
            tmpfs: svc.tmpfs,
            conditions: svc
                .depends_on
                .iter()
                .map(|(d, dep)| {
                    (
                        d.clone(),
                        Condition::parse(&dep.condition).unwrap_or(Condition::Started),
                    )
                })
                .collect(),
            depends_on: svc.depends_on.keys().cloned().collect(),
            job: false,
            wait_healthy: false,
            profiles: svc.profiles,
            stop_grace_secs: svc.stop_grace_period.unwrap_or(10),
            probe_port,
            ready_timeout: ov
                .ready_timeout
                .or(x.ready_timeout)
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_READY_TIMEOUT),
            settings,
            wait,
            files,
            build,
            restart,
        });
    }
    check_cycles(project, &services)?;
    mark_dependencies(&mut services);
    let mut profiles: BTreeSet<String> = project.file.profiles.iter().cloned().collect();
    // As compose reads it: the environment, else the `.env` beside the compose file.
    if let Some(env) = vars.get("COMPOSE_PROFILES") {
        profiles.extend(
            env.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string),
        );
    }
    Ok(Stack {
        network: format!("{project_name}_default"),
        project: project_name,
        services,
        volumes,
        gcp_project: project.gcp_project().to_string(),
        ignored_keys: compose.ignored,
        warnings: compose.warnings,
        profiles,
        source,
        checkout: project.root.clone(),
    })
}

/// Marks the services others wait for to complete (jobs) or to be healthy.
fn mark_dependencies(services: &mut [ServiceSpec]) {
    let wanted: Vec<(String, Condition)> = services
        .iter()
        .flat_map(|s| s.conditions.iter().map(|(d, c)| (d.clone(), *c)))
        .collect();
    for (dep, condition) in wanted {
        if let Some(spec) = services.iter_mut().find(|s| s.name == dep) {
            match condition {
                Condition::CompletedSuccessfully => spec.job = true,
                Condition::Healthy => spec.wait_healthy = true,
                Condition::Started => {}
            }
        }
    }
}

/// The top-level `secrets:` and `configs:` a service's entries point at.
struct SharedFiles<'a> {
    secrets: &'a indexmap::IndexMap<String, compose::FileObject>,
    configs: &'a indexmap::IndexMap<String, compose::FileObject>,
    vars: &'a compose::Vars,
    path: &'a Path,
}

/// Where a service's secret or config comes from.
enum Shared {
    /// A file on the host: mounted read-only, as Compose does.
    Host { path: PathBuf, target: String },
    /// A value (from a variable or inline content), written into the container.
    Value(ServiceFile),
}

impl SharedFiles<'_> {
    fn resolve(
        &self,
        service: &str,
        what: &str,
        r: &compose::FileRef,
    ) -> Result<Shared, ConfigError> {
        let error = |message: String| ConfigError::Invalid {
            path: self.path.to_path_buf(),
            message: format!("service {service:?}: {what} {:?}: {message}", r.source),
        };
        let table = if what == "secret" {
            self.secrets
        } else {
            self.configs
        };
        let def = table
            .get(&r.source)
            .ok_or_else(|| error(format!("not declared under the top-level `{what}s:`")))?;
        let target = match (&r.target, what) {
            (Some(t), _) if t.starts_with('/') => t.clone(),
            (Some(t), "secret") => format!("/run/secrets/{t}"),
            (None, "secret") => format!("/run/secrets/{}", r.source),
            (Some(t), _) => format!("/{t}"),
            (None, _) => format!("/{}", r.source),
        };
        let id = |v: &Option<String>, which: &str| -> Result<u64, ConfigError> {
            v.as_deref().map_or(Ok(0), |s| {
                s.parse()
                    .map_err(|_| error(format!("{which} must be a number")))
            })
        };
        let value = |data: Vec<u8>| -> Result<Shared, ConfigError> {
            Ok(Shared::Value(ServiceFile {
                target: target.clone(),
                data,
                mode: r.mode.unwrap_or(0o444),
                uid: id(&r.uid, "uid")?,
                gid: id(&r.gid, "gid")?,
            }))
        };
        if def.external {
            return Err(error(
                "`external` secrets and configs live in a Swarm cluster; locally, give it a `file:` or an `environment:` source".into(),
            ));
        }
        if let Some(file) = &def.file {
            if !file.exists() {
                return Err(error(format!(
                    "its file {} does not exist: create it, or point `file:` at one that does",
                    file.display()
                )));
            }
            return Ok(Shared::Host {
                path: file.clone(),
                target,
            });
        }
        if let Some(var) = &def.environment {
            return match self.vars.get(var) {
                Some(v) => value(v.into_bytes()),
                None => Err(error(format!(
                    "its variable {var} is not set (in the environment or the .env file)"
                ))),
            };
        }
        if let Some(content) = &def.content {
            return value(content.clone().into_bytes());
        }
        Err(error(
            "it has no source: give it `file:`, `environment:` or `content:`".into(),
        ))
    }
}

/// The service's environment with each `NAME_FILE` variable (the official images' convention)
/// also giving `NAME` the content of the secret or config it points at, where `NAME` is not set
/// itself, as the images' entrypoints read them (trailing newlines dropped).
fn with_file_values(
    env: &BTreeMap<String, String>,
    mounts: &[Mount],
    files: &[ServiceFile],
) -> BTreeMap<String, String> {
    let mut out = env.clone();
    for (key, path) in env {
        let Some(var) = key.strip_suffix("_FILE").filter(|v| !v.is_empty()) else {
            continue;
        };
        if out.contains_key(var) {
            continue;
        }
        let data = files
            .iter()
            .find(|f| &f.target == path)
            .map(|f| f.data.clone())
            .or_else(|| {
                mounts.iter().find_map(|m| match m {
                    Mount::Bind { source, target, .. } if target == path => {
                        std::fs::read(source).ok()
                    }
                    _ => None,
                })
            });
        if let Some(data) = data {
            let text = String::from_utf8_lossy(&data);
            out.insert(
                var.to_string(),
                text.trim_end_matches(['\n', '\r']).to_string(),
            );
        }
    }
    out
}

fn check_cycles(project: &Project, services: &[ServiceSpec]) -> Result<(), ConfigError> {
    fn visit<'a>(
        name: &'a str,
        services: &'a [ServiceSpec],
        stack: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Result<(), String> {
        if done.contains(name) {
            return Ok(());
        }
        if stack.contains(&name) {
            stack.push(name);
            return Err(stack.join(" -> "));
        }
        stack.push(name);
        if let Some(svc) = services.iter().find(|s| s.name == name) {
            for dep in &svc.depends_on {
                visit(dep, services, stack, done)?;
            }
        }
        stack.pop();
        done.insert(name);
        Ok(())
    }
    let mut done = BTreeSet::new();
    for svc in services {
        visit(&svc.name, services, &mut Vec::new(), &mut done)
            .map_err(|cycle| invalid(project, format!("depends_on has a cycle: {cycle}")))?;
    }
    Ok(())
}

/// What the engine has for one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub id: String,
    pub hash: String,
    pub state: String,
    /// Ids of the networks the container is attached to (as the engine lists them).
    pub networks: Vec<String>,
    /// The exit code of a container that has exited.
    pub exit_code: Option<i64>,
}

/// What `up` does with one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// No container: create and start one.
    Create,
    /// The container's spec differs, or it is cut off from the project's network: replace it.
    Recreate { id: String, why: Why },
    /// The container exists with the right spec but is not running.
    Start { id: String },
    /// Paused with the right spec: unpause it.
    Unpause { id: String },
    /// Running with the right spec: leave it alone (still probed).
    Keep { id: String },
}

/// Why a container is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Its settings changed.
    Settings,
    /// It is attached to a network that is no longer the project's (removed behind vibedev's
    /// back, or a duplicate left by a concurrent run).
    Network,
    /// The engine holds it dead or mid-removal: it cannot be started.
    Dead,
    /// Its image was built again since it was created.
    Image,
}

impl Action {
    /// The action's name in events and summaries.
    pub fn name(&self) -> &'static str {
        self.step().name()
    }

    /// What the action does, without the container it does it to.
    pub fn step(&self) -> Step {
        match self {
            Action::Create => Step::Create,
            Action::Recreate { .. } => Step::Recreate,
            Action::Start { .. } => Step::Start,
            Action::Unpause { .. } => Step::Unpause,
            Action::Keep { .. } => Step::Keep,
        }
    }
}

/// What `up` did with a service's container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    Create,
    Recreate,
    Start,
    Unpause,
    Keep,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::Create => "create",
            Step::Recreate => "recreate",
            Step::Start => "start",
            Step::Unpause => "unpause",
            Step::Keep => "keep",
        }
    }

    /// The container is new, or was started: its data may be new too.
    pub fn changed(self) -> bool {
        self != Step::Keep
    }
}

/// Decides what to do with one service, given its desired hash, what the engine has, the id of
/// the project's network (`None` when it does not exist yet), and whether it is a one-shot job
/// (one that completed successfully with the same settings is not run again).
pub fn plan(
    desired_hash: &str,
    observed: Option<&Observed>,
    network: Option<&str>,
    job: bool,
) -> Action {
    let Some(o) = observed else {
        return Action::Create;
    };
    let recreate = |why| Action::Recreate {
        id: o.id.clone(),
        why,
    };
    // A container on no network at all has been cut off only if it runs; one never started may
    // not list its network yet.
    let cut_off = match network {
        Some(net) => {
            (o.state == "running" || !o.networks.is_empty()) && !o.networks.iter().any(|n| n == net)
        }
        None => !o.networks.is_empty() || o.state == "running",
    };
    if o.hash != desired_hash {
        recreate(Why::Settings)
    } else if o.state == "dead" || o.state == "removing" {
        recreate(Why::Dead)
    } else if job && o.state == "exited" && o.exit_code == Some(0) {
        Action::Keep { id: o.id.clone() }
    } else if cut_off {
        recreate(Why::Network)
    } else if o.state == "running" {
        Action::Keep { id: o.id.clone() }
    } else if o.state == "paused" {
        Action::Unpause { id: o.id.clone() }
    } else {
        Action::Start { id: o.id.clone() }
    }
}

/// The order in which this run starts its containers, as a rank per service: a service starts
/// once every service of a lower rank has started (or failed). On a small machine starting
/// containers is CPU-bound engine work, so the services furthest from ready go first:
///   0  Postgres on a data volume this run created (its first start initialises the cluster,
///      the longest way to ready),
///   1  the Firestore emulator (a JVM), Postgres on existing data, and services of no known kind
///      (which may be slow),
///   2  services known to be ready moments after they start (Redis, fake-gcs).
/// Services that wait for others (`depends_on`) or that are left running have no rank.
/// Measured with interleaved runs on 2 cores: a cold `up` ~0.1 s faster than with Postgres and the
/// emulator started together; a restart is fastest with those two together (one after the other
/// was ~0.1 s slower), and all four at once slower again.
pub fn start_order(
    plans: &[(ServiceSpec, Action)],
    fresh_volumes: &BTreeSet<String>,
) -> BTreeMap<String, usize> {
    plans
        .iter()
        .filter(|(spec, action)| {
            !matches!(action, Action::Keep { .. }) && spec.depends_on.is_empty()
        })
        .map(|(spec, _)| {
            let fresh_data = spec
                .mounts
                .iter()
                .any(|m| matches!(m, Mount::Volume { name, .. } if fresh_volumes.contains(name)));
            // A service of no known kind may be slow: with the slow ones.
            let rank = spec
                .kind
                .map_or(1, |kind| usize::from(kind.start_rank(fresh_data)));
            (spec.name.clone(), rank)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigFile;

    fn project(toml: &str) -> Project {
        Project {
            root: PathBuf::from("/work/app"),
            config_path: Some(PathBuf::from("/work/app/vibedev.toml")),
            file: crate::config::parse_config(Path::new("vibedev.toml"), toml).unwrap(),
            name: "demo".into(),
        }
    }

    fn builtin(toml: &str) -> Stack {
        Stack::resolve(&project(toml)).unwrap()
    }

    #[test]
    fn default_stack_has_kinds_names_and_loopback_ports() {
        let s = builtin("");
        let pg = s.service("postgres").unwrap();
        assert_eq!(pg.kind, Some(Kind::POSTGRES));
        assert_eq!(pg.container_name, "demo-postgres");
        assert_eq!(pg.probe_port, Some(5432));
        let app = pg.settings.postgres.clone().unwrap();
        assert_eq!(
            (app.database.as_str(), app.user.as_str()),
            ("vibesdk", "vibesdk_app")
        );
        assert_eq!(
            s.service("gcs").unwrap().settings.buckets,
            ["vibesdk-templates"]
        );
        for svc in &s.services {
            assert!(svc.kind.is_some(), "{}", svc.name);
            for p in &svc.ports {
                assert_eq!(p.host_ip.as_deref(), Some("127.0.0.1"), "{}", svc.name);
            }
        }
        assert!(matches!(&pg.mounts[0], Mount::Volume { name, .. } if name == "demo_pgdata"));
    }

    #[test]
    fn overrides_change_only_their_service_hash() {
        let a = builtin("");
        let b = builtin("[services.redis]\nports = [\"16379:6379\"]\n");
        for (x, y) in a.services.iter().zip(&b.services) {
            assert_eq!(
                x.config_hash() == y.config_hash(),
                x.name != "redis",
                "{}",
                x.name
            );
        }
        let c = builtin("[services.postgres]\nenv = { POSTGRES_PASSWORD = \"other\" }\n");
        assert_ne!(a.services[0].config_hash(), c.services[0].config_hash());
        assert_eq!(
            c.services[0]
                .settings
                .postgres
                .clone()
                .unwrap()
                .admin_password,
            "other"
        );
    }

    /// A service with every hashed field set to a known value.
    fn known_service() -> ServiceSpec {
        let mut s = builtin("").services[0].clone();
        s.name = "db".into();
        s.container_name = "demo-db-1".into();
        s.image = "postgres:15".into();
        s.command = Some(vec!["postgres".into()]);
        s.entrypoint = None;
        s.env = BTreeMap::from([("A".to_string(), "1".to_string())]);
        s.ports = vec![PortSpec {
            host_ip: Some("127.0.0.1".into()),
            host_port: None,
            container_port: 5432,
            protocol: "tcp".into(),
        }];
        s.mounts = vec![Mount::Volume {
            name: "demo_data".into(),
            target: "/data".into(),
            read_only: false,
        }];
        s.labels = BTreeMap::from([("l".to_string(), "v".to_string())]);
        s.user = None;
        s.working_dir = None;
        s.healthcheck = None;
        s.stop_signal = None;
        s.tmpfs = Vec::new();
        s.files = vec![ServiceFile {
            target: "/run/secrets/pw".into(),
            data: b"s3cret".to_vec(),
            mode: 0o400,
            uid: 0,
            gid: 0,
        }];
        s.restart = None;
        s
    }

    #[test]
    fn config_hash_is_pinned_and_changes_with_each_field() {
        let base = known_service();
        // The hashed text, and its SHA-256 computed with Python's hashlib (first 16 hex digits). Hashes
        // are stored in container labels: a change here recreates every developer's containers.
        // A file's content enters only as its own digest (sha256 of "s3cret"): never in clear.
        assert_eq!(
            serde_json::to_string(&base).unwrap(),
            "{\"name\":\"db\",\"container_name\":\"demo-db-1\",\"image\":\"postgres:15\",\
             \"command\":[\"postgres\"],\"entrypoint\":null,\"env\":{\"A\":\"1\"},\
             \"ports\":[{\"host_ip\":\"127.0.0.1\",\"host_port\":null,\"container_port\":5432,\
             \"protocol\":\"tcp\"}],\"mounts\":[{\"type\":\"volume\",\"name\":\"demo_data\",\
             \"target\":\"/data\",\"read_only\":false}],\"labels\":{\"l\":\"v\"},\"user\":null,\
             \"working_dir\":null,\"healthcheck\":null,\"stop_signal\":null,\"tmpfs\":[],\
             \"files\":[{\"target\":\"/run/secrets/pw\",\
             \"data\":\"1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0\",\"mode\":256,\"uid\":0,\"gid\":0}],\"restart\":null}"
        );
        assert_eq!(base.config_hash(), "2b58967d78bb7ed9");

        type Edit = fn(&mut ServiceSpec);
        let edits: [(&str, Edit); 20] = [
            ("name", |s| s.name = "db2".into()),
            ("container_name", |s| s.container_name = "other".into()),
            ("image", |s| s.image = "postgres:16".into()),
            ("command", |s| s.command = None),
            ("entrypoint", |s| s.entrypoint = Some(vec!["sh".into()])),
            ("env value", |s| {
                s.env.insert("A".into(), "2".into());
            }),
            ("port", |s| s.ports[0].host_port = Some(15432)),
            ("port protocol", |s| s.ports[0].protocol = "udp".into()),
            ("mount", |s| s.mounts.clear()),
            ("mount read-only", |s| {
                s.mounts[0] = Mount::Volume {
                    name: "demo_data".into(),
                    target: "/data".into(),
                    read_only: true,
                }
            }),
            ("labels", |s| s.labels.clear()),
            ("user", |s| s.user = Some("1000".into())),
            ("working_dir", |s| s.working_dir = Some("/app".into())),
            ("healthcheck", |s| {
                s.healthcheck = Some(Healthcheck {
                    test: vec!["CMD".into(), "true".into()],
                    interval: None,
                    timeout: None,
                    retries: None,
                    start_period: None,
                })
            }),
            ("stop_signal", |s| s.stop_signal = Some("SIGINT".into())),
            ("tmpfs", |s| s.tmpfs = vec!["/tmp".into()]),
            ("file content", |s| s.files[0].data = b"other".to_vec()),
            ("file mode", |s| s.files[0].mode = 0o444),
            ("file owner", |s| s.files[0].uid = 1000),
            ("restart", |s| s.restart = Some("always".into())),
        ];
        let mut seen = BTreeSet::from([base.config_hash()]);
        for (what, edit) in edits {
            let mut s = known_service();
            edit(&mut s);
            assert!(
                seen.insert(s.config_hash()),
                "changing {what} changes the hash"
            );
        }
    }

    #[test]
    fn a_file_with_no_services_is_an_error_not_a_plan() {
        let compose = compose::parse(Path::new("/p/c.yml"), "services: {}\n").unwrap();
        let err = resolve_compose(
            &project(""),
            compose,
            ComposeSource::File(PathBuf::from("/p/c.yml")),
            Path::new("/p"),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("/p/c.yml: ") && msg.contains("no services"),
            "{msg}"
        );
    }

    #[test]
    fn bind_setting_overrides_every_port() {
        let s = builtin("bind = \"0.0.0.0\"\n");
        assert!(
            s.services
                .iter()
                .flat_map(|s| &s.ports)
                .all(|p| p.host_ip.as_deref() == Some("0.0.0.0"))
        );
    }

    #[test]
    fn override_of_unknown_service_is_an_error() {
        let err = Stack::resolve(&project("[services.mysql]\nimage = \"x\"\n")).unwrap_err();
        assert!(err.to_string().contains("[services.mysql]"), "{err}");
    }

    #[test]
    fn select_adds_dependencies_and_rejects_unknown_names() {
        let p = Project {
            file: ConfigFile::default(),
            ..project("")
        };
        let compose = compose::parse(
            Path::new("c.yml"),
            "services:\n  api:\n    image: x\n    depends_on: [db]\n  db:\n    image: y\n    x-vibedev: {kind: postgres}\n  other:\n    image: z\n",
        )
        .unwrap();
        let s = resolve_compose(&p, compose, ComposeSource::Builtin, Path::new("/")).unwrap();
        let names: Vec<_> = s
            .select(&["api".into()])
            .unwrap()
            .iter()
            .map(|s| s.name.clone())
            .collect();
        assert_eq!(names, ["api", "db"]);
        assert_eq!(s.service("db").unwrap().kind, Some(Kind::POSTGRES));
        assert_eq!(s.service("other").unwrap().kind, None);
        let err = s.select(&["nope".into()]).unwrap_err();
        assert_eq!(err.known, ["api", "db", "other"]);
    }

    #[test]
    fn dependency_cycles_are_rejected() {
        let compose = compose::parse(
            Path::new("c.yml"),
            "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: y\n    depends_on: [a]\n",
        )
        .unwrap();
        let err = resolve_compose(
            &project(""),
            compose,
            ComposeSource::Builtin,
            Path::new("/"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("cycle"), "{err}");
    }

    #[test]
    fn plan_covers_every_state() {
        let o = |hash: &str, state: &str| Observed {
            id: "c1".into(),
            hash: hash.into(),
            state: state.into(),
            networks: vec!["n1".into()],
            exit_code: None,
        };
        let net = Some("n1");
        let keep = Action::Keep { id: "c1".into() };
        let start = Action::Start { id: "c1".into() };
        let recreate = |why| Action::Recreate {
            id: "c1".into(),
            why,
        };
        assert_eq!(plan("h", None, net, false), Action::Create);
        assert_eq!(plan("h", Some(&o("h", "running")), net, false), keep);
        assert_eq!(plan("h", Some(&o("h", "exited")), net, false), start);
        assert_eq!(plan("h", Some(&o("h", "created")), net, false), start);
        assert_eq!(
            plan("h", Some(&o("h", "paused")), net, false),
            Action::Unpause { id: "c1".into() }
        );
        assert_eq!(
            plan("h", Some(&o("old", "running")), net, false),
            recreate(Why::Settings)
        );
        assert_eq!(
            plan("h", Some(&o("h", "dead")), net, false),
            recreate(Why::Dead)
        );
    }

    #[test]
    fn a_job_that_completed_with_the_same_settings_is_not_run_again() {
        let o = |hash: &str, state: &str, code: Option<i64>| Observed {
            id: "j1".into(),
            hash: hash.into(),
            state: state.into(),
            networks: vec!["n1".into()],
            exit_code: code,
        };
        let net = Some("n1");
        let keep = Action::Keep { id: "j1".into() };
        let start = Action::Start { id: "j1".into() };
        assert_eq!(plan("h", Some(&o("h", "exited", Some(0))), net, true), keep);
        assert_eq!(
            plan("h", Some(&o("h", "exited", Some(3))), net, true),
            start
        );
        // Still running from an interrupted up: waited for, not started twice.
        assert_eq!(plan("h", Some(&o("h", "running", None)), net, true), keep);
        assert!(matches!(
            plan("h2", Some(&o("h", "exited", Some(0))), net, true),
            Action::Recreate {
                why: Why::Settings,
                ..
            }
        ));
        // A service that is not a job is started again after it exited, even with 0.
        assert_eq!(
            plan("h", Some(&o("h", "exited", Some(0))), net, false),
            start
        );
    }

    #[test]
    fn dependency_conditions_mark_jobs_and_health_waits() {
        let mut services: Vec<ServiceSpec> = builtin("").services;
        services[0].conditions = BTreeMap::from([
            ("redis".to_string(), Condition::CompletedSuccessfully),
            ("gcs".to_string(), Condition::Healthy),
            ("firestore".to_string(), Condition::Started),
        ]);
        mark_dependencies(&mut services);
        let by = |n: &str| services.iter().find(|s| s.name == n).unwrap();
        assert!(by("redis").job && !by("redis").wait_healthy);
        assert!(by("gcs").wait_healthy && !by("gcs").job);
        assert!(!by("firestore").job && !by("firestore").wait_healthy);
        assert!(!by("postgres").job);
        assert_eq!(
            Condition::parse("service_completed_successfully"),
            Some(Condition::CompletedSuccessfully)
        );
        assert_eq!(Condition::parse("service_done"), None);
    }

    #[test]
    fn containers_cut_off_from_the_project_network_are_recreated() {
        let o = |state: &str, networks: &[&str]| Observed {
            id: "c1".into(),
            hash: "h".into(),
            state: state.into(),
            networks: networks.iter().map(|n| n.to_string()).collect(),
            exit_code: None,
        };
        let recreate = Action::Recreate {
            id: "c1".into(),
            why: Why::Network,
        };
        // The network was removed and made again: the container still points at the old one.
        assert_eq!(
            plan("h", Some(&o("running", &["old"])), Some("new"), false),
            recreate
        );
        assert_eq!(
            plan("h", Some(&o("exited", &["old"])), Some("new"), false),
            recreate
        );
        // Disconnected while running: no network, no published ports.
        assert_eq!(
            plan("h", Some(&o("running", &[])), Some("new"), false),
            recreate
        );
        // The network is gone and not made yet.
        assert_eq!(
            plan("h", Some(&o("exited", &["old"])), None, false),
            recreate
        );
        // Never started: the engine may not list its network yet.
        assert_eq!(
            plan("h", Some(&o("created", &[])), Some("new"), false),
            Action::Start { id: "c1".into() }
        );
        // A container on the project network and another one is fine.
        assert_eq!(
            plan(
                "h",
                Some(&o("running", &["other", "new"])),
                Some("new"),
                false
            ),
            Action::Keep { id: "c1".into() }
        );
    }

    #[test]
    fn services_furthest_from_ready_start_first() {
        let s = builtin("");
        let plans = |f: &dyn Fn(&mut ServiceSpec) -> Action| -> Vec<(ServiceSpec, Action)> {
            s.services
                .iter()
                .map(|spec| {
                    let mut spec = spec.clone();
                    let action = f(&mut spec);
                    (spec, action)
                })
                .collect()
        };
        let ranks = |order: BTreeMap<String, usize>| order.into_iter().collect::<Vec<_>>();
        let r = |name: &str, rank: usize| (name.to_string(), rank);
        let all_new = plans(&|_| Action::Create);
        let pgdata: BTreeSet<String> = s
            .service("postgres")
            .unwrap()
            .mounts
            .iter()
            .filter_map(|m| match m {
                Mount::Volume { name, .. } => Some(name.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(pgdata.len(), 1);
        // A fresh data volume: Postgres initialises its cluster first.
        assert_eq!(
            ranks(start_order(&all_new, &pgdata)),
            [
                r("firestore", 1),
                r("gcs", 2),
                r("postgres", 0),
                r("redis", 2)
            ]
        );
        // On existing data it starts with the emulator.
        assert_eq!(
            ranks(start_order(&all_new, &BTreeSet::new())),
            [
                r("firestore", 1),
                r("gcs", 2),
                r("postgres", 1),
                r("redis", 2)
            ]
        );
        // A service that waits for another has no rank, nor one left running.
        let mixed = plans(&|spec| match spec.name.as_str() {
            "firestore" => {
                spec.depends_on = vec!["redis".into()];
                Action::Create
            }
            "postgres" => Action::Keep { id: "c1".into() },
            _ => Action::Start { id: "c2".into() },
        });
        assert_eq!(
            ranks(start_order(&mixed, &pgdata)),
            [r("gcs", 2), r("redis", 2)]
        );
        // A service of no known kind may be slow: it is not held back.
        let custom = plans(&|spec| {
            if spec.name == "redis" {
                spec.kind = None;
            }
            Action::Create
        });
        assert_eq!(start_order(&custom, &pgdata)["redis"], 1);
    }

    fn from_compose(toml: &str, text: &str) -> Result<Stack, ConfigError> {
        let compose = compose::parse(Path::new("/work/app/c.yml"), text)?;
        resolve_compose(
            &project(toml),
            compose,
            ComposeSource::File("/work/app/c.yml".into()),
            Path::new("/work/app"),
        )
    }

    const PROFILED: &str = "services:\n  db:\n    image: x\n  debug:\n    image: y\n    profiles: [tools]\n    depends_on: [db]\n  admin:\n    image: z\n    profiles: [ops]\n";

    fn selected(s: &Stack, names: &[&str]) -> Vec<String> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        s.select(&names)
            .unwrap()
            .iter()
            .map(|s| s.name.clone())
            .collect()
    }

    #[test]
    fn profiled_services_start_only_when_a_profile_is_active_or_they_are_named() {
        let mut s = from_compose("", PROFILED).unwrap();
        if std::env::var_os("COMPOSE_PROFILES").is_none() {
            assert_eq!(selected(&s, &[]), ["db"]);
        }
        assert_eq!(selected(&s, &["debug"]), ["db", "debug"]);
        s.activate_profiles(&["ops".into()]);
        assert!(selected(&s, &[]).contains(&"admin".to_string()));
        let s = from_compose("profiles = [\"tools\"]\n", PROFILED).unwrap();
        assert!(selected(&s, &[]).contains(&"debug".to_string()));
    }

    #[test]
    fn compose_profiles_in_the_env_file_beside_the_compose_file_are_active() {
        if std::env::var_os("COMPOSE_PROFILES").is_some() {
            return; // the environment wins over `.env`, as with compose
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".env"), "COMPOSE_PROFILES=\"ops, tools\"\n").unwrap();
        let compose = compose::parse(&dir.path().join("c.yml"), PROFILED).unwrap();
        let s = resolve_compose(
            &project(""),
            compose,
            ComposeSource::File(dir.path().join("c.yml")),
            dir.path(),
        )
        .unwrap();
        assert_eq!(
            s.profiles,
            BTreeSet::from(["ops".to_string(), "tools".to_string()])
        );
        assert_eq!(selected(&s, &[]), ["db", "debug", "admin"]);
    }

    #[test]
    fn compose_name_names_the_project_unless_the_toml_does() {
        let text = "name: shop\nservices:\n  db:\n    image: x\n";
        let s = from_compose("", text).unwrap();
        assert_eq!(
            (s.project.as_str(), s.services[0].container_name.as_str()),
            ("shop", "shop-db")
        );
        // (the test project's name is `demo` whatever its toml says)
        let s = from_compose("project = \"mine\"\n", text).unwrap();
        assert_eq!(s.project, "demo");
    }

    #[test]
    fn built_service_without_image_gets_the_project_service_name() {
        let s = from_compose("", "services:\n  api:\n    build: .\n").unwrap();
        assert_eq!(s.services[0].image, "demo-api");
        let err = from_compose("", "services:\n  api:\n    command: x\n").unwrap_err();
        assert!(err.to_string().starts_with("/work/app/c.yml:"), "{err}");
    }
}
