//! Networks and volumes, created with vibedev's labels and found by them.

use std::collections::HashMap;

use bollard::models::{NetworkCreateRequest, VolumeCreateRequest};
use bollard::query_parameters::{
    ListNetworksOptionsBuilder, ListVolumesOptionsBuilder, RemoveVolumeOptionsBuilder,
};

use super::{Engine, EngineError, LABEL_PROJECT, is_conflict, is_not_found};

/// A volume the engine reports for this project.
#[derive(Debug, Clone)]
pub struct VolumeInfo {
    pub name: String,
    pub labels: HashMap<String, String>,
}

impl Engine {
    /// Creates the project's network unless it exists; an existing network without this
    /// project's label is an error rather than silently shared.
    pub async fn ensure_network(
        &self,
        name: &str,
        labels: HashMap<String, String>,
    ) -> Result<(), EngineError> {
        let project = labels.get(LABEL_PROJECT).cloned().unwrap_or_default();
        match self.docker.inspect_network(name, None).await {
            Ok(net) => {
                let owner = net.labels.unwrap_or_default().get(LABEL_PROJECT).cloned();
                if owner.as_deref() == Some(project.as_str()) {
                    return Ok(());
                }
                return Err(EngineError::Api {
                    action: format!(
                        "use network {name}: it exists but was not created by vibedev for project {project}; remove or rename it"
                    ),
                    source: bollard::errors::Error::DockerResponseServerError {
                        status_code: 409,
                        message: "network exists without vibedev's labels".into(),
                    },
                });
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(EngineError::api(format!("inspect network {name}"), e)),
        }
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            labels: Some(labels),
            ..Default::default()
        };
        match self.docker.create_network(request).await {
            Ok(_) => Ok(()),
            // Created concurrently by another run: same outcome.
            Err(e) if is_conflict(&e) => Ok(()),
            Err(e) => Err(EngineError::api(format!("create network {name}"), e)),
        }
    }

    /// Networks carrying this project's label.
    pub async fn project_networks(&self, project: &str) -> Result<Vec<String>, EngineError> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{LABEL_PROJECT}={project}")],
        )]);
        let options = ListNetworksOptionsBuilder::default()
            .filters(&filters)
            .build();
        let nets = self
            .docker
            .list_networks(Some(options))
            .await
            .map_err(|e| EngineError::api("list networks", e))?;
        Ok(nets
            .into_iter()
            .filter(|n| {
                n.labels
                    .as_ref()
                    .and_then(|l| l.get(LABEL_PROJECT))
                    .map(String::as_str)
                    == Some(project)
            })
            .filter_map(|n| n.name)
            .collect())
    }

    pub async fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        match self.docker.remove_network(name).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(EngineError::api(format!("remove network {name}"), e)),
        }
    }

    /// Creates a named volume unless it exists. Returns true when it was created now.
    pub async fn ensure_volume(
        &self,
        name: &str,
        driver: Option<&str>,
        labels: HashMap<String, String>,
    ) -> Result<bool, EngineError> {
        match self.docker.inspect_volume(name).await {
            Ok(_) => return Ok(false),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(EngineError::api(format!("inspect volume {name}"), e)),
        }
        let request = VolumeCreateRequest {
            name: Some(name.to_string()),
            driver: driver.map(str::to_string),
            labels: Some(labels),
            ..Default::default()
        };
        self.docker
            .create_volume(request)
            .await
            .map_err(|e| EngineError::api(format!("create volume {name}"), e))?;
        Ok(true)
    }

    /// Volumes carrying this project's label.
    pub async fn project_volumes(&self, project: &str) -> Result<Vec<VolumeInfo>, EngineError> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{LABEL_PROJECT}={project}")],
        )]);
        let options = ListVolumesOptionsBuilder::default()
            .filters(&filters)
            .build();
        let resp = self
            .docker
            .list_volumes(Some(options))
            .await
            .map_err(|e| EngineError::api("list volumes", e))?;
        Ok(resp
            .volumes
            .unwrap_or_default()
            .into_iter()
            .filter(|v| v.labels.get(LABEL_PROJECT).map(String::as_str) == Some(project))
            .map(|v| VolumeInfo {
                name: v.name,
                labels: v.labels,
            })
            .collect())
    }

    pub async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        let options = RemoveVolumeOptionsBuilder::default().force(false).build();
        match self.docker.remove_volume(name, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(EngineError::api(format!("remove volume {name}"), e)),
        }
    }
}
