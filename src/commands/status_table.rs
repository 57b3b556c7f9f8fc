//! The service table `status` and `up` print (and `status --json`'s rows). Shared by the
//! commands; not a command.

use serde::Serialize;

use crate::runtime::{Published, ServiceRuntime};
use crate::stack::Stack;
use crate::ui::{self, Ui};

/// One service's status; the JSON output is an array of these (a stable shape for scripts).
#[derive(Debug, Clone, Serialize)]
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
pub fn rows(stack: &Stack, runtimes: &[ServiceRuntime], ready: &[bool]) -> Vec<StatusRow> {
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

/// The human table.
pub fn table(ui: &Ui, rows: &[StatusRow]) -> Vec<String> {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let state = if r.state == "running" && !r.up_to_date {
                format!("{} (outdated)", r.state)
            } else {
                r.state.clone()
            };
            vec![
                r.service.clone(),
                state,
                if r.ready {
                    console::style("yes").green().to_string()
                } else {
                    console::style("no").red().to_string()
                },
                r.ports
                    .iter()
                    .map(|p| format!("{}->{}", p.host_port, p.container_port))
                    .collect::<Vec<_>>()
                    .join(","),
                r.url.clone().unwrap_or_else(|| "-".into()),
                r.uptime_seconds
                    .map(|s| ui::uptime(std::time::Duration::from_secs(s)))
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    ui.table(
        &["service", "state", "ready", "ports", "url", "uptime"],
        &cells,
    )
}
