//! Host ports a stack publishes: is each one free, and when not, who holds it (a container, with
//! its project, or a process of this machine).

use std::collections::BTreeSet;

use bollard::models::ContainerSummary;

use super::{Engine, LABEL_CHECKOUT, LABEL_PROJECT};
use crate::compose::PortSpec;
use crate::ports;

/// One host port a service publishes.
#[derive(Debug, Clone, Copy)]
pub struct WantedPort<'a> {
    pub service: &'a str,
    /// The host address (empty: all addresses).
    pub host_ip: &'a str,
    /// `None` (or 0): the engine chooses a free one.
    pub host_port: Option<u16>,
    pub protocol: &'a str,
}

impl<'a> WantedPort<'a> {
    /// A port of `service` as the compose file publishes it.
    pub fn of(service: &'a str, p: &'a PortSpec) -> WantedPort<'a> {
        WantedPort {
            service,
            host_ip: p.host_ip.as_deref().unwrap_or_default(),
            host_port: p.host_port,
            protocol: &p.protocol,
        }
    }
}

/// How a wanted port was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortState {
    /// The engine chooses it when the container starts: nothing to collide with.
    Chosen,
    /// Not TCP: not checked.
    NotChecked,
    Free,
    /// Held by this project's own container (named).
    Own(String),
}

/// A wanted port something else holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortTaken {
    pub service: String,
    pub host_ip: String,
    pub port: u16,
    /// Who holds it, when that can be told.
    pub holder: Option<String>,
    /// The other vibedev stack holding it, when it is one.
    pub stack: Option<OtherStack>,
}

/// Another vibedev stack, as its container's labels name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherStack {
    pub project: String,
    /// Its checkout, when its containers carry the label.
    pub checkout: Option<String>,
}

/// Checks each wanted port in turn and stops at the first one that is taken: by another wanted
/// port (the same address, port and protocol twice), by a container (named, with its project),
/// or by a process of this machine. `own` names this project's container that may hold a port
/// it wants (`own(service, port)`); such a port is fine.
pub async fn check_ports<'a>(
    engine: Option<&Engine>,
    wanted: impl IntoIterator<Item = WantedPort<'a>>,
    own: impl Fn(&str, u16) -> Option<String>,
) -> Result<Vec<(WantedPort<'a>, PortState)>, PortTaken> {
    let mut containers: Option<Vec<ContainerSummary>> = None;
    let mut seen = BTreeSet::new();
    let mut found = Vec::new();
    for w in wanted {
        let Some(port) = w.host_port.filter(|p| *p != 0) else {
            found.push((w, PortState::Chosen));
            continue;
        };
        let taken = |holder: Option<String>| PortTaken {
            service: w.service.to_string(),
            host_ip: w.host_ip.to_string(),
            port,
            holder,
            stack: None,
        };
        if !seen.insert((w.host_ip, port, w.protocol)) {
            return Err(taken(Some("another service of this stack".into())));
        }
        if w.protocol != "tcp" {
            found.push((w, PortState::NotChecked));
            continue;
        }
        if ports::is_free(w.host_ip, port) {
            found.push((w, PortState::Free));
            continue;
        }
        if let Some(name) = own(w.service, port) {
            found.push((w, PortState::Own(name)));
            continue;
        }
        if containers.is_none()
            && let Some(engine) = engine
        {
            containers = Some(engine.all_containers().await.unwrap_or_default());
        }
        let containers = containers.as_deref().unwrap_or_default();
        let holder = container_holding(containers, port).or_else(|| ports::holder(port));
        return Err(PortTaken {
            stack: stack_holding(containers, port),
            ..taken(holder)
        });
    }
    Ok(found)
}

/// Names the container publishing `port`, with its project when it has one.
pub fn container_holding(containers: &[ContainerSummary], port: u16) -> Option<String> {
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

/// The vibedev stack whose container publishes `port`, when one does.
pub fn stack_holding(containers: &[ContainerSummary], port: u16) -> Option<OtherStack> {
    containers.iter().find_map(|c| {
        c.ports
            .as_ref()?
            .iter()
            .any(|p| p.public_port == Some(port))
            .then_some(())?;
        let labels = c.labels.as_ref()?;
        Some(OtherStack {
            project: labels.get(LABEL_PROJECT)?.clone(),
            checkout: labels.get(LABEL_CHECKOUT).cloned(),
        })
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::net::TcpListener;

    use bollard::models::{PortSummary, PortSummaryTypeEnum};

    use super::*;

    fn wanted<'a>(service: &'a str, host_port: Option<u16>, protocol: &'a str) -> WantedPort<'a> {
        WantedPort {
            service,
            host_ip: "127.0.0.1",
            host_port,
            protocol,
        }
    }

    fn summary(name: &str, port: u16, labels: &[(&str, &str)]) -> ContainerSummary {
        ContainerSummary {
            names: Some(vec![format!("/{name}")]),
            ports: Some(vec![PortSummary {
                private_port: 6379,
                public_port: Some(port),
                typ: Some(PortSummaryTypeEnum::TCP),
                ..Default::default()
            }]),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<HashMap<_, _>>(),
            ),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_port_held_by_this_process_is_taken_and_names_it() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let taken = check_ports(None, [wanted("redis", Some(port), "tcp")], |_, _| None)
            .await
            .unwrap_err();
        assert_eq!(taken.service, "redis");
        assert_eq!(taken.host_ip, "127.0.0.1");
        assert_eq!(taken.port, port);
        let holder = taken.holder.unwrap();
        assert!(
            holder.starts_with(&format!("PID {} (", std::process::id())),
            "{holder}"
        );
    }

    #[tokio::test]
    async fn own_chosen_and_other_protocols_pass_and_say_so() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let found = check_ports(
            None,
            [
                wanted("redis", Some(port), "tcp"),
                wanted("dns", Some(port), "udp"),
                wanted("web", None, "tcp"),
                wanted("web", Some(0), "tcp"),
            ],
            |service, p| (service == "redis" && p == port).then(|| "demo-redis".to_string()),
        )
        .await
        .unwrap();
        let states: Vec<(&str, PortState)> =
            found.into_iter().map(|(w, s)| (w.service, s)).collect();
        assert_eq!(
            states,
            [
                ("redis", PortState::Own("demo-redis".into())),
                ("dns", PortState::NotChecked),
                ("web", PortState::Chosen),
                ("web", PortState::Chosen),
            ]
        );
    }

    #[tokio::test]
    async fn the_same_port_twice_in_the_stack_is_taken_by_the_stack() {
        let taken = check_ports(
            None,
            [wanted("a", Some(1), "udp"), wanted("b", Some(1), "udp")],
            |_, _| None,
        )
        .await
        .unwrap_err();
        assert_eq!(taken.service, "b");
        assert_eq!(
            taken.holder.as_deref(),
            Some("another service of this stack")
        );
    }

    #[test]
    fn the_container_holding_a_port_is_named_with_its_project() {
        let containers = [
            summary("web", 8080, &[]),
            summary("db", 5432, &[(LABEL_PROJECT, "shop")]),
            summary("cache", 6379, &[("com.docker.compose.project", "other")]),
        ];
        assert_eq!(
            container_holding(&containers, 5432).as_deref(),
            Some("container db (vibedev project shop)")
        );
        assert_eq!(
            container_holding(&containers, 6379).as_deref(),
            Some("container cache (compose project other)")
        );
        assert_eq!(
            container_holding(&containers, 8080).as_deref(),
            Some("container web")
        );
        assert_eq!(container_holding(&containers, 1), None);
        assert_eq!(
            stack_holding(&containers, 5432),
            Some(OtherStack {
                project: "shop".into(),
                checkout: None
            })
        );
        assert_eq!(stack_holding(&containers, 6379), None);
        let labelled = [summary(
            "db",
            5432,
            &[(LABEL_PROJECT, "shop"), (LABEL_CHECKOUT, "/src/shop")],
        )];
        assert_eq!(
            stack_holding(&labelled, 5432).and_then(|s| s.checkout),
            Some("/src/shop".to_string())
        );
    }
}
