//! Networks and volumes, created with vibedev's labels and found by them.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{NetworkCreateRequest, NetworkDisconnectRequest, VolumeCreateRequest};
use bollard::query_parameters::{
    ListNetworksOptionsBuilder, ListVolumesOptionsBuilder, RemoveVolumeOptionsBuilder,
};

use super::body::{project_labels, volume_labels};
use super::{
    CACHE_VOLUME, Engine, EngineError, LABEL_CACHE, LABEL_PROJECT, is_conflict, is_not_found,
};

/// A volume the engine reports for this project.
#[derive(Debug, Clone)]
pub struct VolumeInfo {
    pub name: String,
    pub labels: HashMap<String, String>,
}

impl Engine {
    /// Makes sure the project has exactly one network called `name` and returns its id: creates it
    /// when missing, and reduces duplicates (left by concurrent runs) to one, keeping the one most
    /// containers use. A network of that name without this project's label is refused.
    pub async fn ensure_network(&self, name: &str, project: &str) -> Result<String, EngineError> {
        let mut ours = self.networks_named(name, project).await?;
        if ours.is_empty() {
            let request = NetworkCreateRequest {
                name: name.to_string(),
                driver: Some("bridge".into()),
                labels: Some(project_labels(project)),
                ..Default::default()
            };
            match self.docker.create_network(request).await {
                // Created meanwhile (older engines allow duplicate names): found below.
                Ok(_) => {}
                Err(e) if is_conflict(&e) => {}
                Err(e) => return Err(EngineError::api(format!("create network {name}"), e)),
            }
            // Another run's create may have landed too: keep one.
            ours = self.networks_named(name, project).await?;
        }
        self.keep_one_network(ours)
            .await?
            .ok_or_else(|| EngineError::Api {
                action: format!("find network {name} after creating it"),
                source: bollard::errors::Error::DockerResponseServerError {
                    status_code: 404,
                    message: "network not found".into(),
                },
            })
    }

    /// The id of the project's network called `name`, when it exists; duplicates are reduced to
    /// one as in [`Engine::ensure_network`], and a foreign network of that name is refused.
    pub async fn find_network(
        &self,
        name: &str,
        project: &str,
    ) -> Result<Option<String>, EngineError> {
        let ours = self.networks_named(name, project).await?;
        self.keep_one_network(ours).await
    }

    /// The ids of the networks called exactly `name` that carry `project`'s label; one without
    /// it is an error (never shared, never removed).
    async fn networks_named(&self, name: &str, project: &str) -> Result<Vec<String>, EngineError> {
        // The engine's name filter matches substrings: compare exactly here.
        let nets = self.list_networks("name", name.to_string()).await?;
        let mut ids = Vec::new();
        for net in nets.into_iter().filter(|n| n.name.as_deref() == Some(name)) {
            let owner = net
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_PROJECT))
                .map(String::as_str);
            if owner != Some(project) {
                return Err(EngineError::Foreign {
                    kind: "network",
                    name: name.to_string(),
                    project: project.to_string(),
                });
            }
            ids.extend(net.id);
        }
        Ok(ids)
    }

    /// Of several networks with the project's name, keeps the one most containers use (the
    /// oldest on a tie) and removes the others, disconnecting what they hold: those containers
    /// are recreated on the kept network by `up`. Returns the kept id.
    async fn keep_one_network(&self, ids: Vec<String>) -> Result<Option<String>, EngineError> {
        if ids.len() < 2 {
            return Ok(ids.into_iter().next());
        }
        let mut nets = Vec::new();
        for id in ids {
            match self.docker.inspect_network(&id, None).await {
                Ok(n) => nets.push(n),
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(EngineError::api(format!("inspect network {id}"), e)),
            }
        }
        nets.sort_by_key(|n| {
            (
                std::cmp::Reverse(n.containers.as_ref().map_or(0, HashMap::len)),
                n.created.clone().map(|c| c.to_string()).unwrap_or_default(),
            )
        });
        let mut nets = nets.into_iter();
        let Some(keep) = nets.next() else {
            return Ok(None);
        };
        for extra in nets {
            let id = extra.id.clone().unwrap_or_default();
            for container in extra.containers.unwrap_or_default().into_keys() {
                let request = NetworkDisconnectRequest {
                    container,
                    force: Some(true),
                };
                match self.docker.disconnect_network(&id, request).await {
                    Ok(()) => {}
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => {
                        return Err(EngineError::api(format!("disconnect network {id}"), e));
                    }
                }
            }
            self.remove_network(&id).await?;
        }
        Ok(keep.id)
    }

    /// Networks carrying this project's label.
    pub async fn project_networks(&self, project: &str) -> Result<Vec<String>, EngineError> {
        let nets = self
            .list_networks("label", format!("{LABEL_PROJECT}={project}"))
            .await?;
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

    /// Networks matching one filter (`name`, `label`, ...).
    async fn list_networks(
        &self,
        filter: &str,
        value: String,
    ) -> Result<Vec<bollard::models::Network>, EngineError> {
        let filters = HashMap::from([(filter.to_string(), vec![value])]);
        let options = ListNetworksOptionsBuilder::default()
            .filters(&filters)
            .build();
        self.docker
            .list_networks(Some(options))
            .await
            .map_err(|e| EngineError::api("list networks", e))
    }

    pub async fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        match self.docker.remove_network(name).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(EngineError::api(format!("remove network {name}"), e)),
        }
    }

    /// Creates a project's named volume (`key` in the compose file, `labels` from it) unless the
    /// project already has it; returns true when it was created now. A volume of that name that
    /// vibedev did not create for this project is refused: it may hold someone else's data
    /// (adopting it takes `external: true` in the compose file).
    pub async fn ensure_volume(
        &self,
        name: &str,
        driver: Option<&str>,
        project: &str,
        key: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<bool, EngineError> {
        let labels = volume_labels(project, key, labels);
        match self.docker.inspect_volume(name).await {
            Ok(v) => {
                let project = labels.get(LABEL_PROJECT).map(String::as_str);
                if v.labels.get(LABEL_PROJECT).map(String::as_str) == project {
                    return Ok(false);
                }
                return Err(EngineError::Foreign {
                    kind: "volume",
                    name: name.to_string(),
                    project: project.unwrap_or_default().to_string(),
                });
            }
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

    /// vibedev's cache volume (shared by every project on this engine: what speeds up starts,
    /// keyed by image id), created when missing. Never a project's: `down --volumes` keeps it.
    pub async fn ensure_cache_volume(&self) -> Result<&'static str, EngineError> {
        match self.docker.inspect_volume(CACHE_VOLUME).await {
            Ok(_) => return Ok(CACHE_VOLUME),
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                return Err(EngineError::api(
                    format!("inspect volume {CACHE_VOLUME}"),
                    e,
                ));
            }
        }
        let request = VolumeCreateRequest {
            name: Some(CACHE_VOLUME.to_string()),
            labels: Some(HashMap::from([(LABEL_CACHE.to_string(), "1".to_string())])),
            ..Default::default()
        };
        match self.docker.create_volume(request).await {
            Ok(_) => Ok(CACHE_VOLUME),
            // created meanwhile by another run
            Err(e) if is_conflict(&e) => Ok(CACHE_VOLUME),
            Err(e) => Err(EngineError::api(format!("create volume {CACHE_VOLUME}"), e)),
        }
    }

    /// True when `path` (under `target`, where the cache volume is mounted) exists in vibedev's
    /// cache volume, looked at through a container of `image` that is created, never started,
    /// and removed again.
    pub async fn cache_has(
        &self,
        image: &str,
        target: &str,
        path: &str,
    ) -> Result<bool, EngineError> {
        match self.docker.inspect_volume(CACHE_VOLUME).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => return Ok(false),
            Err(e) => {
                return Err(EngineError::api(
                    format!("inspect volume {CACHE_VOLUME}"),
                    e,
                ));
            }
        }
        let body = bollard::models::ContainerCreateBody {
            image: Some(image.to_string()),
            entrypoint: Some(vec!["/bin/true".to_string()]),
            cmd: Some(Vec::new()),
            labels: Some(HashMap::from([(LABEL_CACHE.to_string(), "1".to_string())])),
            host_config: Some(bollard::models::HostConfig {
                mounts: Some(vec![bollard::models::Mount {
                    target: Some(target.to_string()),
                    source: Some(CACHE_VOLUME.to_string()),
                    typ: Some(bollard::models::MountType::VOLUME),
                    read_only: Some(true),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let id = self
            .docker
            .create_container(
                None::<bollard::query_parameters::CreateContainerOptions>,
                body,
            )
            .await
            .map_err(|e| EngineError::api("create a container to look into the cache", e))?
            .id;
        let options = bollard::query_parameters::ContainerArchiveInfoOptionsBuilder::default()
            .path(path)
            .build();
        let found = self
            .docker
            .get_container_archive_info(&id, Some(options))
            .await;
        // With its anonymous volumes (an image's `VOLUME`s), so a look leaves nothing behind.
        let remove = bollard::query_parameters::RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        let _ = self.docker.remove_container(&id, Some(remove)).await;
        match found {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(EngineError::api("look into the cache volume", e)),
        }
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
