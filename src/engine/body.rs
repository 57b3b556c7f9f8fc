//! A container as the engine creates it: one service's settings in the engine's terms (labels,
//! port bindings, mounts, tmpfs, health check, restart policy, network and alias).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HostConfig, Mount as DockerMount,
    MountType, NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};

use super::containers::ContainerFile;
use super::{LABEL_CHECKOUT, LABEL_HASH, LABEL_KIND, LABEL_PROJECT, LABEL_SERVICE, LABEL_VOLUME};
use crate::compose::{Healthcheck, PortSpec};

/// One container to create: what a service resolved to, and where it belongs.
#[derive(Debug, Clone)]
pub struct ContainerSpec<'a> {
    pub project: &'a str,
    /// The checkout the stack comes from, kept in a label (not part of the config hash).
    pub checkout: Option<&'a Path>,
    /// The network it joins (name or id), where the service's name is its alias.
    pub network: &'a str,
    pub service: &'a str,
    /// The hash of the service's resolved settings, kept in a label.
    pub hash: &'a str,
    /// The kind of service, kept in a label.
    pub kind: Option<&'a str>,
    pub image: &'a str,
    pub command: Option<&'a [String]>,
    pub entrypoint: Option<&'a [String]>,
    pub env: &'a BTreeMap<String, String>,
    pub ports: &'a [PortSpec],
    pub mounts: Vec<MountSpec<'a>>,
    pub labels: &'a BTreeMap<String, String>,
    pub user: Option<&'a str>,
    pub working_dir: Option<&'a str>,
    pub healthcheck: Option<&'a Healthcheck>,
    pub stop_signal: Option<&'a str>,
    pub stop_grace_secs: u64,
    /// Compose's `tmpfs:` entries (`/path` or `/path:options`).
    pub tmpfs: &'a [String],
    /// Compose's `restart:` (`always`, `unless-stopped`, `on-failure[:N]`).
    pub restart: Option<&'a str>,
    /// Written into the container after it is created, before it starts.
    pub files: Vec<ContainerFile>,
}

/// A mount of a container.
#[derive(Debug, Clone, Copy)]
pub enum MountSpec<'a> {
    /// A named volume (its name on the engine).
    Volume {
        name: &'a str,
        target: &'a str,
        read_only: bool,
    },
    /// A host path.
    Bind {
        source: &'a Path,
        target: &'a str,
        read_only: bool,
    },
    /// An anonymous volume (dropped with the container).
    Anonymous { target: &'a str },
}

/// The label every resource of `project` carries.
pub fn project_labels(project: &str) -> HashMap<String, String> {
    HashMap::from([(LABEL_PROJECT.to_string(), project.to_string())])
}

/// The labels of a project's named volume: the project's, the volume's key in the compose file,
/// then those the compose file gives it.
pub fn volume_labels(
    project: &str,
    key: &str,
    extra: &BTreeMap<String, String>,
) -> HashMap<String, String> {
    let mut labels = project_labels(project);
    labels.insert(LABEL_VOLUME.to_string(), key.to_string());
    labels.extend(extra.clone());
    labels
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

/// The engine's view of a container spec.
pub fn container_body(spec: &ContainerSpec<'_>) -> ContainerCreateBody {
    let mut labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
    labels.insert(LABEL_PROJECT.into(), spec.project.to_string());
    labels.insert(LABEL_SERVICE.into(), spec.service.to_string());
    labels.insert(LABEL_HASH.into(), spec.hash.to_string());
    if let Some(checkout) = spec.checkout {
        labels.insert(
            LABEL_CHECKOUT.into(),
            checkout.to_string_lossy().into_owned(),
        );
    }
    if let Some(kind) = spec.kind {
        labels.insert(LABEL_KIND.into(), kind.into());
    }
    let mut port_bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for p in spec.ports {
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
        .map(|m| match *m {
            MountSpec::Volume {
                name,
                target,
                read_only,
            } => DockerMount {
                target: Some(target.to_string()),
                source: Some(name.to_string()),
                typ: Some(MountType::VOLUME),
                read_only: Some(read_only),
                ..Default::default()
            },
            MountSpec::Bind {
                source,
                target,
                read_only,
            } => DockerMount {
                target: Some(target.to_string()),
                source: Some(source.to_string_lossy().into_owned()),
                typ: Some(MountType::BIND),
                read_only: Some(read_only),
                ..Default::default()
            },
            MountSpec::Anonymous { target } => DockerMount {
                target: Some(target.to_string()),
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
        image: Some(spec.image.to_string()),
        cmd: spec.command.map(<[String]>::to_vec),
        entrypoint: spec.entrypoint.map(<[String]>::to_vec),
        env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(labels),
        hostname: Some(spec.service.to_string()),
        user: spec.user.map(str::to_string),
        working_dir: spec.working_dir.map(str::to_string),
        stop_signal: spec.stop_signal.map(str::to_string),
        stop_timeout: Some(spec.stop_grace_secs as i64),
        exposed_ports: Some(port_bindings.keys().cloned().collect()),
        healthcheck: spec.healthcheck.map(|h| HealthConfig {
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
            network_mode: Some(spec.network.to_string()),
            restart_policy: restart_policy(spec.restart),
            init: None,
            ..Default::default()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                spec.network.to_string(),
                EndpointSettings {
                    aliases: Some(vec![spec.service.to_string()]),
                    ..Default::default()
                },
            )])),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(host_ip: Option<&str>, host_port: Option<u16>, container_port: u16) -> PortSpec {
        PortSpec {
            host_ip: host_ip.map(str::to_string),
            host_port,
            container_port,
            protocol: "tcp".into(),
        }
    }

    #[test]
    fn a_body_carries_labels_bindings_mounts_and_the_network() {
        let env = BTreeMap::from([("A".to_string(), "1".to_string())]);
        // A label of the compose file cannot pass for vibedev's own.
        let labels = BTreeMap::from([
            ("team".to_string(), "data".to_string()),
            (LABEL_PROJECT.to_string(), "other".to_string()),
        ]);
        let ports = [
            port(Some("127.0.0.1"), Some(5432), 5432),
            port(Some("::1"), Some(5432), 5432),
            port(None, None, 9000),
        ];
        let tmpfs = ["/run".to_string(), "/tmp:size=64m".to_string()];
        let health = Healthcheck {
            test: vec!["CMD".into(), "true".into()],
            interval: Some(1_000_000_000),
            timeout: None,
            retries: Some(3),
            start_period: None,
        };
        let command = ["serve".to_string()];
        let spec = ContainerSpec {
            project: "demo",
            checkout: Some(Path::new("/src/demo")),
            network: "net-id",
            service: "db",
            hash: "abc",
            kind: Some("postgres"),
            image: "postgres:15",
            command: Some(&command),
            entrypoint: None,
            env: &env,
            ports: &ports,
            mounts: vec![
                MountSpec::Volume {
                    name: "demo_data",
                    target: "/data",
                    read_only: false,
                },
                MountSpec::Bind {
                    source: Path::new("/w/conf"),
                    target: "/conf",
                    read_only: true,
                },
                MountSpec::Anonymous { target: "/cache" },
            ],
            labels: &labels,
            user: Some("1000"),
            working_dir: None,
            healthcheck: Some(&health),
            stop_signal: Some("SIGINT"),
            stop_grace_secs: 7,
            tmpfs: &tmpfs,
            restart: Some("unless-stopped"),
            files: Vec::new(),
        };
        let body = container_body(&spec);
        let labels = body.labels.clone().unwrap();
        assert_eq!(labels[LABEL_PROJECT], "demo");
        assert_eq!(labels[LABEL_SERVICE], "db");
        assert_eq!(labels[LABEL_HASH], "abc");
        assert_eq!(labels[LABEL_KIND], "postgres");
        assert_eq!(labels[LABEL_CHECKOUT], "/src/demo");
        assert_eq!(labels["team"], "data");
        assert_eq!(body.env, Some(vec!["A=1".to_string()]));
        assert_eq!(body.cmd, Some(vec!["serve".to_string()]));
        assert_eq!(body.hostname.as_deref(), Some("db"));
        assert_eq!(body.stop_timeout, Some(7));
        assert_eq!(body.healthcheck.unwrap().retries, Some(3));
        let mut exposed = body.exposed_ports.unwrap();
        exposed.sort();
        assert_eq!(exposed, ["5432/tcp", "9000/tcp"]);

        let host = body.host_config.unwrap();
        let bindings = host.port_bindings.unwrap();
        let pg: Vec<(Option<String>, Option<String>)> = bindings["5432/tcp"]
            .clone()
            .unwrap()
            .into_iter()
            .map(|b| (b.host_ip, b.host_port))
            .collect();
        assert_eq!(
            pg,
            [
                (Some("127.0.0.1".into()), Some("5432".into())),
                (Some("::1".into()), Some("5432".into()))
            ]
        );
        // No host port: the engine chooses one.
        assert_eq!(bindings["9000/tcp"].clone().unwrap()[0].host_port, None);
        let mounts: Vec<_> = host
            .mounts
            .unwrap()
            .into_iter()
            .map(|m| (m.typ, m.source, m.target.unwrap(), m.read_only))
            .collect();
        assert_eq!(
            mounts,
            [
                (
                    Some(MountType::VOLUME),
                    Some("demo_data".into()),
                    "/data".into(),
                    Some(false)
                ),
                (
                    Some(MountType::BIND),
                    Some("/w/conf".into()),
                    "/conf".into(),
                    Some(true)
                ),
                (Some(MountType::VOLUME), None, "/cache".into(), None),
            ]
        );
        let tmpfs = host.tmpfs.unwrap();
        assert_eq!(tmpfs["/run"], "");
        assert_eq!(tmpfs["/tmp"], "size=64m");
        assert_eq!(host.network_mode.as_deref(), Some("net-id"));
        assert_eq!(
            host.restart_policy.unwrap().name,
            Some(RestartPolicyNameEnum::UNLESS_STOPPED)
        );
        let endpoints = body.networking_config.unwrap().endpoints_config.unwrap();
        assert_eq!(endpoints["net-id"].aliases, Some(vec!["db".to_string()]));
    }

    #[test]
    fn compose_restart_values_become_engine_policies() {
        let policy = |r| restart_policy(Some(r)).map(|p| (p.name, p.maximum_retry_count));
        assert_eq!(
            policy("always"),
            Some((Some(RestartPolicyNameEnum::ALWAYS), None))
        );
        assert_eq!(
            policy("on-failure:3"),
            Some((Some(RestartPolicyNameEnum::ON_FAILURE), Some(3)))
        );
        assert_eq!(
            policy("on-failure"),
            Some((Some(RestartPolicyNameEnum::ON_FAILURE), None))
        );
        assert_eq!(policy("no"), None);
        assert_eq!(restart_policy(None), None);
    }

    #[test]
    fn volume_labels_name_the_project_and_the_key() {
        let extra = BTreeMap::from([("backup".to_string(), "daily".to_string())]);
        let labels = volume_labels("demo", "pgdata", &extra);
        assert_eq!(labels[LABEL_PROJECT], "demo");
        assert_eq!(labels[LABEL_VOLUME], "pgdata");
        assert_eq!(labels["backup"], "daily");
        assert_eq!(labels.len(), 3);
    }
}
