//! `down`: this project's containers and network (found by label only) removed, and its volumes
//! when asked.

use futures_util::future::join_all;

use crate::engine::{Engine, EngineError};

use super::{Event, Reporter};

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
