//! Every vibedev stack on the engine, as `vibedev ls` and `vibedev prune` show it: its checkout
//! (and whether that still exists), the branch checked out there, services running, host ports,
//! the disk its volumes use, its snapshots and when it was last used.

use std::collections::BTreeSet;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::autoports::{PortFile, PortFiles};
use crate::engine::stacks::EngineStack;
use crate::engine::{Engine, EngineError};

/// One stack, summarised.
#[derive(Debug, Clone, Serialize)]
pub struct StackSummary {
    pub project: String,
    /// Where it was brought up from, when its containers, volumes or port file say.
    pub checkout: Option<PathBuf>,
    /// False when the checkout is known and no longer exists.
    pub checkout_exists: bool,
    /// The branch checked out there now.
    pub branch: Option<String>,
    /// Services with a running container.
    pub running: usize,
    /// Services with a container.
    pub services: usize,
    pub ports: Vec<PortUse>,
    pub volumes: Vec<VolumeUse>,
    /// Bytes its volumes use (those the engine measured).
    pub disk_bytes: u64,
    /// The latest start or stop of one of its containers (or creation of a volume).
    pub last_used: Option<DateTime<Utc>>,
    /// Its snapshots in the user's data folder (`vibedev snapshot list`).
    pub snapshots: SnapshotUse,
}

/// How many snapshots a project keeps and the disk they use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SnapshotUse {
    pub count: usize,
    pub bytes: u64,
}

impl SnapshotUse {
    /// The project's snapshots (none when the data folder cannot be read).
    pub fn of(project: &str) -> SnapshotUse {
        let list = crate::snapshot::list(project).unwrap_or_default();
        SnapshotUse {
            count: list.len(),
            bytes: list.iter().map(crate::snapshot::Manifest::bytes).sum(),
        }
    }
}

/// A host port a running container publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortUse {
    pub service: String,
    pub host_port: u16,
    pub container_port: u16,
}

/// A volume and its size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeUse {
    pub name: String,
    pub bytes: Option<u64>,
}

impl StackSummary {
    /// Its checkout is known and gone: `prune` offers to remove it.
    pub fn orphaned(&self) -> bool {
        self.checkout.is_some() && !self.checkout_exists
    }
}

/// Every stack on the engine, by project name.
pub async fn list(engine: &Engine) -> Result<Vec<StackSummary>, EngineError> {
    let stacks = engine.vibedev_stacks().await?;
    let files = PortFiles::open().map(|f| f.all()).unwrap_or_default();
    Ok(stacks
        .into_iter()
        .map(|s| {
            let file = files.iter().find(|f| f.project == s.project);
            let mut summary = summarize(s, file);
            summary.snapshots = SnapshotUse::of(&summary.project);
            if let Some(checkout) = &summary.checkout {
                summary.checkout_exists = checkout.exists();
                if summary.checkout_exists {
                    summary.branch = crate::git::branch(checkout);
                }
            }
            summary
        })
        .collect())
}

/// What the engine (and the port file) say about one stack; the checkout is taken to exist
/// until it is looked at.
pub fn summarize(stack: EngineStack, file: Option<&PortFile>) -> StackSummary {
    let checkout = stack
        .containers
        .iter()
        .find_map(|c| c.checkout.clone())
        .or_else(|| stack.volumes.iter().find_map(|v| v.checkout.clone()))
        .map(PathBuf::from)
        .or_else(|| file.map(|f| f.checkout.clone()));
    let services: BTreeSet<&str> = stack
        .containers
        .iter()
        .map(|c| c.service.as_str())
        .collect();
    let running: BTreeSet<&str> = stack
        .containers
        .iter()
        .filter(|c| c.state == "running")
        .map(|c| c.service.as_str())
        .collect();
    let mut ports: Vec<PortUse> = stack
        .containers
        .iter()
        .filter(|c| c.state == "running")
        .flat_map(|c| {
            c.ports.iter().map(|(host, container)| PortUse {
                service: c.service.clone(),
                host_port: *host,
                container_port: *container,
            })
        })
        .collect();
    ports.sort_by_key(|p| p.host_port);
    // The engine lists a port once per address family.
    ports.dedup();
    let last_used = stack
        .containers
        .iter()
        .flat_map(|c| [c.started_at, c.finished_at])
        .chain(stack.volumes.iter().map(|v| v.created_at))
        .flatten()
        .max();
    let volumes: Vec<VolumeUse> = stack
        .volumes
        .iter()
        .map(|v| VolumeUse {
            name: v.name.clone(),
            bytes: v.size,
        })
        .collect();
    StackSummary {
        project: stack.project,
        checkout,
        checkout_exists: true,
        branch: None,
        running: running.len(),
        services: services.len(),
        ports,
        disk_bytes: volumes.iter().filter_map(|v| v.bytes).sum(),
        volumes,
        last_used,
        snapshots: SnapshotUse::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::stacks::{StackContainer, StackVolume};

    fn at(s: &str) -> Option<DateTime<Utc>> {
        Some(DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc))
    }

    fn container(service: &str, state: &str, checkout: Option<&str>) -> StackContainer {
        StackContainer {
            name: format!("p-{service}"),
            service: service.into(),
            state: state.into(),
            checkout: checkout.map(str::to_string),
            ports: if state == "running" {
                vec![(21002, 6379), (21002, 6379)]
            } else {
                Vec::new()
            },
            started_at: at("2025-01-01T10:00:00Z"),
            finished_at: None,
        }
    }

    #[test]
    fn a_stack_is_summarised_from_its_containers_and_volumes() {
        let mut stopped = container("postgres", "exited", None);
        stopped.finished_at = at("2025-01-02T08:00:00Z");
        let stack = EngineStack {
            project: "p".into(),
            containers: vec![container("redis", "running", Some("/src/p")), stopped],
            volumes: vec![
                StackVolume {
                    name: "p_pgdata".into(),
                    checkout: None,
                    created_at: at("2024-12-31T00:00:00Z"),
                    size: Some(1000),
                },
                StackVolume {
                    name: "p_other".into(),
                    checkout: None,
                    created_at: None,
                    size: None,
                },
            ],
        };
        let s = summarize(stack, None);
        assert_eq!(s.checkout, Some(PathBuf::from("/src/p")));
        assert_eq!((s.running, s.services), (1, 2));
        assert_eq!(
            s.ports,
            [PortUse {
                service: "redis".into(),
                host_port: 21002,
                container_port: 6379
            }]
        );
        assert_eq!(s.disk_bytes, 1000);
        assert_eq!(s.last_used, at("2025-01-02T08:00:00Z"));
    }

    #[test]
    fn a_stack_that_is_down_takes_its_checkout_from_a_volume_or_its_port_file() {
        let volume = |checkout: Option<&str>| StackVolume {
            name: "p_data".into(),
            checkout: checkout.map(str::to_string),
            created_at: at("2025-01-01T00:00:00Z"),
            size: Some(5),
        };
        let down = |checkout| EngineStack {
            project: "p".into(),
            containers: Vec::new(),
            volumes: vec![volume(checkout)],
        };
        let s = summarize(down(Some("/src/v")), None);
        assert_eq!(s.checkout, Some(PathBuf::from("/src/v")));
        assert_eq!((s.running, s.services), (0, 0));
        let file = PortFile {
            project: "p".into(),
            checkout: "/src/f".into(),
            auto: false,
            ports: Vec::new(),
        };
        assert_eq!(
            summarize(down(None), Some(&file)).checkout,
            Some(PathBuf::from("/src/f"))
        );
        let unknown = summarize(down(None), None);
        assert_eq!(unknown.checkout, None);
        assert!(!unknown.orphaned());
    }
}
