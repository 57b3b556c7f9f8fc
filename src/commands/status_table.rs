//! The service table `status` and `up` print (and `status --json`'s rows). Shared by the
//! commands; not a command.

pub use crate::runtime::{StatusRow, status_rows as rows};
use crate::ui::{self, Ui};

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
